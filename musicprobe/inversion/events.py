"""The one step-event type every sampler and inverter emits, and the path they return.

Each model evaluation inside a sampler or inverter is announced as a :class:`StepEvent`, passed to the caller's
``context(event)`` (a context manager). That is how an editor tells its :class:`~musicprobe.hooks.Probe` the step and
time key (``probe.at_step(event)``) without the sampler knowing about hooks; the same events build the time axis of
an :class:`~musicprobe.inversion.InversionTrace`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch


def time_key(t: float, order: int = 0) -> tuple[float, int]:
    """The key features are stored and fetched under: ``(t rounded to 1e-6, order)``."""
    return (round(float(t), 6), int(order))


@dataclass(frozen=True)
class StepEvent:
    """One model evaluation inside a sampler step.

    ``step``: index along the walk (0 = the first step taken); ``order``: 0 for a step's first model call, 1 for
    RF-Solver's midpoint call; ``t``: the time the model is evaluated at, ``t_from`` / ``t_to``: the step's ends
    (flow time in [0, 1] for flows; ``timestep / num_train_timesteps`` for epsilon models, whose integer training
    timestep is ``timestep``); ``inverse``: True while walking towards noise.
    """

    step: int
    order: int
    t: float
    t_from: float
    t_to: float
    inverse: bool
    timestep: int | None = None

    @property
    def key(self) -> tuple[float, int]:
        """The time key of this call: its step's start time and its order."""
        return time_key(self.t_from, self.order)


Context = Callable[[StepEvent], AbstractContextManager]


def no_context(event: StepEvent) -> AbstractContextManager:
    return nullcontext()


@dataclass
class SamplerPath:
    """Latents visited along ``times`` (``len(times)`` of them, ``latents[0]`` at ``times[0]``), the model outputs
    used per step, and the events of every model evaluation."""

    times: np.ndarray
    latents: list[torch.Tensor]
    outputs: list[torch.Tensor]
    solver: str
    nfe: int
    events: list[StepEvent] = field(default_factory=list)

    @property
    def final(self) -> torch.Tensor:
        return self.latents[-1]

    @property
    def start(self) -> torch.Tensor:
        return self.latents[0]
