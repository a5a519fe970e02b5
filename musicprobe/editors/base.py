"""The editor base: what every editing method shares.

An :class:`Editor` holds a model (one of the protocols of :mod:`musicprobe.models.protocols`), a config (an
:class:`~musicprobe.editors.config.EditConfig`), a probe on the model's hooked module and the CLAP model its
metrics use. A method implements two steps:

- ``record_source(audio, source_prompt, sr=...) -> RecordedSource``: whatever the edit needs from the source
  (inverted noise, recorded K/V, stored noise maps);
- ``run_edit(source, target_prompt, config) -> latent`` (or ``(latent, trace)``): the edit itself.

``edit_from`` wraps ``run_edit`` with what every method shares (the config's attention captures, timing, and
:meth:`Editor.finish`: decode, trim to the source's length, measure, build the :class:`EditResult` by keyword);
``edit`` chains ``record_source`` and ``edit_from``, so sweeps can record one source and edit it many ways.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch

from musicprobe.editors.config import EditConfig
from musicprobe.editors.result import EditResult, edit_metrics
from musicprobe.errors import AudioError, ConfigError
from musicprobe.hooks import Probe
from musicprobe.inversion import Sampler

MIN_SECONDS = 0.5


def check_prompt(prompt: str, what: str) -> str:
    """A prompt an editor can use: a non-empty string (the model warns about truncation and unknown words)."""
    if not isinstance(prompt, str):
        raise ConfigError(f"{what} must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ConfigError(f"{what} is empty: describe the music (e.g. 'a calm jazz piece with piano')")
    return prompt


def check_prompts(source_prompt: str, target_prompt: str) -> None:
    """:func:`check_prompt` for an edit's source and target prompts."""
    check_prompt(source_prompt, "the source prompt")
    check_prompt(target_prompt, "the target prompt")


def resolve_clap(clap: Any) -> Any:
    """``"mini-clap"`` -> the bundled mini-CLAP; ``None`` -> no CLAP metrics; a model -> itself."""
    if isinstance(clap, str):
        from musicprobe.zoo import load

        return load(clap)
    return clap


def provenance(model: Any = None, **extra: Any) -> dict:
    """What makes a result reproducible: the model's identity and decoder, torch's version, thread count, device
    and dtype, and any seeds given as ``extra``."""
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu"}
    if model is not None:
        meta = getattr(model, "meta", {}) or {}
        den = getattr(model, "denoiser", None)
        out.update(
            model=meta.get("name", type(model).__name__),
            model_train_steps=meta.get("train_steps"),
            decoder=getattr(getattr(model, "codec", None), "decoder", None),
            device=str(next(den.parameters()).device) if den is not None else "cpu",
            dtype=str(next(den.parameters()).dtype).replace("torch.", "") if den is not None else None,
        )
    return {**out, **extra}


