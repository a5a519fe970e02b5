"""The sampler/inverter layer every model family uses: one object, one step-event type, any protocol.

``Sampler(model, solver, steps, guidance)`` walks a :class:`~musicprobe.models.protocols.FlowModel` with Euler or
RF-Solver over the flow-time grid, and an :class:`~musicprobe.models.protocols.EpsModel` with DDIM over its training
timesteps (``"ddpm"``: edit-friendly inversion with stored noise maps, see :mod:`musicprobe.inversion.ddim`).
``sample`` goes noise -> data, ``invert`` data -> noise; both announce every model call as a
:class:`~musicprobe.inversion.events.StepEvent` through ``context`` and return a
:class:`~musicprobe.inversion.events.SamplerPath`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError, check_known
from musicprobe.inversion.ddim import NoiseMaps, ddim_invert, ddim_sample, ddim_timesteps, ddpm_invert, ddpm_sample
from musicprobe.inversion.events import Context, SamplerPath
from musicprobe.inversion.flow import FLOW_SOLVERS, integrate, thresholded
from musicprobe.inversion.grids import flow_times

EPS_SOLVERS = {"ddim": 1, "ddpm": 1}
SOLVERS = {**FLOW_SOLVERS, **EPS_SOLVERS}  # name -> model evaluations per step
FAMILY_SOLVERS = {"flow": tuple(FLOW_SOLVERS), "eps": tuple(EPS_SOLVERS)}


def _offset(context: Context | None, start: int) -> Context | None:
    """Announce flow steps with their number in the whole walk when the walk starts at step ``start``."""
    if context is None or start == 0:
        return context
    from dataclasses import replace

    return lambda event: context(replace(event, step=event.step + start))


def solvers_for(model: Any) -> tuple[str, ...]:
    """The solvers that apply to ``model``'s family."""
    from musicprobe.models.protocols import family_of

    family = family_of(model)
    if family not in FAMILY_SOLVERS:
        raise ConfigError(f"{type(model).__name__} is a {family} model: it has no diffusion sampler")
    return FAMILY_SOLVERS[family]


@dataclass
class Sampler:
    """Sample and invert ``model`` with ``solver`` in ``steps`` steps under classifier-free ``guidance``.

    ``shift`` bends the flow-time grid towards noise (SD3 / Flux); ignored by epsilon models. A flow model with a
    ``flow_times(steps)`` method (mini-SAO) brings its own grid, used unless a ``shift`` is given; an epsilon model
    with a ``ddim_timesteps(steps)`` method (a pipeline backend) brings its scheduler's timestep spacing.
    ``x0_clip``: a model that declares the range of its data (``x0_range``: mini-LDM's and mini-InstructME's log-mel
    latent) has every step's clean estimate clipped to it (static thresholding), sampling and inversion alike: DDIM
    in :func:`~musicprobe.inversion.ddim._ddim_step`, flows through :func:`~musicprobe.inversion.flow.thresholded`
    (no shipped flow model declares a range yet); edit-friendly DDPM and models without a declared range are never
    clipped.
    """

    model: Any
    solver: str = "rf-solver"
    steps: int = 25
    guidance: float = 1.0
    shift: float = 1.0
    x0_clip: bool = True

    def __post_init__(self) -> None:
        check_known("solver", self.solver, SOLVERS)
        allowed = solvers_for(self.model)
        if self.solver not in allowed:
            raise ConfigError(
                f"solver {self.solver!r} does not apply to {type(self.model).__name__}; use one of {list(allowed)}"
            )
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if not math.isfinite(self.guidance) or self.guidance < 1.0:
            raise ConfigError(f"guidance must be a finite number >= 1 (1 = no guidance), got {self.guidance}")

    @property
    def is_flow(self) -> bool:
        return self.solver in FLOW_SOLVERS

    @property
    def x0_range(self) -> tuple[float, float] | None:
        """The range DDIM clips its clean estimates to: the model's declared one, if ``x0_clip``."""
        return getattr(self.model, "x0_range", None) if self.x0_clip else None

    @property
    def nfe(self) -> int:
        """Model evaluations per direction."""
        return SOLVERS[self.solver] * self.steps

    def model_fn(self, prompt: Any, guidance: float | None = None) -> Callable[[torch.Tensor, Any], torch.Tensor]:
        """``f(x, t)``: the model's velocity (flows) or epsilon (epsilon models) under ``prompt``."""
        g = self.guidance if guidance is None else guidance
        if self.is_flow:
            def fn(x: torch.Tensor, t: float) -> torch.Tensor:
                return self.model.velocity(x, t, prompt, g)

            return fn if self.x0_range is None else thresholded(fn, self.x0_range)
        return lambda x, t: self.model.eps(x, t, prompt, g)

    def times(self) -> np.ndarray:
        """The grid from noise to data: flow times, or training timesteps (high to low)."""
        if self.is_flow:
            own = getattr(self.model, "flow_times", None)  # a model with its own noise grid (mini-SAO: SAO's sigmas)
            return own(self.steps) if callable(own) and self.shift == 1.0 else flow_times(self.steps, self.shift)
        own = getattr(self.model, "ddim_timesteps", None)  # a pipeline backend: its scheduler's own spacing
        return own(self.steps) if callable(own) else ddim_timesteps(self.steps, self.model.num_train_timesteps)

    def sample(
        self,
        noise: torch.Tensor,
        prompt: Any,
        *,
        guidance: float | None = None,
        context: Context | None = None,
        progress: Callable[[int], None] | None = None,
        until: int | None = None,
        start: int = 0,
    ) -> SamplerPath:
        """Noise -> data: steps ``start`` (default 0: from pure noise; SDEdit starts later) up to ``until``
        (default: all). ``noise`` is the latent at step ``start``'s level."""
        fn = self.model_fn(prompt, guidance)
        grid = self.times()
        until = self.steps if until is None else until
        if not 0 <= start <= until <= self.steps:
            raise ConfigError(f"need 0 <= start <= until <= steps={self.steps}, got start={start}, until={until}")
        if self.is_flow:
            path = integrate(noise, grid[start : until + 1], fn, self.solver, _offset(context, start), progress)
            return path
        if self.solver == "ddpm":
            raise ConfigError("ddpm sampling needs stored noise maps: use Sampler.invert_ddpm and sample_ddpm")
        m = self.model
        final = int(grid[until]) if until < self.steps else None
        return ddim_sample(noise, fn, m.alphas_cumprod, grid[start:until], context, m.num_train_timesteps,
                           final=final, first_step=start, x0_range=self.x0_range)

    def invert(
        self,
        x0: torch.Tensor,
        prompt: Any,
        *,
        guidance: float | None = None,
        context: Context | None = None,
        progress: Callable[[int], None] | None = None,
        start: int = 0,
    ) -> SamplerPath:
        """Data -> noise along the same grid, walked the other way (DDIM: epsilon at the destination timestep),
        up to step ``start``'s level (default 0: pure noise; a partial inversion ends where ``sample(start=...)``
        begins)."""
        if not 0 <= start < self.steps:
            raise ConfigError(f"need 0 <= start < steps={self.steps}, got start={start}")
        fn = self.model_fn(prompt, guidance)
        grid = self.times()[start:]
        if self.is_flow:
            return integrate(x0, grid[::-1].copy(), fn, self.solver, context, progress)
        if self.solver == "ddpm":
            raise ConfigError("ddpm inversion stores noise maps: use Sampler.invert_ddpm")
        m = self.model
        return ddim_invert(x0, fn, m.alphas_cumprod, grid, context, m.num_train_timesteps, x0_range=self.x0_range)

    def invert_ddpm(
        self,
        x0: torch.Tensor,
        prompt: Any,
        *,
        guidance: float | None = None,
        eta: float = 1.0,
        seed: int = 0,
        context: Context | None = None,
    ) -> NoiseMaps:
        """Edit-friendly DDPM inversion (stored noise maps; ZETA's inversion)."""
        self._need_eps("invert_ddpm")
        m = self.model
        g = torch.Generator().manual_seed(int(seed))
        return ddpm_invert(x0, self.model_fn(prompt, guidance), m.alphas_cumprod, self.times(), eta=eta,
                           generator=g, context=context, num_train_timesteps=m.num_train_timesteps)

    def sample_ddpm(
        self,
        maps: NoiseMaps,
        prompt: Any,
        *,
        start: int = 0,
        guidance: float | None = None,
        context: Context | None = None,
    ) -> SamplerPath:
        """Regenerate with stored noise maps from step ``start`` under ``prompt``."""
        self._need_eps("sample_ddpm")
        m = self.model
        return ddpm_sample(maps, self.model_fn(prompt, guidance), m.alphas_cumprod, start=start, context=context,
                           num_train_timesteps=m.num_train_timesteps)

    def _need_eps(self, what: str) -> None:
        if self.is_flow:
            raise ConfigError(f"{what} applies to epsilon models; {type(self.model).__name__} is a flow model")


