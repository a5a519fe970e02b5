"""MusicKV: K/V injection into a few *vital* self-attention layers with a time-varying source weight.

MusicKV (2026; reference code ``MusicKV2026/MusicKV`` on Stable Audio Open) first probes which layers matter
(:mod:`musicprobe.probing`), then blends the source's K and V into those layers' self-attention while the edit
is generated: ``K = w(t) K_src + (1 - w(t)) K_edit``. The reference code's schedule ramps the source weight
from 0 at the first step to about 1 at the last (``InjectionSchedule.musickv``; the README describes other
values — we follow the code). Any schedule of the hook system works: ramp, constant, window, cosine, custom.

Two paths, as in the paper:

- **generated audio** (``edit_generated``): generate the source from a seed under prompt A while recording K/V,
  then generate from the same noise under prompt B while injecting;
- **real audio** (``edit``): invert the clip with RF-Solver under its prompt, then inject into the denoising
  under the target prompt. Where the source's K/V come from is ``source_branch``:

  - ``"regenerate"`` (default; MusicKV's reference code): the source branch is generated again from the
    inverted noise under the source prompt (guidance ``source_guidance``), in step with the edit, and its K/V
    at the same times are injected; the inversion itself records nothing;
  - ``"inversion"`` (RF-Edit / MusRec style): K/V recorded while inverting, under the inversion step's
    destination time (``alignment="reference"`` of :func:`invert_and_record`).

On mini-flux (a Flux MM-DiT) the "self-attention" of a block is its joint attention; ``tokens="audio"`` restricts
injection to audio tokens, which is the closest analogue of MusicKV's self-attention on Stable Audio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.result import EditResult
from musicprobe.editors.sources import RecordedSource, denoise_injecting, generate_and_record, invert_and_record
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, ScheduleSpec

SOURCE_BRANCHES = ("regenerate", "inversion")


def musickv_schedule() -> ScheduleSpec:
    """MusicKV's reference schedule: K and V on audio tokens, source weight rising 0 -> 1 over the steps."""
    return ScheduleSpec(kind="kv", tokens="audio", curve="ramp")


@dataclass
class MusicKVConfig(EditConfig):
    """MusicKV settings. ``layers``: attention point names (e.g. from ``LayerScores.top_k``); ``schedule``: how the
    source's K/V enter them over the steps (a :class:`~musicprobe.hooks.ScheduleSpec`). Shared fields: see
    :class:`~musicprobe.editors.config.EditConfig`."""

    layers: list[str] = field(default_factory=list)
    schedule: ScheduleSpec = field(default_factory=musickv_schedule)
    source_branch: str = "regenerate"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.layers:
            raise ConfigError("MusicKVConfig: give the vital layers (e.g. probe_layers(...).top_k(3))")
        check_known("source_branch", self.source_branch, SOURCE_BRANCHES)
        if isinstance(self.schedule, dict):
            self.schedule = ScheduleSpec.from_dict(self.schedule)
        self.schedule.check_steps(self.steps)

    def injection(self, layers: list[str] | None = None) -> InjectionSchedule:
        """The schedule over ``layers`` (default: the config's) and the config's steps."""
        return self.schedule.for_layers(self.layers if layers is None else layers, self.steps)


class MusicKV(Editor):
    """The MusicKV editor on a flow model (mini-flux)."""

    method = "musickv"
    config_class = MusicKVConfig

    def __init__(self, model, config: MusicKVConfig, clap="mini-clap"):
        super().__init__(model, config, clap)
        for name in config.layers:
            self.probe.resolve(name)

    def record_source(
        self,
        audio: np.ndarray,
        source_prompt: str,
        *,
        sr: int,
        config: MusicKVConfig | None = None,
        layers: list[str] | None = None,
        progress=None,
    ) -> RecordedSource:
        """Invert ``audio`` and record the K/V of ``layers`` (default: the config's) as ``source_branch`` says."""
        c = config or self.config
        layers = c.layers if layers is None else layers
        y = self.prepare(audio, sr)
        from_inversion = c.source_branch == "inversion"
        sampler = self.sampler(c)
        x0 = self.model.encode(y, self.model.sr)
        src = invert_and_record(sampler, self.probe, x0, source_prompt, layers if from_inversion else [], audio=y)
        if from_inversion:
            return src
        regenerated, _ = generate_and_record(sampler, self.probe, src.noise, source_prompt, layers)
        regenerated.audio = y
        return regenerated

    def record_generated(
        self, source_prompt: str, seed: int = 0, *, config: MusicKVConfig | None = None
    ) -> RecordedSource:
        """Generated-audio path: the source is generated from ``seed``'s noise under ``source_prompt``."""
        c = config or self.config
        sampler = self.sampler(c, guidance=c.target_guidance)
        src, latent = generate_and_record(sampler, self.probe, self.model.noise(seed), source_prompt, c.layers)
        src.audio = self.model.decode(latent)
        return src

    def edit_generated(
        self, source_prompt: str, target_prompt: str, seed: int = 0, *, config: MusicKVConfig | None = None,
        label: str = "",
    ) -> EditResult:
        """Generated-audio path: source from ``seed`` under ``source_prompt``, edit from the same noise."""
        c = config or self.config
        t0 = time.perf_counter()
        res = self.edit_from(self.record_generated(source_prompt, seed, config=c), target_prompt, config=c,
                             label=label)
        res.seconds = time.perf_counter() - t0
        res.provenance["seed"] = seed
        return res

    def run_edit(self, source: RecordedSource, target_prompt: str, c: MusicKVConfig, progress=None):
        """Denoise under ``target_prompt`` injecting ``source``'s K/V into the config's layers."""
        return denoise_injecting(self.probe, source, target_prompt, schedule=c.injection(),
                                 guidance=c.target_guidance, progress=progress)[0].final

    def label(self, c: MusicKVConfig) -> str:
        return f"{c.schedule.curve} on {len(c.layers)} layers"
