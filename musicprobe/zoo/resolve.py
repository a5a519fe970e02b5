"""One name for any model a notebook or the command line can run on: a zoo model, a real pipeline or a tiny one.

``model_from_spec(spec, device=..., dtype=...)``:

- ``"mini-sao"`` (any zoo name) -> the bundled mini model (CPU, float32);
- ``"stable-audio"`` / ``"audioldm2"`` / ``"musicgen"`` / ``"fluxmusic"`` -> that backend from the paper's hub id
  (offline: only from the local cache);
- ``"stable-audio:/data/sao"`` (or ``"audioldm2:cvssp/audioldm2-music"``) -> the backend from a folder or hub id;
- ``"tiny:stable-audio"`` -> the backend around its tiny random-init pipeline (the plumbing, no weights).
"""

from __future__ import annotations

from typing import Any

from musicprobe.errors import ConfigError


def model_from_spec(spec: str, *, device=None, dtype=None, **backend_kwargs: Any):
    """The model ``spec`` names (see the module docstring)."""
    from musicprobe.models.backends import BACKENDS, load_backend, tiny_backend
    from musicprobe.zoo import MODELS, load

    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("name a model: a zoo name (e.g. mini-sao), a backend (e.g. stable-audio:/path) or "
                          "tiny:<backend>")
    if spec in MODELS:
        if device not in (None, "cpu") or dtype not in (None, "fp32", "float32"):
            raise ConfigError(f"{spec} is a mini model: it runs on the CPU in float32 (device/dtype are for backends)")
        return load(spec)
    kind, _, source = spec.partition(":")
    if kind == "tiny":
        if source not in BACKENDS:
            raise ConfigError(f"tiny:{source}: no such backend; tiny pipelines: {', '.join(BACKENDS)}")
        return tiny_backend(source, device=device, dtype=dtype, **backend_kwargs)
    if kind in BACKENDS:
        return load_backend(kind, source or None, device=device, dtype=dtype, **backend_kwargs)
    raise ConfigError(f"unknown model {spec!r}: a zoo name ({', '.join(MODELS)}), a backend "
                      f"({', '.join(BACKENDS)}, optionally ':<folder or hub id>') or tiny:<backend>")
