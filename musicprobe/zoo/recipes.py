"""Training recipes of the zoo models (what ``musicprobe zoo train <name>`` runs) and their evaluation sets."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from musicprobe.errors import ConfigError, check_known
from musicprobe.zoo.corpus import HELDOUT_SEED, TRAIN_SEED, MelCorpus, cached_corpus
from musicprobe.zoo.trainer import corpus_codec

RECIPES = (
    "mini-flux", "mini-clap", "mini-vocoder", "mini-ldm", "mini-sao", "mini-musicgen",
    "mini-instructme", "mini-instructme-no-chord", "mini-instructme-no-msa",
)
# the recipes on the shared training loop: module, config class, training function (imported when used)
LOOP_RECIPES = {
    "mini-flux": ("musicprobe.zoo.train_flux", "FluxTrainConfig", "train_miniflux"),
    "mini-ldm": ("musicprobe.zoo.train_ldm", "LDMTrainConfig", "train_minildm"),
    "mini-sao": ("musicprobe.zoo.train_sao", "SAOTrainConfig", "train_minisao"),
    "mini-musicgen": ("musicprobe.zoo.train_musicgen", "MusicGenTrainConfig", "train_minimusicgen"),
    "mini-vocoder": ("musicprobe.zoo.train_vocoder", "VocoderTrainConfig", "train_minivocoder"),
    "mini-instructme": ("musicprobe.zoo.train_instructme", "InstructMETrainConfig", "train_miniinstructme"),
    "mini-instructme-no-chord": ("musicprobe.zoo.train_instructme", "InstructMETrainConfig", "train_miniinstructme"),
    "mini-instructme-no-msa": ("musicprobe.zoo.train_instructme", "InstructMETrainConfig", "train_miniinstructme"),
}
# the paper's ablations: the same recipe with one part of the model switched off
MODEL_OVERRIDES = {"mini-instructme-no-chord": {"chord": False}, "mini-instructme-no-msa": {"multiscale": False}}
# the recipes with a fine-tuning stage (``--init-from``): the InstructME models
FINE_TUNABLE = tuple(n for n, r in LOOP_RECIPES.items() if r[1] == "InstructMETrainConfig")


def model_overrides(name: str, fine_tune: bool = False) -> dict:
    """What recipe ``name`` changes in its model config: the ablations switch a part off; the InstructME models'
    fine-tuning stage (how the shipped ones were made) also gives a chord-conditioned model the chords in its up
    path (``chord_up``)."""
    out = dict(MODEL_OVERRIDES.get(name, {}))
    if fine_tune and name in FINE_TUNABLE and out.get("chord", True):
        out["chord_up"] = True
    return out


def heldout(n: int = 256, workers: int = 1) -> MelCorpus:
    """Held-out clips (a corpus seed disjoint from training) for evaluation."""
    return cached_corpus(n, HELDOUT_SEED, workers=workers)


def train(
    name: str, out: str | Path, *, steps: int | None = None, n_clips: int | None = None, workers: int = 2, log=print,
    init_from: str | None = None,
) -> Path:
    """Train zoo model ``name`` into ``out`` (resumable, except mini-CLAP); returns the folder holding the weights.
    ``n_clips``: training clips (default: the recipe's own, 2400 for the corpus models). ``init_from``: continue
    from an exported model (zoo name or folder) with the recipe's fine-tuning settings, where it has them."""
    check_known("zoo model", name, RECIPES)
    out = Path(out)
    if name in LOOP_RECIPES:
        module, config_name, fn_name = LOOP_RECIPES[name]
        recipe = import_module(module)
        config_class = getattr(recipe, config_name)
        kw = {"workers": workers, **({"n_clips": n_clips} if n_clips else {})}
        if init_from:
            if name not in FINE_TUNABLE:
                raise ConfigError(f"{name}'s recipe trains from scratch only (--init-from is for "
                                  f"{', '.join(FINE_TUNABLE)})")
            cfg = config_class.fine_tune(init_from, **kw)
        else:
            cfg = config_class(**kw)
        overrides = model_overrides(name, fine_tune=bool(init_from))
        if overrides:
            from dataclasses import replace

            cfg.model = replace(cfg.model, **overrides)
        if steps:
            cfg.loop.steps = steps
        return getattr(recipe, fn_name)(out, cfg, log=log)
    from musicprobe.zoo.train_clap import train_miniclap

    n_clips = n_clips or 2400
    corpus = cached_corpus(n_clips, TRAIN_SEED, workers=workers)
    train_miniclap(
        out,
        corpus.mels,
        corpus.captions,
        corpus.labels,
        steps=steps or 1000,
        codec=corpus_codec(corpus),
        meta={"corpus_seed": TRAIN_SEED, "corpus_clips": n_clips},
        log=log,
    )
    return out
