"""Where and in what precision a real pipeline runs: one place that turns a user's ``device`` / ``dtype`` into
torch's, with a clear message when the machine cannot do what was asked.

- ``device=None`` picks CUDA when torch sees a GPU and the CPU otherwise; ``"cuda"`` on a machine without one falls
  back to the CPU with a warning that says so (the real models are slow there), never a crash deep in a pipeline.
- ``dtype=None`` picks float16 on CUDA (the papers' reference code runs fp16) and float32 on the CPU; half
  precision asked for on the CPU falls back to float32 with a warning (many CPU kernels lack fp16).
  Strings ``"fp16"``, ``"bf16"``, ``"fp32"`` (or ``"float16"`` ...) and torch dtypes are accepted.
"""

from __future__ import annotations

import warnings

import torch

from musicprobe.errors import ConfigError

DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device`` (see the module docstring for the defaults and the CPU fallback)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device {device!r} asked for, but torch sees no CUDA GPU here: running on the CPU instead "
            "(real-size models are slow there; the tiny pipelines and mini models are not)",
            stacklevel=2,
        )
        return torch.device("cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'")
    return dev


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype for ``device`` (see the module docstring)."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype.lower() not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}: use one of fp32, fp16, bf16")
        dtype = DTYPES[dtype.lower()]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ConfigError(f"dtype {dtype} is not supported: use float32, float16 or bfloat16")
    if device.type == "cpu" and dtype != torch.float32:
        warnings.warn(f"{dtype} asked for on the CPU: running in float32 instead (half precision is for GPUs)",
                      stacklevel=2)
        return torch.float32
    return dtype
