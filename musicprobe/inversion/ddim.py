"""DDIM sampling and inversion for epsilon-prediction diffusion models (AudioLDM2, Stable Audio's UNet-era peers).

Deterministic DDIM (eta = 0) with ``alphas_cumprod`` from any diffusers scheduler config::

    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t);   x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) eps

Sampling walks the timesteps downwards; inversion walks them upwards, predicting epsilon at the current
(lower-noise) latent with the *destination* timestep — the usual DDIM-inversion approximation (diffusers'
``DDIMInverseScheduler``, null-text inversion), whose error shrinks with the step size and the trace measures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from musicprobe.errors import ConfigError

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """Evenly spaced training timesteps, high to low (diffusers' "leading" spacing)."""
    if not 1 <= steps <= num_train_timesteps:
        raise ConfigError(f"steps must be in 1..{num_train_timesteps}, got {steps}")
    ratio = num_train_timesteps // steps
    return (np.arange(steps) * ratio)[::-1].astype(np.int64)


def _step(x: torch.Tensor, eps: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
    x0 = (x - (1 - a_from) ** 0.5 * eps) / a_from**0.5
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


def ddim_sample(
    x: torch.Tensor, eps_fn: EpsFn, alphas_cumprod: torch.Tensor, timesteps: np.ndarray, context=None
) -> list[torch.Tensor]:
    """Noise at ``timesteps[0]`` -> data; returns all latents visited."""
    from contextlib import nullcontext

    ctx = context or (lambda i, t: nullcontext())
    path = [x]
    for i, t in enumerate(timesteps):
        a_t = float(alphas_cumprod[t])
        a_prev = float(alphas_cumprod[timesteps[i + 1]]) if i + 1 < len(timesteps) else 1.0
        with ctx(i, int(t)):
            eps = eps_fn(x, int(t))
        x = _step(x, eps, a_t, a_prev)
        path.append(x)
    return path


def ddim_invert(
    x0: torch.Tensor, eps_fn: EpsFn, alphas_cumprod: torch.Tensor, timesteps: np.ndarray, context=None
) -> list[torch.Tensor]:
    """Data -> noise at ``timesteps[0]`` (walks ``timesteps`` from the last to the first); returns the path."""
    from contextlib import nullcontext

    ctx = context or (lambda i, t: nullcontext())
    ts = list(timesteps[::-1])
    path = [x0]
    x = x0
    for j, t in enumerate(ts):
        a_t = float(alphas_cumprod[t])
        a_prev = float(alphas_cumprod[ts[j - 1]]) if j > 0 else 1.0
        with ctx(len(ts) - 1 - j, int(t)):
            eps = eps_fn(x, int(t))  # destination timestep, as diffusers' DDIMInverseScheduler / null-text
        x = _step(x, eps, a_prev, a_t)
        path.append(x)
    return path


def gaussian_eps(scale: float, alphas_cumprod: torch.Tensor) -> EpsFn:
    """The exact epsilon when the data are ``N(0, scale^2 I)`` (a known-answer model for tests and teaching).

    ``E[eps | x_t = x] = sqrt(1 - a) x / (a s^2 + 1 - a)``; its DDIM ODE maps ``x_t`` to
    ``x_t * sigma(s) / sigma(t)`` with ``sigma(t)^2 = a_t s^2 + 1 - a_t`` (:func:`gaussian_ddim_map`).
    """
    s2 = float(scale) ** 2

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        a = float(alphas_cumprod[t])
        return (1 - a) ** 0.5 * x / (a * s2 + 1 - a)

    return eps


def gaussian_ddim_map(x: torch.Tensor, a_from: float, a_to: float, scale: float) -> torch.Tensor:
    """Exact DDIM (probability-flow) transport between noise levels for :func:`gaussian_eps`."""
    s2 = float(scale) ** 2
    return x * ((a_to * s2 + 1 - a_to) / (a_from * s2 + 1 - a_from)) ** 0.5
