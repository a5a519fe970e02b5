"""The mini model zoo: small models of the real architecture classes, trained by us on the synthetic corpus.

``load("mini-flux")`` -> :class:`MiniFlux` (diffusers ``FluxTransformer2DModel``, rectified flow, MiniLM text),
decoding through ``load("mini-vocoder")`` (a Vocos-style vocoder; ``decoder="griffin-lim"`` for the fallback);
``load("mini-ldm")`` -> :class:`MiniLDM` (diffusers ``UNet2DConditionModel``, epsilon prediction, AudioLDM2's
schedule); ``load("mini-sao")`` -> :class:`MiniSAO` (diffusers ``StableAudioDiTModel``, v-prediction, SAO's
sigma grid); ``load("mini-musicgen")`` -> :class:`MiniMusicGen` (transformers ``MusicgenForCausalLM`` over RVQ
codes of the shared codec, delay pattern, top-k sampling); ``load("mini-instructme")`` -> :class:`MiniInstructME`
(an instruction-trained editor: diffusers ``UNet2DConditionModel`` with multi-scale source aggregation, chord
cross-attention and chunked attention; ``-no-chord`` and ``-no-msa`` are the paper's ablations);
``load("mini-clap")`` -> :class:`MiniClap` (contrastive audio-text model for CLAP scores and FAD).
Weights ship in ``musicprobe/zoo/weights/<name>/`` (safetensors + config.json with provenance); retrain with
``musicprobe zoo train <name>``. The model definitions live in :mod:`musicprobe.models`; the zoo holds the
registry, the training recipes, the weights and their provenance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from musicprobe.errors import ConfigError, check_known
from musicprobe.models.codec import DECODERS
from musicprobe.models.miniclap import MiniClap
from musicprobe.models.miniflux import MiniFlux
from musicprobe.models.miniinstructme import MiniInstructME
from musicprobe.models.minildm import MiniLDM
from musicprobe.models.minimusicgen import MiniMusicGen
from musicprobe.models.minisao import MiniSAO
from musicprobe.models.vocoder import MiniVocoder

WEIGHTS = Path(__file__).parent / "weights"
MODELS = {
    "mini-flux": MiniFlux,
    "mini-ldm": MiniLDM,
    "mini-sao": MiniSAO,
    "mini-musicgen": MiniMusicGen,
    "mini-instructme": MiniInstructME,
    "mini-instructme-no-chord": MiniInstructME,
    "mini-instructme-no-msa": MiniInstructME,
    "mini-clap": MiniClap,
    "mini-vocoder": MiniVocoder,
}
WITH_DECODER = ("mini-flux", "mini-ldm", "mini-sao", "mini-musicgen", "mini-instructme", "mini-instructme-no-chord",
                "mini-instructme-no-msa")  # models that decode through the shared codec

__all__ = [
    "MODELS", "WEIGHTS", "MiniClap", "MiniFlux", "MiniInstructME", "MiniLDM", "MiniMusicGen", "MiniSAO", "MiniVocoder",
    "available", "load", "weights_dir",
]


def weights_dir(name: str) -> Path:
    check_known("zoo model", name, MODELS)
    return WEIGHTS / name


def available() -> dict[str, bool]:
    """Which zoo models have weights installed."""
    return {n: (weights_dir(n) / "model.safetensors").exists() for n in MODELS}


def _load(name: str, folder: Path, decoder: str | None):
    if name not in WITH_DECODER:
        return MODELS[name].load(folder)
    vocoder = None if decoder == "griffin-lim" else load("mini-vocoder")
    model = MODELS[name].load(folder, vocoder=vocoder)
    model.codec.decoder = decoder or "vocoder"
    return model


@lru_cache(maxsize=8)
def _cached(name: str, folder: str, decoder: str | None):
    return _load(name, Path(folder), decoder)


def load(name: str, folder: str | Path | None = None, *, fresh: bool = False, decoder: str | None = None):
    """Load a zoo model by name (from the bundled weights, or ``folder``). Cached unless ``fresh``.

    ``decoder`` (models that decode through the codec): ``"vocoder"`` (default) or ``"griffin-lim"``.
    """
    check_known("zoo model", name, MODELS)
    if decoder is not None:
        check_known("decoder", decoder, DECODERS)
        if name not in WITH_DECODER:
            raise ConfigError(f"{name} has no decoder to choose")
    folder = Path(folder) if folder else weights_dir(name)
    if not (folder / "model.safetensors").exists():
        raise ConfigError(f"{name}: no weights at {folder}; train them with `musicprobe zoo train {name}`")
    return _load(name, folder, decoder) if fresh else _cached(name, str(folder), decoder)


CONCEPTS_DIR = WEIGHTS / "concepts"


def load_concept(name_or_folder: str | Path, base=None):
    """A personal concept fine-tuned on ``base`` (default: the zoo's mini-LDM): a bundled corpus concept by name
    (``"lute"``, ``"marimba"``) or a folder written by ``musicprobe zoo personalize``."""
    from musicprobe.zoo.personalize import PersonalConcept

    folder = Path(name_or_folder)
    if not folder.is_dir():
        bundled = sorted(p.name for p in CONCEPTS_DIR.glob("*") if p.is_dir())
        folder = CONCEPTS_DIR / check_known("concept (a bundled name or a concept folder)", str(name_or_folder),
                                            bundled)
    return PersonalConcept.load(folder, base if base is not None else load("mini-ldm"))
