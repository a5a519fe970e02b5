"""Saving and loading the mini models' weights: ``model.safetensors`` + ``config.json`` (config and provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from musicprobe.errors import ConfigError


def save_weights(folder: str | Path, module: torch.nn.Module, config: dict, meta: dict,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write ``module``'s state (in ``dtype``) and ``{"config": config, **meta}`` into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype).contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({"config": config, **meta}, indent=2))
    return folder


def read_weights(folder: str | Path, what: str) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """``(config, meta, float32 state)`` of a folder written by :func:`save_weights` (a clear error if absent)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise ConfigError(f"no {what} weights in {folder} (config.json missing)")
    info = json.loads((folder / "config.json").read_text())
    config = info.pop("config") if "config" in info else info.pop("model")  # early vocoder exports said "model"
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    return config, info, state