def default_solver(model: Any, fallback: str | None = None) -> str:
    """The solver a model runs with by default: its own ``default_solver`` (mini-SAO: ``dpmpp-2m``, as Stable
    Audio's sampler), else ``fallback`` (editors: their config's solver), else the first of its family (``euler``
    for flows, ``ddim`` for epsilon models)."""
    return getattr(model, "default_solver", None) or fallback or solvers_for(model)[0]


def generate_latent(
    model: Any, prompt: Any, *, steps: int = 25, guidance: float = 4.0, seed: int = 0, solver: str | None = None
) -> torch.Tensor:
    """Text -> latent: sample ``model`` from ``seed``'s noise under ``prompt`` (with :func:`default_solver` unless
    ``solver`` says otherwise)."""
    solver = solver or default_solver(model)
    return Sampler(model, solver, steps, guidance).sample(model.noise(seed), prompt).final


def generate(model: Any, prompt: Any, *, steps: int = 25, guidance: float = 4.0, seed: int = 0, **kw) -> np.ndarray:
    """Text -> audio at ``model.sr`` (see :func:`generate_latent`)."""
    return model.decode(generate_latent(model, prompt, steps=steps, guidance=guidance, seed=seed, **kw))


def generate_latents(
    model: Any,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int = 25,
    guidance: float = 4.0,
    solver: str | None = None,
    batch: int = 16,
) -> torch.Tensor:
    """Latents of ``prompts[i]`` from ``seeds[i]``'s noise, ``batch`` generations per sampler run (one CFG-doubled
    model call per step per batch)."""
    if len(prompts) != len(seeds):
        raise ConfigError(f"generate_latents: {len(prompts)} prompts but {len(seeds)} seeds")
    sampler = Sampler(model, solver or default_solver(model), steps, guidance)
    outs = []
    for i in range(0, len(prompts), batch):
        ps, ss = prompts[i : i + batch], seeds[i : i + batch]
        noise = torch.cat([model.noise(s) for s in ss])
        outs.append(sampler.sample(noise, model.encode_prompt(ps)).final)
    return torch.cat(outs)
