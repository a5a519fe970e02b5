"""What every real-pipeline backend shares: device and dtype, loading from a hub id or a folder, provenance, the
audio window and its channels.

A backend wraps a stock diffusers / transformers pipeline (loaded with ``from_pretrained``, or built from config
for the tests: :mod:`musicprobe.models.backends.tiny`) and implements the model protocol of its family
(:mod:`musicprobe.models.protocols`), so every editor, sampler and probe that runs on a mini model runs on it. The
pipeline's own ``__call__`` is never copied: a backend exposes the pieces (text conditioning, one network call,
the VAE) and the shared sampler layer walks them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from musicprobe.device import pick_device, pick_dtype
from musicprobe.errors import AudioError, ConfigError, MusicProbeError
from musicprobe.models.prompt_rows import PromptRows


@dataclass(frozen=True)
class BackendConfig:
    """Identity of a loaded backend (what probing caches and results' provenance key on)."""

    kind: str
    source: str
    device: str
    dtype: str
    max_text_tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


class PartsPipeline:
    """A model's parts held as one pipeline where the library publishes none (MusicGen's model and tokenizer,
    FluxMusic's seven parts): ``components``, ``device``, ``dtype`` and ``to`` as a diffusers pipeline has them.
    A subclass names its ``parts`` (attribute names; the first is a network)."""

    parts: ClassVar[tuple[str, ...]] = ()

    @property
    def components(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.parts}

    @property
    def device(self) -> torch.device:
        return next(getattr(self, self.parts[0]).parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(getattr(self, self.parts[0]).parameters()).dtype

    def to(self, device: torch.device, dtype: torch.dtype):
        for part in self.components.values():
            if isinstance(part, torch.nn.Module):
                part.to(device=device, dtype=dtype)
        return self


class PipelineBackend:
    """Base of the real-pipeline backends (see the module docstring).

    Subclasses name ``kind``, ``label``, ``pipeline_class`` (``"module:Class"``) and ``default_source`` (a hub id),
    and implement their protocol's members.
    """

    kind: ClassVar[str] = "backend"
    label: ClassVar[str] = "pipeline"
    pipeline_class: ClassVar[str] = ""
    default_source: ClassVar[str] = ""
    no_source: ClassVar[str] = ""  # what to do when there is no default source

    def __init__(self, pipe: Any, *, source: str = "built in memory", device=None, dtype=None):
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        if (torch.device(pipe.device), pipe.dtype) != (self.device, self.dtype):
            pipe = pipe.to(self.device, self.dtype)
        self.pipe = pipe
        for module in self.modules():
            module.eval()  # config-built and loaded modules can otherwise keep dropout active
        self._prompts: dict[Hashable, Any] = {}
        self.meta = {"name": f"{self.label} ({source})", "source": str(source), "train_steps": None}
        self.config = BackendConfig(self.kind, str(source), str(self.device), str(self.dtype).replace("torch.", ""),
                                    self.max_text_tokens)

    # ---- loading ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str | Path | None = None, *, device=None, dtype=None,
                        pipeline_kwargs: dict | None = None, **kwargs: Any):
        """Load the stock pipeline from a hub id (default ``default_source``) or a local folder, then wrap it
        (``pipeline_kwargs`` go to the pipeline's ``from_pretrained``, ``kwargs`` to the backend, e.g. ``seconds``).

        Nothing downloads here by itself: offline (``HF_HUB_OFFLINE=1``) a hub id resolves only from the local
        cache; a clear error says so when it is not there.
        """
        module, _, name = cls.pipeline_class.partition(":")
        pipeline = getattr(__import__(module, fromlist=[name]), name)
        source = str(source or cls.default_source)
        if not source:
            raise ConfigError(f"{cls.label} has no published pipeline to load by name: give a folder ({cls.no_source})")
        dev = pick_device(device)
        torch_dtype = pick_dtype(dtype, dev)
        try:
            pipe = pipeline.from_pretrained(source, torch_dtype=torch_dtype, **(pipeline_kwargs or {}))
        except (OSError, ValueError) as exc:
            raise MusicProbeError(
                f"cannot load the {cls.label} pipeline from {source!r}: {exc}. No hub is reachable offline: pass a "
                "local folder holding the pipeline, or try the plumbing on "
                f"musicprobe.models.backends.tiny_pipeline({cls.kind!r})"
            ) from exc
        return cls(pipe, source=source, device=dev, dtype=torch_dtype, **kwargs)

    # ---- prompts ------------------------------------------------------------------------------------------
    def encode_one(self, prompt: str) -> PromptRows:
        """One prompt's states (one row), as the pipeline computes them."""
        raise NotImplementedError

    def prompt_key(self, prompt: str) -> Hashable:
        """What a prompt's cached states depend on besides the weights (Stable Audio: also the duration)."""
        return prompt

    @torch.no_grad()
    def encode_prompt(self, prompts: str | Sequence[str] | PromptRows) -> PromptRows:
        """The states of ``prompts``, one row each (each prompt encoded once and cached)."""
        if isinstance(prompts, PromptRows):
            return prompts
        items = [prompts] if isinstance(prompts, str) else list(prompts)
        for p in dict.fromkeys(items):
            if self.prompt_key(p) not in self._prompts:
                self._prompts[self.prompt_key(p)] = self.encode_one(p)
        parts = [self._prompts[self.prompt_key(p)] for p in items]
        return type(parts[0]).cat(parts)

    # ---- shared members -----------------------------------------------------------------------------------
    @property
    def max_text_tokens(self) -> int:
        return int(getattr(self.pipe.tokenizer, "model_max_length", 0) or 0)

    def modules(self) -> list[torch.nn.Module]:
        """The pipeline's networks."""
        return [m for m in self.pipe.components.values() if isinstance(m, torch.nn.Module)]

    def check_rate(self, sr: int) -> None:
        if int(sr) != self.sr:
            raise AudioError(
                f"{self.label} takes {self.sr} Hz audio, got {sr} Hz: resample first (the editors do it for you; "
                "musicprobe.audio.io.resample)"
            )

    def window(self, audio: np.ndarray, n_samples: int, channels: int) -> torch.Tensor:
        """``audio`` (``(samples,)`` mono or ``(channels, samples)``) as ``(1, channels, n_samples)``: a mono clip
        is copied into every channel, a stereo one averaged for a mono model, zero-padded or cut to the window."""
        y = np.asarray(audio, dtype=np.float32)
        if y.ndim == 1:
            y = np.repeat(y[None], channels, axis=0)
        elif y.ndim == 2 and y.shape[0] != channels:
            if y.shape[0] not in (1, 2):
                raise AudioError(f"{self.label}: audio of shape {y.shape}: give (samples,) or (channels, samples)")
            y = np.repeat(y.mean(axis=0, keepdims=True), channels, axis=0)
        elif y.ndim != 2:
            raise AudioError(f"{self.label}: audio of shape {y.shape}: give (samples,) or (channels, samples)")
        out = np.zeros((channels, n_samples), dtype=np.float32)
        n = min(n_samples, y.shape[1])
        out[:, :n] = y[:, :n]
        return torch.from_numpy(out)[None]

    def generator(self, seed: int) -> torch.Generator:
        """A CPU generator (the same noise on every device for one seed)."""
        return torch.Generator().manual_seed(int(seed))
