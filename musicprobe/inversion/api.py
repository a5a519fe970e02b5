"""High-level inversion: reconstruct audio through a flow model (or a DDIM model) and measure the errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError, check_known
from musicprobe.inversion.ddim import ddim_invert, ddim_sample, ddim_timesteps
from musicprobe.inversion.flow import SOLVERS, invert, sample
from musicprobe.inversion.trace import InversionSweep, InversionTrace

ALL_SOLVERS = (*SOLVERS, "ddim")


def audio_errors(model: Any, source_audio: np.ndarray, latent: torch.Tensor, n_iter: int = 32) -> dict[str, float]:
    """Chroma similarity and CQT-1 PCC between the source audio and the decoded ``latent``."""
    from musicprobe.metrics import chroma_similarity, cqt1_pcc

    y = model.decode(latent, n_iter=n_iter)
    n = min(len(y), len(source_audio))
    return {
        "chroma": chroma_similarity(source_audio[:n], y[:n], model.sr),
        "cqt1_pcc": cqt1_pcc(source_audio[:n], y[:n], model.sr),
    }


def mel_mse(model: Any, a: torch.Tensor, b: torch.Tensor) -> float:
    """MSE between two latents in natural-log-mel units (the codec's standardisation undone)."""
    return float(((model.codec.log_mel(a) - model.codec.log_mel(b)) ** 2).mean())


def reconstruct(
    model: Any,
    audio: np.ndarray | None = None,
    prompt: str = "",
    *,
    latent: torch.Tensor | None = None,
    solver: str = "rf-solver",
    steps: int = 25,
    guidance: float = 1.0,
    shift: float = 1.0,
    audio_metrics: bool = True,
) -> InversionTrace:
    """Invert ``audio`` (or ``latent``) under ``prompt`` with a rectified-flow ``solver`` and regenerate it.

    ``model`` needs ``encode``, ``decode``, ``velocity(x, t, prompt, guidance)``, ``sr`` and ``codec`` (a
    :class:`~musicprobe.zoo.MiniFlux`). Inversion and regeneration use the same prompt, guidance and grid.
    """
    check_known("solver", solver, SOLVERS)
    if (audio is None) == (latent is None):
        raise ConfigError("reconstruct: give exactly one of audio or latent")
    x0 = model.encode(audio) if latent is None else latent

    def v(x, t):
        return model.velocity(x, t, prompt, guidance)

    fwd = invert(x0, v, steps, solver, shift)
    back = sample(fwd.final, v, steps, solver, shift)
    trace = InversionTrace(
        solver, steps, fwd.nfe + back.nfe, fwd.times, fwd.latents, back.latents[::-1], prompt, guidance
    )
    trace.metrics["mel_mse"] = mel_mse(model, trace.source, trace.reconstruction)
    if audio_metrics and audio is not None:
        trace.metrics.update(audio_errors(model, audio, trace.reconstruction))
    return trace


def reconstruct_ddim(
    eps_fn, x0: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int = 50, num_train_timesteps: int = 1000
) -> InversionTrace:
    """DDIM inversion + DDIM regeneration of an epsilon-prediction model; times are ``timestep / T``."""
    ts = ddim_timesteps(steps, num_train_timesteps)
    up = ddim_invert(x0, eps_fn, alphas_cumprod, ts)  # x0 then levels ts[::-1]
    down = ddim_sample(up[-1], eps_fn, alphas_cumprod, ts)  # levels ts then x0
    times = np.concatenate([[0.0], ts[::-1] / num_train_timesteps])
    return InversionTrace("ddim", steps, 2 * steps, times, up, down[::-1])


def sweep(
    model: Any,
    audio: np.ndarray,
    prompt: str = "",
    *,
    budgets: Sequence[int] = (10, 20, 50),
    solvers: Sequence[str] = ("euler", "rf-solver"),
    guidance: float = 1.0,
    audio_metrics: bool = False,
    progress: bool = False,
) -> InversionSweep:
    """Reconstruction error per solver at equal model evaluations per direction (``budgets`` = NFE per direction).

    A budget of ``n`` gives Euler ``n`` steps and RF-Solver ``n // 2`` steps.
    """
    x0 = model.encode(audio)
    rows = []
    jobs = [(s, n) for n in budgets for s in solvers]
    it = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc="inversion sweep")
    for solver, n in it:
        steps = n // SOLVERS[check_known("solver", solver, SOLVERS)]
        if steps < 1:
            raise ConfigError(f"budget {n} is too small for {solver}")
        tr = reconstruct(model, latent=x0, prompt=prompt, solver=solver, steps=steps, guidance=guidance)
        row = {"solver": solver, "steps": steps, "nfe": n, "latent_mse": tr.latent_mse(), **tr.metrics}
        if audio_metrics:
            row.update(audio_errors(model, audio, tr.reconstruction))
        rows.append(row)
    return InversionSweep(rows, source=prompt)
