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
from typing import Any

import numpy as np

from musicprobe.editors.config import JsonConfig
from musicprobe.editors.flow_injection import InvertedSource, denoise, generate_and_record, invert_and_record
from musicprobe.editors.result import EditResult, edit_metrics
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import CURVES, InjectionSchedule, Probe
from musicprobe.inversion import SOLVERS

SOURCE_BRANCHES = ("regenerate", "inversion")


@dataclass
class MusicKVConfig(JsonConfig):
    """MusicKV settings. ``layers``: attention point names (e.g. from ``LayerScores.top_k``)."""

    layers: list[str] = field(default_factory=list)
    kind: str = "kv"
    tokens: str = "audio"
    curve: str = "ramp"
    strength: float = 1.0
    start: int = 0
    end: int | None = None
    weights: list[float] | None = None
    steps: int = 25
    solver: str = "rf-solver"
    source_guidance: float = 1.0
    target_guidance: float = 4.0
    source_branch: str = "regenerate"
    capture: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("MusicKVConfig: give the vital layers (e.g. probe_layers(...).top_k(3))")
        check_known("solver", self.solver, SOLVERS)
        check_known("source_branch", self.source_branch, SOURCE_BRANCHES)
        check_known("curve", self.curve, CURVES)
        self.schedule()  # validates kind/tokens/strength/start/end/weights

    def schedule(self) -> InjectionSchedule:
        return InjectionSchedule(
            layers=list(self.layers),
            kind=self.kind,
            tokens=self.tokens,
            curve=self.curve,
            strength=self.strength,
            start=self.start,
            end=self.end,
            n_steps=self.steps,
            weights=self.weights,
        )


class MusicKV:
    """The MusicKV editor on a flow model (mini-flux)."""

    method = "musickv"

    def __init__(self, model: Any, config: MusicKVConfig, clap: Any = None):
        self.model = model
        self.config = config
        self.probe = Probe(model.transformer)
        self.clap = clap
        for name in config.layers:
            self.probe.resolve(name)

    def score(
        self,
        source_audio: np.ndarray,
        edited_latent,
        source_prompt: str,
        target_prompt: str,
        *,
        config: MusicKVConfig | None = None,
        reference: np.ndarray | None = None,
        label: str = "",
        seconds: float = 0.0,
        maps: dict | None = None,
    ) -> EditResult:
        """Decode an edited latent and measure it against the source (and the true target, if given)."""
        c = config or self.config
        src_prompt, tgt_prompt, secs = source_prompt, target_prompt, seconds
        maps = maps or {}
        edited = self.model.decode(edited_latent)
        src = np.asarray(source_audio, dtype=np.float32)[: len(edited)]
        metrics = edit_metrics(src, edited, self.model.sr, tgt_prompt, src_prompt, reference, self.clap)
        return EditResult(
            self.method,
            self.model.sr,
            src,
            edited,
            src_prompt,
            tgt_prompt,
            c.to_dict(),
            metrics,
            maps,
            secs,
            label or f"{c.curve} on {len(c.layers)} layers",
        )

    def edit(
        self,
        audio: np.ndarray,
        source_prompt: str,
        target_prompt: str,
        *,
        config: MusicKVConfig | None = None,
        reference: np.ndarray | None = None,
        label: str = "",
    ) -> EditResult:
        """Real-audio path: RF-Solver inversion, then injected denoising (``source_branch`` says how)."""
        c = config or self.config
        t0 = time.perf_counter()
        src = self.record_source(audio, source_prompt, c.layers, c)
        return self._inject(src, audio, target_prompt, c, t0, reference, label)

    def record_source(
        self, audio: np.ndarray, source_prompt: str, layers: list[str], config: MusicKVConfig | None = None
    ) -> InvertedSource:
        """Invert ``audio`` and record the K/V of ``layers`` the way ``config.source_branch`` says."""
        c = config or self.config
        branch = c.source_branch == "inversion"
        src = invert_and_record(
            self.model,
            self.probe,
            self.model.encode(audio),
            source_prompt,
            layers if branch else [],
            steps=c.steps,
            solver=c.solver,
            guidance=c.source_guidance,
        )
        if branch:
            return src
        regenerated, _ = generate_and_record(
            self.model,
            self.probe,
            src.noise,
            source_prompt,
            layers,
            steps=c.steps,
            solver=c.solver,
            guidance=c.source_guidance,
        )
        return regenerated

    def edit_generated(
        self,
        source_prompt: str,
        target_prompt: str,
        seed: int = 0,
        *,
        config: MusicKVConfig | None = None,
        label: str = "",
    ) -> EditResult:
        """Generated-audio path: source from ``seed`` under ``source_prompt``, edit from the same noise."""
        c = config or self.config
        t0 = time.perf_counter()
        src, src_latent = generate_and_record(
            self.model,
            self.probe,
            self.model.noise(seed),
            source_prompt,
            c.layers,
            steps=c.steps,
            solver=c.solver,
            guidance=c.target_guidance,
        )
        return self._inject(src, self.model.decode(src_latent), target_prompt, c, t0, None, label)

    def _inject(self, src, source_audio, target_prompt, c, t0, reference, label) -> EditResult:
        """The step both paths share: denoise under ``target_prompt`` injecting ``src``'s K/V, then score."""
        path, maps = denoise(
            self.model,
            self.probe,
            src,
            target_prompt,
            schedule=c.schedule(),
            guidance=c.target_guidance,
            capture=c.capture or None,
        )
        return self.score(
            source_audio,
            path.final,
            src.prompt,
            target_prompt,
            config=c,
            reference=reference,
            label=label,
            seconds=time.perf_counter() - t0,
            maps=maps,
        )
