"""MusicKV: K/V injection into a few *vital* self-attention layers with a time-varying source weight.

MusicKV (2026; reference code ``MusicKV2026/MusicKV`` on Stable Audio Open) first probes which layers matter
(:mod:`musicprobe.probing`), then blends the source's K and V into those layers' self-attention while the edit
is generated: ``K = w(t) K_src + (1 - w(t)) K_edit``. The reference code's schedule ramps the source weight
from 0 at the first step to about 1 at the last (``InjectionSchedule.musickv``; the README describes other
values — we follow the code). Any schedule of the hook system works: ramp, constant, window, cosine, custom.

Two paths, as in the paper:

- **generated audio** (``edit_generated``): generate the source from a seed under prompt A while recording K/V,
  then generate from the same noise under prompt B while injecting;
- **real audio** (``edit``): invert the clip under its prompt with the config's solver, then inject into the
  denoising under the target prompt. Where the source's K/V come from is ``source_branch``:

  - ``"regenerate"`` (default; MusicKV's reference code): the source branch is generated again from the
    inverted noise under the source prompt (guidance ``source_guidance``), in step with the edit, and its K/V
    at the same times are injected; the inversion itself records nothing;
  - ``"inversion"`` (RF-Edit / MusRec style): K/V recorded while inverting, under the inversion step's
    destination time (``alignment="reference"`` of :func:`invert_and_record`).

Two zoo models, two settings:

- **mini-SAO** (the paper's architecture class, a Stable Audio DiT): injection into ``blocks.{i}.self_attn`` over
  every token (``tokens="all"``: the reference blends the prepended global token too), sampled and inverted with
  the deterministic DPM-Solver++(2M) (``solver="dpmpp-2m"``) on SAO's sigma grid, as the reference. The reference
  blends K/V right after the projections, before RoPE and the GQA head repeat; the hook system blends them at the
  attention call, after both. The two are equal because RoPE rotates source and edit at the same positions and
  the repeat copies heads (both linear and position-wise, so they commute with a weighted sum); a test checks it
  against projection-level injection. (diffusers' Stable Audio block has GQA only in its cross-attention.)
- **mini-flux** (a Flux MM-DiT): the "self-attention" of a block is its joint attention; ``tokens="audio"``
  restricts injection to audio tokens, the closest analogue of MusicKV's self-attention; RF-Solver by default.

:func:`musickv_tokens` and the model's ``default_solver`` pick these (the CLI and ``bench musickv --model`` do).
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


def musickv_tokens(model) -> str:
    """Which tokens MusicKV injects on ``model``: ``"all"`` on a Stable Audio DiT (the reference blends K/V of every
    self-attention token, the prepended global token included), ``"audio"`` on an MM-DiT (its joint attention also
    holds the text tokens, which self-attention on Stable Audio does not see)."""
    return "all" if getattr(model, "family", "") == "stable_audio" else "audio"


def musickv_schedule(model=None) -> ScheduleSpec:
    """MusicKV's reference schedule: K and V, source weight rising 0 -> 1 over the steps, on the tokens
    :func:`musickv_tokens` picks for ``model`` (audio tokens when no model is given)."""
    return ScheduleSpec(kind="kv", tokens=musickv_tokens(model), curve="ramp")


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
    """The MusicKV editor on a flow model (mini-SAO, mini-flux; see the module docstring)."""

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
