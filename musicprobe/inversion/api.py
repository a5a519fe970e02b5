"""High-level inversion: reconstruct audio through any diffusion model of the protocols and measure the errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.inversion.ddim import EpsFn, ddim_invert, ddim_sample, ddim_timesteps
from musicprobe.inversion.samplers import SOLVERS, Sampler
from musicprobe.inversion.trace import InversionSweep, InversionTrace


def audio_errors(model: Any, source_audio: np.ndarray, latent: torch.Tensor) -> dict[str, float]:
    """Chroma similarity and CQT-1 PCC between the source audio and the decoded ``latent``."""
    from musicprobe.metrics import chroma_similarity, cqt1_pcc

    y = model.decode(latent)
    n = min(len(y), len(source_audio))
    return {
        "chroma": chroma_similarity(source_audio[:n], y[:n], model.sr),
        "cqt1_pcc": cqt1_pcc(source_audio[:n], y[:n], model.sr),
    }


def mel_mse(model: Any, a: torch.Tensor, b: torch.Tensor) -> float:
    """MSE between two latents in natural-log-mel units (the codec's standardisation undone)."""
    return float(((model.log_mel(a) - model.log_mel(b)) ** 2).mean())


def reconstruct(
    model: Any,
    audio: np.ndarray | None = None,
    prompt: str = "",
    *,
    sr: int | None = None,
    latent: torch.Tensor | None = None,
    solver: str = "rf-solver",
    steps: int = 25,
    guidance: float = 1.0,
    shift: float = 1.0,
    audio_metrics: bool = True,
) -> InversionTrace:
    """Invert ``audio`` at rate ``sr`` (or ``latent``) under ``prompt`` and regenerate it with the same solver.

    ``model`` is a :class:`~musicprobe.models.protocols.FlowModel` (``euler``, ``rf-solver``) or an
    :class:`~musicprobe.models.protocols.EpsModel` (``ddim``). Inversion and regeneration share prompt, guidance
    and grid.
    """
    if (audio is None) == (latent is None):
        raise ConfigError("reconstruct: give exactly one of audio or latent")
    sampler = Sampler(model, solver, steps, guidance, shift)
    if latent is None:
        if sr is None:
            raise ConfigError("reconstruct: give the audio's sample rate (sr=...)")
        latent = model.encode(audio, sr)
    fwd = sampler.invert(latent, prompt)
    back = sampler.sample(fwd.final, prompt)
    trace = InversionTrace.from_paths(fwd, back, prompt=prompt, guidance=guidance)
    if hasattr(model, "log_mel"):
        trace.metrics["mel_mse"] = mel_mse(model, trace.source, trace.reconstruction)
    if audio_metrics and audio is not None:
        from musicprobe.audio.io import resample

        trace.metrics.update(audio_errors(model, resample(audio, sr, model.sr), trace.reconstruction))
    return trace


def reconstruct_ddim(
    eps_fn: EpsFn, x0: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int = 50, num_train_timesteps: int = 1000
) -> InversionTrace:
    """DDIM inversion + regeneration of a bare epsilon function (no model object); times are ``timestep / T``."""
    ts = ddim_timesteps(steps, num_train_timesteps)
    up = ddim_invert(x0, eps_fn, alphas_cumprod, ts, num_train_timesteps=num_train_timesteps)
    down = ddim_sample(up.final, eps_fn, alphas_cumprod, ts, num_train_timesteps=num_train_timesteps)
    return InversionTrace.from_paths(up, down)


def sweep(
    model: Any,
    audio: np.ndarray,
    prompt: str = "",
    *,
    sr: int,
    budgets: Sequence[int] = (10, 20, 50),
    solvers: Sequence[str] = ("euler", "rf-solver"),
    guidance: float = 1.0,
    audio_metrics: bool = False,
    progress: bool = False,
) -> InversionSweep:
    """Reconstruction error per solver at equal model evaluations per direction (``budgets`` = NFE per direction).

    A budget of ``n`` gives Euler ``n`` steps and RF-Solver ``n // 2`` steps.
    """
    x0 = model.encode(audio, sr)
    rows = []
    jobs = [(s, n) for n in budgets for s in solvers]
    it = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc="inversion sweep")
    for solver, n in it:
        if solver not in SOLVERS:
            Sampler(model, solver)  # raises the unknown-solver error with suggestions
        steps = n // SOLVERS[solver]
        if steps < 1:
            raise ConfigError(f"budget {n} is too small for {solver}")
        tr = reconstruct(model, latent=x0, prompt=prompt, solver=solver, steps=steps, guidance=guidance)
        row = {"solver": solver, "steps": steps, "nfe": n, "latent_mse": tr.latent_mse(), **tr.metrics}
        if audio_metrics:
            row.update(audio_errors(model, audio, tr.reconstruction))
        rows.append(row)
    return InversionSweep(rows, source=prompt)
