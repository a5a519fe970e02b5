"""Stable Audio's cosine ("trig-flow") v-prediction seen as a rectified flow.

``CosineDPMSolverMultistepScheduler`` (``sigma_data = 1``) feeds the network ``x0 cos(a) + eps sin(a)`` with
``a = atan(sigma)`` and the time input ``2 a / pi``, and the network predicts ``v = eps cos(a) - x0 sin(a)``. The
rectified-flow latent at ``t = sin a / (sin a + cos a)`` (``t / (1 - t) = sigma``) is that input divided by
``cos a + sin a``, so one v-prediction gives the flow velocity ``eps_hat - x0_hat`` exactly. mini-SAO and the real
Stable Audio Open backend share this conversion.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def trig_angle(t: torch.Tensor | float) -> torch.Tensor:
    """Rectified-flow time ``t`` -> trig-flow angle ``a`` (``tan a = t / (1 - t) = sigma``)."""
    t = torch.as_tensor(t, dtype=torch.float32)
    return torch.atan2(t, 1 - t)


def velocity_from_v(
    predict_v: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, t: torch.Tensor | float
) -> torch.Tensor:
    """Flow velocity at RF latents ``x`` (B, ...) and time ``t`` from ``predict_v(x_in, angle)``, the network's
    v-prediction for trig-flow inputs ``x_in`` at ``angle`` (radians, shape (B or 1, 1, ...))."""
    a = trig_angle(t).to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
    c, s = torch.cos(a), torch.sin(a)
    x_in = x * (c + s)  # x_rf = (x0 cos a + eps sin a) / (cos a + sin a)
    v = predict_v(x_in, a)
    return (s - c) * x_in + (s + c) * v


def sigma_to_time(sigma: torch.Tensor | float) -> torch.Tensor:
    """Noise level ``sigma`` -> rectified-flow time ``sigma / (1 + sigma)``."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    return sigma / (1 + sigma)
