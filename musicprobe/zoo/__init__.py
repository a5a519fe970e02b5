"""The mini model zoo: small models of the real architecture classes, trained by us on the synthetic corpus.

``load("mini-flux")`` -> :class:`MiniFlux` (diffusers ``FluxTransformer2DModel``, rectified flow, MiniLM text);
``load("mini-clap")`` -> :class:`MiniClap` (contrastive audio-text model for CLAP scores and FAD).
Weights ship in ``musicprobe/zoo/weights/<name>/`` (safetensors + config.json with provenance); retrain with
``musicprobe zoo train <name>``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from musicprobe.errors import ConfigError, check_known
from musicprobe.zoo.miniclap import MiniClap
from musicprobe.zoo.miniflux import MiniFlux

WEIGHTS = Path(__file__).parent / "weights"
MODELS = {"mini-flux": MiniFlux, "mini-clap": MiniClap}

__all__ = ["MODELS", "WEIGHTS", "MiniClap", "MiniFlux", "available", "load", "weights_dir"]


def weights_dir(name: str) -> Path:
    check_known("zoo model", name, MODELS)
    return WEIGHTS / name


def available() -> dict[str, bool]:
    """Which zoo models have weights installed."""
    return {n: (weights_dir(n) / "model.safetensors").exists() for n in MODELS}


@lru_cache(maxsize=4)
def _cached(name: str, folder: str):
    return MODELS[name].load(folder)


def load(name: str, folder: str | Path | None = None, *, fresh: bool = False):
    """Load a zoo model by name (from the bundled weights, or ``folder``). Cached unless ``fresh``."""
    check_known("zoo model", name, MODELS)
    folder = Path(folder) if folder else weights_dir(name)
    if not (folder / "model.safetensors").exists():
        raise ConfigError(f"{name}: no weights at {folder}; train them with `musicprobe zoo train {name}`")
    return MODELS[name].load(folder) if fresh else _cached(name, str(folder))
