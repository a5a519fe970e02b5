"""Samplers and inverters for epsilon-prediction models: deterministic DDIM and edit-friendly DDPM (stored noise).

**DDIM** (eta = 0), with ``alphas_cumprod`` ``a`` from any diffusers scheduler config::

    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t);   x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) eps

Sampling walks the timesteps downwards; inversion walks them upwards, predicting epsilon at the current
(lower-noise) latent with the *destination* timestep — the usual DDIM-inversion approximation (diffusers'
``DDIMInverseScheduler``, null-text inversion), whose error shrinks with the step size and the trace measures.

**Edit-friendly DDPM inversion** (Huberman-Spiegelglas et al., 2024; ZETA, Manor & Michaeli, 2024): draw every
noisy latent *independently* from ``x0`` (``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) n_t``), then walk the timesteps
downwards and store the noise map ``z_t`` that makes one stochastic DDPM step land exactly on the next latent::

    mu_t = sqrt(a_s) x0_hat + sqrt(1 - a_s - sigma_t^2) eps;   z_t = (x_s - mu_t) / sigma_t
    sigma_t^2 = eta^2 (1 - a_s) / (1 - a_t) (1 - a_t / a_s)      (the DDPM posterior variance for eta = 1)

Sampling with the stored maps under the same prompt reproduces the path exactly; under another prompt it edits.
Where ``sigma_t = 0`` (the last step, ``a_s = 1``) the stored map is the residual itself (scale 1), so the
reconstruction stays exact: our choice, where the reference code would divide by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.inversion.events import Context, SamplerPath, StepEvent, no_context

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """Evenly spaced training timesteps, high to low (diffusers' "leading" spacing)."""
    if not 1 <= steps <= num_train_timesteps:
        raise ConfigError(f"steps must be in 1..{num_train_timesteps}, got {steps}")
    ratio = num_train_timesteps // steps
    return (np.arange(steps) * ratio)[::-1].astype(np.int64)


def _alpha(alphas_cumprod: torch.Tensor, t: int | None) -> float:
    """``a_t``; ``None`` (one step past the last timestep) is the clean data, ``a = 1``."""
    return 1.0 if t is None else float(alphas_cumprod[t])


def clean_estimate(x: torch.Tensor, eps: torch.Tensor, a: float,
                   x0_range: tuple[float, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean estimate ``x0 = (x - sqrt(1 - a) eps) / sqrt(a)`` of a noise prediction ``eps`` at ``x`` (level
    ``a``), and the noise that agrees with it. ``x0_range``: clip the estimate to the data's range first and take
    the noise that agrees with the clipped one, ``(x - sqrt(a) x0) / sqrt(1 - a)`` (static thresholding, Imagen;
    diffusers' ``clip_sample``). ``eps`` comes back as given inside the range, without one, and at the data itself
    (``a == 1``: nothing to clip)."""
    x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
    if x0_range is not None and a < 1.0:
        x0 = x0.clamp(*x0_range)
        eps = (x - a**0.5 * x0) / (1 - a) ** 0.5
    return x0, eps


def thresholded_eps(x: torch.Tensor, eps: torch.Tensor, a: float,
                    x0_range: tuple[float, float] | None) -> torch.Tensor:
    """``eps`` with its clean estimate clipped to ``x0_range`` (:func:`clean_estimate`): what a DDIM step with
    static thresholding moves along, for a method that uses noise predictions without walking a sampler (DDS)."""
    return clean_estimate(x, eps, a, x0_range)[1]


def _ddim_step(x: torch.Tensor, eps: torch.Tensor, a_from: float, a_to: float,
               x0_range: tuple[float, float] | None = None) -> torch.Tensor:
    """One DDIM move from level ``a_from`` to ``a_to``. ``x0_range``: the clean estimate clipped to the data's range
    (:func:`clean_estimate`), in both directions, so a regeneration retraces its inversion (diffusers' DDIM inverse
    scheduler clips too)."""
    x0, eps = clean_estimate(x, eps, a_from, x0_range)
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


def _walk(
    x: torch.Tensor,
    levels: list[int | None],
    eval_at: list[int],
    eps_fn: EpsFn,
    alphas_cumprod: torch.Tensor,
    n_train: int,
    inverse: bool,
    context: Context | None,
    solver: str,
    first_step: int = 0,
    x0_range: tuple[float, float] | None = None,
) -> SamplerPath:
    """DDIM from ``levels[0]`` through ``levels[1:]``, evaluating epsilon at timestep ``eval_at[i]`` in step ``i``
    (announced as step ``first_step + i``; ``x0_range``: see :func:`_ddim_step`)."""
    ctx = context or no_context
    latents, outputs, events = [x.detach().clone()], [], []
    frac = [0.0 if lv is None else lv / n_train for lv in levels]
    for i, t_eval in enumerate(eval_at):
        ev = StepEvent(first_step + i, 0, t_eval / n_train, frac[i], frac[i + 1], inverse, int(t_eval))
        events.append(ev)
        with ctx(ev):
            eps = eps_fn(x, int(t_eval))
        x = _ddim_step(x, eps, _alpha(alphas_cumprod, levels[i]), _alpha(alphas_cumprod, levels[i + 1]), x0_range)
        latents.append(x.detach().clone())
        outputs.append(eps)
    times = np.asarray(frac, dtype=np.float64)
    return SamplerPath(times, latents, outputs, solver, len(eval_at), events)


def ddim_sample(
    x: torch.Tensor,
    eps_fn: EpsFn,
    alphas_cumprod: torch.Tensor,
    timesteps: np.ndarray,
    context: Context | None = None,
    num_train_timesteps: int = 1000,
    *,
    final: int | None = None,
    first_step: int = 0,
    x0_range: tuple[float, float] | None = None,
) -> SamplerPath:
    """Noise at ``timesteps[0]`` -> data (or -> timestep ``final`` for a partial walk); ``path.latents`` are the
    levels visited. Steps are announced from ``first_step`` (a walk that starts part-way keeps its step numbers).
    ``x0_range``: clip each clean estimate to the data's range (see :func:`_ddim_step`)."""
    ts = [int(t) for t in timesteps]
    return _walk(x, [*ts, final], ts, eps_fn, alphas_cumprod, num_train_timesteps, False, context, "ddim",
                 first_step, x0_range)


def ddim_invert(
    x0: torch.Tensor,
    eps_fn: EpsFn,
    alphas_cumprod: torch.Tensor,
    timesteps: np.ndarray,
    context: Context | None = None,
    num_train_timesteps: int = 1000,
    x0_range: tuple[float, float] | None = None,
) -> SamplerPath:
    """Data -> noise at ``timesteps[0]`` (walks ``timesteps`` upwards, epsilon at the destination timestep;
    ``x0_range``: see :func:`_ddim_step`)."""
    up = [int(t) for t in timesteps[::-1]]
    return _walk(x0, [None, *up], up, eps_fn, alphas_cumprod, num_train_timesteps, True, context, "ddim",
                 x0_range=x0_range)


@dataclass
class NoiseMaps:
    """What edit-friendly DDPM inversion stores: the timesteps (high to low), the latents ``xts`` at them (then
    ``x0``), the noise maps ``zs`` and their scales (``sigma_t``, or 1 where ``sigma_t = 0``)."""

    timesteps: np.ndarray
    xts: list[torch.Tensor]
    zs: list[torch.Tensor]
    scales: list[float]
    eta: float

    def as_path(self, num_train_timesteps: int = 1000) -> SamplerPath:
        """The stored latents as an inversion path (data first, then rising noise), for an
        :class:`~musicprobe.inversion.InversionTrace` against a regeneration."""
        times = np.concatenate([[0.0], self.timesteps[::-1] / num_train_timesteps])
        return SamplerPath(times, [self.xts[-1], *self.xts[-2::-1]], [], "ddpm", len(self.timesteps))

    def start_index(self, t_start: int) -> int:
        """The first step whose timestep is ``<= t_start`` (ZETA's ``T_start``)."""
        idx = np.nonzero(self.timesteps <= t_start)[0]
        if not len(idx):
            raise ConfigError(f"t_start={t_start} is below every timestep (lowest {int(self.timesteps[-1])})")
        return int(idx[0])


def _level_event(i: int, t: int, nxt: int | None, inverse: bool, n_train: int) -> StepEvent:
    """The event of DDPM step ``i`` at timestep ``t`` towards ``nxt`` (None: the data)."""
    return StepEvent(i, 0, t / n_train, t / n_train, 0.0 if nxt is None else nxt / n_train, inverse, t)


def _ddpm_mean(x: torch.Tensor, eps: torch.Tensor, a_t: float, a_s: float, eta: float) -> tuple[torch.Tensor, float]:
    """The DDPM step's mean ``mu_t`` and standard deviation ``sigma_t`` (see the module docstring)."""
    var = (1 - a_s) / (1 - a_t) * (1 - a_t / a_s) if a_t < 1 else 0.0
    sigma = eta * max(var, 0.0) ** 0.5
    x0_hat = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
    mu = a_s**0.5 * x0_hat + max(1 - a_s - sigma**2, 0.0) ** 0.5 * eps
    return mu, sigma


def ddpm_invert(
    x0: torch.Tensor,
    eps_fn: EpsFn,
    alphas_cumprod: torch.Tensor,
    timesteps: np.ndarray,
    *,
    eta: float = 1.0,
    generator: torch.Generator | None = None,
    context: Context | None = None,
    num_train_timesteps: int = 1000,
) -> NoiseMaps:
    """Edit-friendly DDPM inversion of ``x0``: independent noisy latents, then the noise maps (module docstring)."""
    if eta <= 0:
        raise ConfigError(f"edit-friendly DDPM inversion needs eta > 0, got {eta}")
    ctx = context or no_context
    ts = [int(t) for t in timesteps]
    xts = []
    for t in ts:
        a = _alpha(alphas_cumprod, t)
        n = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        xts.append(a**0.5 * x0 + (1 - a) ** 0.5 * n)
    xts.append(x0)
    zs, scales = [], []
    for i, t in enumerate(ts):
        nxt = ts[i + 1] if i + 1 < len(ts) else None
        with ctx(_level_event(i, t, nxt, True, num_train_timesteps)):
            eps = eps_fn(xts[i], t)
        mu, sigma = _ddpm_mean(xts[i], eps, _alpha(alphas_cumprod, t), _alpha(alphas_cumprod, nxt), eta)
        scale = sigma if sigma > 0 else 1.0
        z = (xts[i + 1] - mu) / scale
        zs.append(z)
        scales.append(scale)
        if i + 1 < len(ts):
            xts[i + 1] = mu + scale * z  # the reference's correction: no drift from rounding
    return NoiseMaps(np.asarray(ts), xts, zs, scales, eta)


def ddpm_sample(
    maps: NoiseMaps,
    eps_fn: EpsFn,
    alphas_cumprod: torch.Tensor,
    *,
    start: int = 0,
    x: torch.Tensor | None = None,
    context: Context | None = None,
    num_train_timesteps: int = 1000,
) -> SamplerPath:
    """Denoise with the stored noise maps from step ``start`` (from ``maps.xts[start]`` unless ``x`` is given)."""
    if not 0 <= start < len(maps.timesteps):
        raise ConfigError(f"start must be within 0..{len(maps.timesteps) - 1}, got {start}")
    ctx = context or no_context
    ts = [int(t) for t in maps.timesteps]
    x = maps.xts[start] if x is None else x
    latents, outputs, events = [x.detach().clone()], [], []
    for i in range(start, len(ts)):
        t, nxt = ts[i], (ts[i + 1] if i + 1 < len(ts) else None)
        ev = _level_event(i, t, nxt, False, num_train_timesteps)
        events.append(ev)
        with ctx(ev):
            eps = eps_fn(x, t)
        mu, _ = _ddpm_mean(x, eps, _alpha(alphas_cumprod, t), _alpha(alphas_cumprod, nxt), maps.eta)
        x = mu + maps.scales[i] * maps.zs[i]
        latents.append(x.detach().clone())
        outputs.append(eps)
    times = np.asarray([t / num_train_timesteps for t in ts[start:]] + [0.0])
    return SamplerPath(times, latents, outputs, "ddpm", len(ts) - start, events)


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
