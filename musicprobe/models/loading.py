"""The real loading path: a family's denoiser (or MusicGen) from a hub id or a local folder via ``from_pretrained``.

Nothing here downloads by itself: with ``HF_HUB_OFFLINE=1`` (the Makefile sets it) a hub id resolves only from the
local cache, and a folder works anywhere. Every model is returned in ``eval()`` mode (config-built and loaded
modules can otherwise keep dropout active).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from musicprobe.errors import MusicProbeError, check_known

# family -> (import path of the class, default hub id, subfolder of the denoiser inside a pipeline repo)
FAMILIES: dict[str, tuple[str, str, str | None]] = {
    "flux": ("diffusers:FluxTransformer2DModel", "black-forest-labs/FLUX.1-dev", "transformer"),
    "stable_audio": ("diffusers:StableAudioDiTModel", "stabilityai/stable-audio-open-1.0", "transformer"),
    "audioldm2_unet": (
        "diffusers.pipelines.audioldm2.modeling_audioldm2:AudioLDM2UNet2DConditionModel",
        "cvssp/audioldm2-music",
        "unet",
    ),
    "unet2d": ("diffusers:UNet2DConditionModel", "CompVis/stable-diffusion-v1-4", "unet"),
    "musicgen": ("transformers:MusicgenForConditionalGeneration", "facebook/musicgen-small", None),
}


def _import(spec: str) -> type:
    module, _, name = spec.partition(":")
    mod = __import__(module, fromlist=[name])
    return getattr(mod, name)


def load_denoiser(
    family: str,
    source: str | Path | None = None,
    *,
    subfolder: str | None = "auto",
    dtype: torch.dtype = torch.float32,
    **kwargs,
) -> nn.Module:
    """Load the hookable model of ``family`` from ``source`` (hub id or folder; default: the family's hub id).

    ``subfolder="auto"`` uses the pipeline layout (``transformer``/``unet``) when ``source`` holds a pipeline
    (has ``model_index.json``), and the folder itself otherwise.
    """
    check_known("model family", family, FAMILIES)
    cls_spec, default_id, pipe_sub = FAMILIES[family]
    source = str(source or default_id)
    if subfolder == "auto":
        folder = Path(source)
        subfolder = pipe_sub if (folder / "model_index.json").is_file() or not folder.exists() else None
    cls = _import(cls_spec)
    kw = {"subfolder": subfolder} if subfolder else {}
    try:
        if family == "musicgen":
            model = cls.from_pretrained(source, dtype=dtype, **kwargs)
        else:
            model = cls.from_pretrained(source, torch_dtype=dtype, **kw, **kwargs)
    except OSError as exc:
        raise MusicProbeError(
            f"cannot load {family} from {source!r}{f' (subfolder {subfolder!r})' if subfolder else ''}: {exc}. "
            "No hub is reachable offline: pass a local folder, or use the tiny models (musicprobe.models.tiny_model)"
        ) from exc
    return model.eval()