class Editor:
    """Base class of the editing methods (see the module docstring)."""

    method: ClassVar[str] = "editor"
    config_class: ClassVar[type[EditConfig]] = EditConfig

    def __init__(self, model: Any, config: EditConfig | None = None, clap: Any = "mini-clap"):
        self.model = model
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            want, got = self.config_class.__name__, type(config).__name__
            raise ConfigError(f"{type(self).__name__} takes a {want}, got {got}")
        self.clap = resolve_clap(clap)
        self.probe = Probe.for_model(model)

    # ---- the two steps a method implements ------------------------------------------------------------------
    def record_source(
        self, audio: np.ndarray, source_prompt: str, *, sr: int, config: Any = None, progress=None
    ) -> Any:
        raise NotImplementedError

    def run_edit(self, source: Any, target_prompt: str, config: Any, progress=None) -> Any:
        """The method's edit of ``source``: the edited latent, or ``(latent, trace)``."""
        raise NotImplementedError

    def edit_from(
        self, source: Any, target_prompt: str, *, config: Any = None, reference: np.ndarray | None = None,
        label: str = "", progress=None,
    ) -> EditResult:
        """Edit a recorded source under ``target_prompt`` (``reference``: the true target, at the model's rate)."""
        c = config or self.config
        check_prompt(target_prompt, "the target prompt")
        t0 = time.perf_counter()
        with self.capturing(c) as maps:
            out = self.run_edit(source, target_prompt, c, progress)
        latent, trace = out if isinstance(out, tuple) else (out, None)
        return self.finish(latent, source, target_prompt, c, reference=reference, label=label, started=t0,
                           attention=maps, trace=trace)

    # ---- shared ---------------------------------------------------------------------------------------------
    def edit(
        self,
        audio: np.ndarray,
        source_prompt: str,
        target_prompt: str,
        *,
        sr: int,
        reference: np.ndarray | None = None,
        config: Any = None,
        label: str = "",
        progress=None,
    ) -> EditResult:
        """Edit ``audio`` (mono or stereo, rate ``sr``) from ``source_prompt`` to ``target_prompt``.

        ``reference`` (the true target, same rate) adds similarity-to-target metrics.
        """
        t0 = time.perf_counter()
        check_prompts(source_prompt, target_prompt)
        ref = self.prepare(reference, sr, what="reference") if reference is not None else None
        src = self.record_source(audio, source_prompt, sr=sr, config=config, progress=progress)
        res = self.edit_from(src, target_prompt, config=config, reference=ref, label=label, progress=progress)
        res.seconds = time.perf_counter() - t0
        return res

    def prepare(self, audio: np.ndarray, sr: int, what: str = "source") -> np.ndarray:
        """Audio at the model's rate, mono, float32: resampled, checked for NaN, silence, shape and length.

        A model with a fixed window (``model.n_samples``, 5.12 s for the mini models) edits at most that much:
        longer audio is refused with the limit named (cut a window first), audio shorter than
        :data:`MIN_SECONDS` is refused, and shorter audio is padded for the model and the edit trimmed back.
        """
        y = self.at_model_rate(audio, sr, what)
        window = getattr(self.model, "n_samples", None)
        if window is not None and len(y) > window + self.model.sr // 100:  # 10 ms of slack for resampling
            raise AudioError(
                f"{what}: {len(y) / self.model.sr:.2f} s is longer than the {window / self.model.sr:.2f} s the "
                "model edits at once; cut a window first (load_audio(path, offset=..., duration=...), or "
                "--offset / --duration)"
            )
        return y[:window] if window is not None else y

    def at_model_rate(self, audio: np.ndarray, sr: int, what: str = "source") -> np.ndarray:
        """Mono float32 audio resampled to the model's rate (NaN, silence and shape checked); refused below
        :data:`MIN_SECONDS`. Editors without a fixed window (InstructME) bound the length themselves."""
        from musicprobe.audio.io import mono_mix, resample

        if sr is None:
            raise ConfigError(f"give the {what} audio's sample rate (sr=...)")
        y = resample(mono_mix(audio, int(sr), name=what), int(sr), self.model.sr)
        if len(y) / self.model.sr < MIN_SECONDS:
            raise AudioError(f"{what}: {len(y) / self.model.sr:.2f} s is too short to edit (at least {MIN_SECONDS} s)")
        return y

    def sampler(self, config: EditConfig, guidance: float | None = None) -> Sampler:
        """The sampler of ``config`` (source guidance unless ``guidance`` is given)."""
        g = config.source_guidance if guidance is None else guidance
        return Sampler(self.model, config.solver, config.steps, g, x0_clip=config.x0_clip)

    def label(self, config: Any) -> str:
        return self.method

    def capturing(self, config: EditConfig, guidance: float | None = None):
        """Capture ``config.capture`` while the block runs; the yielded dict holds the maps afterwards."""
        from musicprobe.editors.sources import captured_attention

        g = config.target_guidance if guidance is None else guidance
        return captured_attention(self.probe, config.capture, guidance=g)

    def finish(
        self,
        latent: torch.Tensor,
        source: Any,
        target_prompt: str,
        config: EditConfig,
        *,
        reference: np.ndarray | None = None,
        label: str = "",
        started: float | None = None,
        attention: dict | None = None,
        trace: Any = None,
    ) -> EditResult:
        """Decode ``latent``, trim it to the source's length, measure it against the source (and the true target)
        and build the result."""
        edited = self.model.decode(latent)
        n = min(len(edited), len(source.audio))
        edited, src = edited[:n], np.asarray(source.audio, dtype=np.float32)[:n]
        metrics = edit_metrics(src, edited, self.model.sr, target_prompt, source.prompt, reference, self.clap)
        seeds = {"seed": config.seed} if hasattr(config, "seed") else {}
        return EditResult(
            method=self.method,
            sr=self.model.sr,
            source=src,
            edited=edited,
            source_prompt=source.prompt,
            target_prompt=target_prompt,
            config=config.to_dict(),
            metrics=metrics,
            attention=attention or {},
            seconds=0.0 if started is None else time.perf_counter() - started,
            label=label or self.label(config),
            provenance=provenance(self.model, **seeds),
            trace=trace,
        )
