"""Shared parts of the flow-model editors: invert while recording K/V, denoise while injecting them.

MusRec, MusicKV's real-audio path and plain RF inversion are compositions of these two functions with an
:class:`~musicprobe.hooks.InjectionSchedule`; the solver loop lives in :mod:`musicprobe.inversion.flow` and the
hooks in :class:`~musicprobe.hooks.Probe`. Nothing here copies a pipeline.

**Time keys.** Features are stored and fetched under ``(t, order)`` keys (``order`` 1 = RF-Solver's midpoint
call). Two alignments are offered:

- ``"reference"`` (RF-Solver-Edit's code): an inversion step ``t_a -> t_b`` (``t_a < t_b``) stores under its
  *destination* ``t_b``; the denoising step starting at ``t_b`` fetches them. The edit at noise level ``t_b`` thus
  receives features computed half a step lower — part of the reference behaviour.
- ``"same_time"``: an inversion step stores under its *start* ``t_a``, so a denoising step starting at ``t``
  receives the features computed at ``t`` itself (the last inversion step's features are then never used, and
  the first denoising step, at ``t = 1``, has none: it is not injected).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, KVStore, Probe
from musicprobe.inversion import FlowPath, SolverCall, flow_times, invert, sample

ALIGNMENTS = ("reference", "same_time")


def time_key(t: float, order: int) -> tuple[float, int]:
    return (round(float(t), 6), int(order))


def _record_key(call: SolverCall, alignment: str) -> tuple[float, int]:
    return time_key(call.t_to if alignment == "reference" else call.t_from, call.order)


def _consumer_step(call: SolverCall, steps: int, alignment: str) -> int:
    """The denoising step that will fetch what this inversion call records."""
    return steps - 1 - call.step if alignment == "reference" else steps - call.step


@dataclass
class InvertedSource:
    """A source inverted under its prompt: the inversion path and the K/V recorded along it."""

    path: FlowPath
    store: KVStore | None
    layers: list[str]
    prompt: str
    steps: int
    solver: str
    alignment: str
    guidance: float
    shift: float = 1.0

    @property
    def noise(self) -> torch.Tensor:
        return self.path.final

    @property
    def source_latent(self) -> torch.Tensor:
        return self.path.latents[0]


def invert_and_record(
    model: Any,
    probe: Probe,
    x0: torch.Tensor,
    prompt: str,
    layers: Iterable[str],
    *,
    steps: int = 25,
    solver: str = "rf-solver",
    guidance: float = 1.0,
    alignment: str = "reference",
    record_steps: int | None = None,
    shift: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> InvertedSource:
    """Invert ``x0`` under ``prompt``, recording K/V of ``layers`` for the first ``record_steps`` denoising steps."""
    check_known("key alignment", alignment, ALIGNMENTS)
    layers = list(layers)
    record_steps = steps if record_steps is None else record_steps
    if not 0 <= record_steps <= steps:
        raise ConfigError(f"record_steps must be within 0..{steps}, got {record_steps}")

    def velocity(x, t):
        return model.velocity(x, t, prompt, guidance)

    def context(call: SolverCall):
        return probe.at_step(_consumer_step(call, steps, alignment), _record_key(call, alignment))

    if not layers or record_steps == 0:
        path = invert(x0, velocity, steps, solver, shift, context=context, progress=progress)
        return InvertedSource(path, None, layers, prompt, steps, solver, alignment, guidance, shift)
    with probe.record_kv(layers, steps=range(record_steps)) as store:
        path = invert(x0, velocity, steps, solver, shift, context=context, progress=progress)
    return InvertedSource(path, store, layers, prompt, steps, solver, alignment, guidance, shift)


def generate_and_record(
    model: Any,
    probe: Probe,
    noise: torch.Tensor,
    prompt: str,
    layers: Iterable[str],
    *,
    steps: int = 25,
    solver: str = "euler",
    guidance: float = 4.0,
    shift: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[InvertedSource, torch.Tensor]:
    """Generate from ``noise`` under ``prompt`` recording K/V at every call (the generated-audio path of MusicKV).

    Returns a source that :func:`denoise` can inject from (keys at the same times as the edit's calls) and the
    generated latent. ``source.noise`` is ``noise``, so the edit starts from the same point.
    """
    layers = list(layers)

    def velocity(x, t):
        return model.velocity(x, t, prompt, guidance)

    def context(call: SolverCall):
        return probe.at_step(call.step, time_key(call.t_from, call.order))

    with probe.record_kv(layers) as store:
        path = sample(noise, velocity, steps, solver, shift, context=context, progress=progress)
    start = FlowPath(path.times[::-1].copy(), [path.final, noise], [], solver, path.nfe)
    return InvertedSource(start, store, layers, prompt, steps, solver, "same_time", guidance, shift), path.final


def denoise(
    model: Any,
    probe: Probe,
    source: InvertedSource,
    prompt: str,
    *,
    schedule: InjectionSchedule | None = None,
    guidance: float = 4.0,
    capture: list[str] | None = None,
    capture_steps: Iterable[int] | None = None,
    shift: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[FlowPath, dict[str, np.ndarray]]:
    """Denoise the inverted noise under ``prompt``, injecting ``source``'s K/V as ``schedule`` says.

    Returns the path and, for each hook name in ``capture``, the attention captured (heads averaged, conditional
    branch, mean over ``capture_steps``) as a numpy array.
    """
    from contextlib import ExitStack

    if schedule is not None:
        if schedule.n_steps != source.steps:
            raise ConfigError(f"schedule.n_steps={schedule.n_steps} but the source was inverted in {source.steps}")
        if source.store is None and any(schedule.weight(i) > 0 for i in range(schedule.n_steps)):
            raise ConfigError("the source was inverted without recording K/V; invert with layers and record_steps")

    def velocity(x, t):
        return model.velocity(x, t, prompt, guidance)

    def context(call: SolverCall):
        return probe.at_step(call.step, time_key(call.t_from, call.order))

    with ExitStack() as stack:
        if (
            schedule is not None
            and source.store is not None
            and any(schedule.weight(i) > 0 for i in range(source.steps))
        ):
            stack.enter_context(_safe_inject(probe, source, schedule))
        cache = None
        if capture:
            cache = stack.enter_context(
                probe.capture(
                    capture,
                    heads="mean",
                    branch="cond" if guidance != 1.0 else "all",
                    steps=capture_steps,
                    reduce_steps=True,
                )
            )
        path = sample(source.noise, velocity, source.steps, source.solver, shift, context=context, progress=progress)
    maps = {name: cache[name].float().numpy() for name in cache.names()} if cache is not None else {}
    return path, maps


def _safe_inject(probe: Probe, source: InvertedSource, schedule: InjectionSchedule):
    """Inject, dropping steps that have no recorded features (``same_time`` alignment's first step)."""
    have = {key for (_pt, key) in source.store.data}  # type: ignore[union-attr]
    weights = [schedule.weight(i) if time_key(_start_time(source, i), 0) in have else 0.0 for i in range(source.steps)]
    if weights != schedule.curve_values():
        # steps without features fall back to the edit's own K/V (weight 0) and keep their per-layer scale
        d = schedule.to_dict()
        d.update(curve="custom", weights=weights, strength=1.0, start=0, end=None)
        schedule = InjectionSchedule.from_dict(d)
    return probe.inject(source.store, schedule)  # type: ignore[arg-type]


def _start_time(source: InvertedSource, step: int) -> float:
    return float(flow_times(source.steps, source.shift)[step])
