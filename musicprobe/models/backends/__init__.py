"""Real pipelines behind the model protocols: the papers' base models for users with weights and a GPU.

``load_backend(kind, source, device=..., dtype=...)`` loads a stock pipeline from a hub id or a local folder and
wraps it; ``tiny_backend(kind)`` wraps a tiny full pipeline built from config (no hub, no weights) to try the
plumbing or to test it. Every editor that runs on a mini model of the same family runs on a backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musicprobe.device import pick_device, pick_dtype
from musicprobe.errors import check_known
from musicprobe.models.backends.audioldm2 import AudioLDM2Backend, LDM2Conditioning
from musicprobe.models.backends.base import BackendConfig, PipelineBackend
from musicprobe.models.backends.fluxmusic import FluxMusicBackend, FluxMusicPipeline, FluxMusicText
from musicprobe.models.backends.musicgen import MusicGenBackend, MusicGenText
from musicprobe.models.backends.stable_audio import DeterministicCosineDPMSolver, SAOConditioning, StableAudioBackend
from musicprobe.models.backends.tiny import TINY_PIPELINES, tiny_pipeline

BACKENDS: dict[str, type[PipelineBackend]] = {
    "stable-audio": StableAudioBackend,
    "audioldm2": AudioLDM2Backend,
    "musicgen": MusicGenBackend,
    "fluxmusic": FluxMusicBackend,
}


def load_backend(kind: str, source: str | Path | None = None, *, device=None, dtype=None, **kwargs: Any):
    """The backend ``kind`` around its stock pipeline from ``source`` (hub id or folder; default: the paper's)."""
    return BACKENDS[check_known("backend", kind, BACKENDS)].from_pretrained(source, device=device, dtype=dtype,
                                                                            **kwargs)


def tiny_backend(kind: str, *, seed: int = 0, device=None, dtype=None, **kwargs: Any):
    """The backend ``kind`` around its tiny full pipeline (random weights, built in memory)."""
    cls = BACKENDS[check_known("backend", kind, BACKENDS)]
    return cls(tiny_pipeline(kind, seed), source=f"tiny {kind} pipeline (random init)", device=device, dtype=dtype,
               **kwargs)


__all__ = [
    "BACKENDS",
    "TINY_PIPELINES",
    "AudioLDM2Backend",
    "BackendConfig",
    "DeterministicCosineDPMSolver",
    "FluxMusicBackend",
    "FluxMusicPipeline",
    "FluxMusicText",
    "LDM2Conditioning",
    "MusicGenBackend",
    "MusicGenText",
    "PipelineBackend",
    "SAOConditioning",
    "StableAudioBackend",
    "load_backend",
    "pick_device",
    "pick_dtype",
    "tiny_backend",
    "tiny_pipeline",
]
