"""Rectified-flow ODE solvers for sampling and inversion: Euler and RF-Solver (second order).

Convention: ``x_t = (1 - t) x0 + t * eps``, ``dx/dt = v(x, t)``. Inversion integrates from ``t = 0`` (data) up to
``t = 1`` (noise); sampling from 1 down to 0. Both use the same grid (:func:`flow_times`), walked in opposite
directions.

RF-Solver (Wang et al., RF-Solver-Edit) takes per step ``h = t_next - t``::

    v1 = v(x, t);  x_mid = x + h/2 * v1;  v2 = v(x_mid, t + h/2)
    x_next = x + h * v1 + 0.5 * h**2 * (v2 - v1) / (h/2)        (= x + h * v2, the explicit midpoint rule)

We keep the two-call form because editors cache attention features from *both* calls.

DPM-Solver++(2M) (Lu et al. 2022; the deterministic sampler MusicKV's reference vendors for Stable Audio, whose
stock ``CosineDPMSolverMultistepScheduler`` adds SDE noise) works on the data prediction ``x0_hat = x - t v`` with
``lambda = log((1 - t) / t)``, one model call per step, re-using the previous step's ``x0_hat``::

    h = lambda(t_next) - lambda(t);  r = h_prev / h
    D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_prev
    x_next = (t_next / t) x + (1 - t_next / t) D

A step that starts or ends at ``t = 0`` or ``t = 1`` (where ``lambda`` is infinite), and the first step of a walk,
take the first-order update ``x + h v`` (DPM-Solver++(1), which is DDIM and Euler at once in this
parameterisation; diffusers' ``lower_order_final`` for the last step). Inversion walks the same grid the other way
with the same update, each model call at the step's starting point.

Every model call is wrapped in ``context(event)`` (a :class:`~musicprobe.inversion.events.StepEvent` -> context
manager).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from musicprobe.errors import check_known
from musicprobe.inversion.events import Context, SamplerPath, StepEvent, no_context
from musicprobe.inversion.grids import flow_times

FLOW_SOLVERS = {"euler": 1, "rf-solver": 2, "dpmpp-2m": 1}  # name -> model evaluations per step

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


def nfe_per_step(solver: str) -> int:
    return FLOW_SOLVERS[check_known("flow solver", solver, FLOW_SOLVERS)]


def integrate(
    x: torch.Tensor,
    times: np.ndarray,
    velocity: Velocity,
    solver: str = "rf-solver",
    context: Context | None = None,
    progress: Callable[[int], None] | None = None,
) -> SamplerPath:
    """Walk ``x`` along ``times`` (any direction) with ``solver``; returns the visited latents and events."""
    order = nfe_per_step(solver)
    ctx = context or no_context
    inverse = bool(times[-1] > times[0])
    latents, outputs, events = [x.detach().clone()], [], []

    def call(event: StepEvent, x_in: torch.Tensor) -> torch.Tensor:
        events.append(event)
        with ctx(event):
            return velocity(x_in, event.t)

    multistep = _Multistep() if solver == "dpmpp-2m" else None
    for i in range(len(times) - 1):
        t, t_next = float(times[i]), float(times[i + 1])
        h = t_next - t
        v1 = call(StepEvent(i, 0, t, t, t_next, inverse), x)
        if multistep is not None:
            x = multistep.step(x, v1, t, t_next)
            outputs.append(v1)
        elif order == 1:
            x = x + h * v1
            outputs.append(v1)
        else:
            x_mid = x + 0.5 * h * v1
            v2 = call(StepEvent(i, 1, t + 0.5 * h, t, t_next, inverse), x_mid)
            first_order = (v2 - v1) / (0.5 * h)
            x = x + h * v1 + 0.5 * h**2 * first_order
            outputs.append(v2)
        latents.append(x.detach().clone())
        if progress is not None:
            progress(i)
    return SamplerPath(np.asarray(times, dtype=np.float64), latents, outputs, solver, order * (len(times) - 1), events)


def thresholded(velocity: Velocity, x0_range: tuple[float, float]) -> Velocity:
    """``velocity`` with its clean estimate clipped to ``x0_range`` (static thresholding for a rectified flow, the
    flow form of DDIM's ``x0_range``): ``x0_hat = x - t v`` is clipped and the velocity that agrees with it,
    ``(x - clip(x0_hat)) / t``, returned; at ``t = 0`` the latent is the data and nothing is clipped. Inside the range
    the velocity is unchanged."""
    lo, hi = x0_range

    def v(x: torch.Tensor, t: float) -> torch.Tensor:
        out = velocity(x, t)
        if t <= 0.0:
            return out
        return (x - (x - t * out).clamp(lo, hi)) / t

    return v


def _lam(t: float) -> float:
    return float(np.log((1 - t) / t))


class _Multistep:
    """The state of a DPM-Solver++(2M) walk (see the module docstring): the previous data prediction and step."""

    def __init__(self) -> None:
        self.prev: tuple[torch.Tensor, float] | None = None  # (x0_hat, lambda) of the previous step

    def step(self, x: torch.Tensor, v: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
        x0_hat = x - t * v
        lam = _lam(t) if 0.0 < t < 1.0 else None
        prev, self.prev = self.prev, (None if lam is None else (x0_hat, lam))
        if prev is None or lam is None or not 0.0 < t_next < 1.0:
            return x + (t_next - t) * v
        h = _lam(t_next) - lam
        r = (lam - prev[1]) / h
        d = (1 + 0.5 / r) * x0_hat - (0.5 / r) * prev[0]
        return (t_next / t) * x + (1 - t_next / t) * d


def invert(
    x0: torch.Tensor,
    velocity: Velocity,
    steps: int,
    solver: str = "rf-solver",
    shift: float = 1.0,
    context: Context | None = None,
    progress=None,
) -> SamplerPath:
    """Data -> noise: integrate from t = 0 to t = 1."""
    return integrate(x0, flow_times(steps, shift)[::-1].copy(), velocity, solver, context, progress)


def sample(
    x1: torch.Tensor,
    velocity: Velocity,
    steps: int,
    solver: str = "rf-solver",
    shift: float = 1.0,
    context: Context | None = None,
    progress=None,
) -> SamplerPath:
    """Noise -> data: integrate from t = 1 to t = 0."""
    return integrate(x1, flow_times(steps, shift), velocity, solver, context, progress)


def gaussian_velocity(scale: float) -> Velocity:
    """The exact marginal velocity when the data are ``N(0, scale^2 I)`` (a known-answer field for tests/teaching).

    ``E[eps - x0 | x_t = x] = x * (t - (1 - t) s^2) / ((1 - t)^2 s^2 + t^2)``.
    """
    s2 = float(scale) ** 2

    def v(x: torch.Tensor, t: float) -> torch.Tensor:
        return x * (t - (1 - t) * s2) / ((1 - t) ** 2 * s2 + t**2)

    return v


def gaussian_flow_map(x: torch.Tensor, t0: float, t1: float, scale: float) -> torch.Tensor:
    """Exact ODE transport for :func:`gaussian_velocity`: ``x * sigma(t1) / sigma(t0)``, sigma^2 = (1-t)^2 s^2 + t^2."""
    s2 = float(scale) ** 2

    def sigma(t: float) -> float:
        return float(np.sqrt((1 - t) ** 2 * s2 + t**2))

    return x * (sigma(t1) / sigma(t0))
