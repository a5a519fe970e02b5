"""Shared parts of the injection editors: record a source's K/V (by inversion or generation), then denoise an edit
while injecting them.

MusRec, MusicKV (both paths) and the patching probe are compositions of these functions with an
:class:`~musicprobe.hooks.InjectionSchedule`; the sampler loop lives in :mod:`musicprobe.inversion` and the hooks
in :class:`~musicprobe.hooks.Probe`. Nothing here copies a pipeline.

**Time keys.** Features are stored and fetched under ``(t, order)`` keys (``order`` 1 = RF-Solver's midpoint
call). Two alignments are offered for sources recorded while inverting:

- ``"reference"`` (RF-Solver-Edit's code): an inversion step ``t_a -> t_b`` (``t_a < t_b``) stores under its
  *destination* ``t_b``; the denoising step starting at ``t_b`` fetches them. The edit at noise level ``t_b`` thus
  receives features computed half a step lower — part of the reference behaviour.
- ``"same_time"``: an inversion step stores under its *start* ``t_a``, so a denoising step starting at ``t``
  receives the features computed at ``t`` itself (the last inversion step's features are then never used, and
  the first denoising step, at ``t = 1``, has none: it is not injected).

A generated source records at the very keys the edit's own calls have (the same sampler, the same grid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, KVStore, Probe
from musicprobe.inversion import NoiseMaps, Sampler, SamplerPath, StepEvent, time_key

ALIGNMENTS = ("reference", "same_time")


def _record_key(event: StepEvent, alignment: str) -> tuple[float, int]:
    return time_key(event.t_to if alignment == "reference" else event.t_from, event.order)


def _consumer_step(event: StepEvent, steps: int, alignment: str) -> int:
    """The denoising step that will fetch what this inversion call records."""
    return steps - 1 - event.step if alignment == "reference" else steps - event.step


@dataclass
class RecordedSource:
    """A source ready to be edited: where the edit starts (``noise``), the K/V recorded for it (by inverting a clip
    or generating one), and how it was made."""

    path: SamplerPath  # ends at the noise the edit starts from
    store: KVStore | None
    layers: list[str]
    prompt: str
    sampler: Sampler
    alignment: str
    audio: np.ndarray | None = None  # the source audio at the model's rate (what edits are measured against)
    start: int = 0  # the sampler step the edit starts at (SDEdit, ZETA start part-way)
    maps: NoiseMaps | None = None  # edit-friendly DDPM noise maps (ZETA)
    latent: torch.Tensor | None = None  # the clean source latent

    @property
    def noise(self) -> torch.Tensor:
        return self.path.final

    @property
    def steps(self) -> int:
        return self.sampler.steps

    @property
    def solver(self) -> str:
        return self.sampler.solver


def step_at_strength(sampler: Sampler, strength: float) -> int:
    """The first step of ``sampler``'s grid at or below the noise level ``strength`` (a fraction of the training
    timesteps): where SDEdit and partial inversions start."""
    grid = sampler.times()
    return int(np.nonzero(grid <= strength * sampler.model.num_train_timesteps)[0][0])


def invert_and_record(
    sampler: Sampler,
    probe: Probe,
    x0: torch.Tensor,
    prompt: str,
    layers: Iterable[str],
    *,
    alignment: str = "reference",
    record_steps: int | None = None,
    audio: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> RecordedSource:
    """Invert ``x0`` under ``prompt``, recording K/V of ``layers`` for the first ``record_steps`` denoising steps."""
    check_known("key alignment", alignment, ALIGNMENTS)
    layers = list(layers)
    steps = sampler.steps
    record_steps = steps if record_steps is None else record_steps
    if not 0 <= record_steps <= steps:
        raise ConfigError(f"record_steps must be within 0..{steps}, got {record_steps}")

    def context(event: StepEvent):
        return probe.at_step(_consumer_step(event, steps, alignment), _record_key(event, alignment))

    with ExitStack() as stack:
        store = None
        if layers and record_steps:
            store = stack.enter_context(probe.record_kv(layers, steps=range(record_steps)))
        path = sampler.invert(x0, prompt, context=context, progress=progress)
    return RecordedSource(path, store, layers, prompt, sampler, alignment, audio, latent=x0)


def generate_and_record(
    sampler: Sampler,
    probe: Probe,
    noise: torch.Tensor,
    prompt: str,
    layers: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[RecordedSource, torch.Tensor]:
    """Generate from ``noise`` under ``prompt`` recording K/V at every call (MusicKV's generated-audio path).

    Returns a source that :func:`denoise_injecting` can inject from (keys at the same times as the edit's calls)
    and the generated latent. ``source.noise`` is ``noise``, so the edit starts from the same point.
    """
    layers = list(layers)
    with probe.record_kv(layers) as store:
        path = sampler.sample(noise, prompt, context=probe.at_step, progress=progress)
    start = SamplerPath(path.times[::-1].copy(), [path.final, noise], [], sampler.solver, path.nfe)
    return RecordedSource(start, store, layers, prompt, sampler, "same_time"), path.final


def denoise_injecting(
    probe: Probe,
    source: RecordedSource,
    prompt: str,
    *,
    schedule: InjectionSchedule | None = None,
    guidance: float = 4.0,
    capture: list[str] | None = None,
    capture_steps: Iterable[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[SamplerPath, dict[str, np.ndarray]]:
    """Denoise from ``source.noise`` under ``prompt`` with the source's sampler, injecting ``source``'s K/V as
    ``schedule`` says.

    Returns the path and, for each hook name in ``capture``, the attention captured (heads averaged, conditional
    branch, mean over ``capture_steps``) as a numpy array.
    """
    sampler = source.sampler
    injects = schedule is not None and any(w > 0 for w in schedule.curve_values())
    if schedule is not None:
        if schedule.n_steps != source.steps:
            raise ConfigError(f"schedule.n_steps={schedule.n_steps} but the source was recorded in {source.steps}")
        if source.store is None and injects:
            raise ConfigError("the source was recorded without K/V; record it with layers and record_steps")
    with ExitStack() as stack:
        if injects:
            stack.enter_context(_inject_recorded(probe, source, schedule))  # type: ignore[arg-type]
        maps = stack.enter_context(captured_attention(probe, capture, guidance=guidance, steps=capture_steps))
        path = sampler.sample(source.noise, prompt, guidance=guidance, context=probe.at_step, progress=progress)
    return path, maps


@contextmanager
def captured_attention(
    probe: Probe, names: list[str] | None, *, guidance: float, steps: Iterable[int] | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Capture ``names`` (heads averaged, conditional branch under CFG, mean over ``steps``) while the block runs;
    the yielded dict holds the maps as numpy arrays once it exits (empty when ``names`` is empty)."""
    maps: dict[str, np.ndarray] = {}
    if not names:
        yield maps
        return
    branch = "cond" if guidance != 1.0 else "all"
    with probe.capture(list(names), heads="mean", branch=branch, steps=steps, reduce_steps=True) as cache:
        yield maps
    maps.update({name: cache[name].float().numpy() for name in cache.names()})


def _inject_recorded(probe: Probe, source: RecordedSource, schedule: InjectionSchedule):
    """Inject, dropping steps that have no recorded features (``same_time`` alignment's first step)."""
    have = {key for (_pt, key) in source.store.data}  # type: ignore[union-attr]
    grid = source.sampler.times()
    weights = [schedule.weight(i) if time_key(grid[i], 0) in have else 0.0 for i in range(source.steps)]
    if weights != schedule.curve_values():
        # steps without features fall back to the edit's own K/V (weight 0) and keep their per-layer scale
        d = schedule.to_dict()
        d.update(curve="custom", weights=weights, strength=1.0, start=0, end=None)
        schedule = InjectionSchedule.from_dict(d)
    return probe.inject(source.store, schedule)  # type: ignore[arg-type]


def noised(model: Any, x0: torch.Tensor, timestep: int, seed: int) -> torch.Tensor:
    """``sqrt(a_t) x0 + sqrt(1 - a_t) eps`` of an epsilon model at training ``timestep`` (``eps`` from ``seed``)."""
    a = float(model.alphas_cumprod[int(timestep)])
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed))).to(x0.device)
    return a**0.5 * x0 + (1 - a) ** 0.5 * eps
