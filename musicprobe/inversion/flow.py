"""Rectified-flow ODE solvers for sampling and inversion: Euler and RF-Solver (second order).

Convention: ``x_t = (1 - t) x0 + t * eps``, ``dx/dt = v(x, t)``. Inversion integrates from ``t = 0`` (data) up to
``t = 1`` (noise); sampling from 1 down to 0. Both use the same grid (:func:`flow_times`), walked in opposite
directions.

RF-Solver (Wang et al., RF-Solver-Edit) takes per step ``h = t_next - t``::

    v1 = v(x, t);  x_mid = x + h/2 * v1;  v2 = v(x_mid, t + h/2)
    x_next = x + h * v1 + 0.5 * h**2 * (v2 - v1) / (h/2)        (= x + h * v2, the explicit midpoint rule)

We keep the two-call form because editors cache attention features from *both* calls. Every model call is
wrapped in ``context(call)`` (a :class:`SolverCall` -> context manager), which is how an editor tells its
:class:`~musicprobe.hooks.Probe` the step and time key without the solver knowing about hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from musicprobe.errors import check_known
from musicprobe.inversion.schedules import flow_times

SOLVERS = {"euler": 1, "rf-solver": 2}  # name -> model evaluations per step

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class SolverCall:
    """One model evaluation inside a solver step.

    ``step`` is the index along the walk (0 = first step taken), ``order`` 0 for the first call and 1 for
    RF-Solver's midpoint call, ``t`` the time the model is evaluated at, ``t_from``/``t_to`` the step's ends.
    """

    step: int
    order: int
    t: float
    t_from: float
    t_to: float
    inverse: bool


@dataclass
class FlowPath:
    """Latents visited (``len(times)`` of them, starting at ``times[0]``) and the velocities used per step."""

    times: np.ndarray
    latents: list[torch.Tensor]
    velocities: list[torch.Tensor]
    solver: str
    nfe: int

    @property
    def final(self) -> torch.Tensor:
        return self.latents[-1]


def nfe_per_step(solver: str) -> int:
    return SOLVERS[check_known("solver", solver, SOLVERS)]


def integrate(
    x: torch.Tensor,
    times: np.ndarray,
    velocity: Velocity,
    solver: str = "rf-solver",
    context: Callable[[SolverCall], AbstractContextManager] | None = None,
    progress: Callable[[int], None] | None = None,
) -> FlowPath:
    """Walk ``x`` along ``times`` (any direction) with ``solver``; returns the visited latents."""
    order = nfe_per_step(solver)
    ctx = context or (lambda call: nullcontext())
    inverse = bool(times[-1] > times[0])
    latents, velocities = [x.detach().clone()], []
    for i in range(len(times) - 1):
        t, t_next = float(times[i]), float(times[i + 1])
        h = t_next - t
        with ctx(SolverCall(i, 0, t, t, t_next, inverse)):
            v1 = velocity(x, t)
        if order == 1:
            x = x + h * v1
            velocities.append(v1)
        else:
            x_mid = x + 0.5 * h * v1
            with ctx(SolverCall(i, 1, t + 0.5 * h, t, t_next, inverse)):
                v2 = velocity(x_mid, t + 0.5 * h)
            first_order = (v2 - v1) / (0.5 * h)
            x = x + h * v1 + 0.5 * h**2 * first_order
            velocities.append(v2)
        latents.append(x.detach().clone())
        if progress is not None:
            progress(i)
    return FlowPath(np.asarray(times, dtype=np.float64), latents, velocities, solver, order * (len(times) - 1))


def invert(
    x0: torch.Tensor,
    velocity: Velocity,
    steps: int,
    solver: str = "rf-solver",
    shift: float = 1.0,
    context=None,
    progress=None,
) -> FlowPath:
    """Data -> noise: integrate from t = 0 to t = 1."""
    return integrate(x0, flow_times(steps, shift)[::-1].copy(), velocity, solver, context, progress)


def sample(
    x1: torch.Tensor,
    velocity: Velocity,
    steps: int,
    solver: str = "rf-solver",
    shift: float = 1.0,
    context=None,
    progress=None,
) -> FlowPath:
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
