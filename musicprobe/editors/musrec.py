"""MusRec: rectified-flow inversion (RF-Solver) + K / V / K+V injection into single-stream DiT blocks.

Recipe (MusRec, arXiv 2511.04376, built on RF-Solver-Edit; the paper has no public code):

1. invert the source latent under the *source* prompt with RF-Solver (``source_guidance``, default 1 = no CFG,
   as RF-Edit), recording K/V of the chosen single-stream blocks at both calls of every step;
2. denoise from the inverted noise under the *target* prompt with CFG (``target_guidance``), replacing the
   blocks' K, V or both with the recorded ones during the first ``inject_steps`` steps.

Choices the paper leaves open and where our defaults come from:

- ``blocks="all"`` single-stream blocks on mini-flux, which has only 6 (FLUX has 38). ``"latter_half"`` is
  RF-Edit's choice (single blocks > 19 of 38, "the latter half" in its maintainers' words); on mini-flux it
  preserves less and its trade-off is not monotone in the injection steps (measured with ``bench musrec``).
- ``tokens="all"`` (RF-Edit: text-token K/V are overwritten too) or ``"audio"`` (Stable Flow: audio tokens only).
- ``inject_uncond=True``: the CFG branches both receive source features (RF-Edit has no unconditional branch,
  FLUX being guidance-distilled; with true CFG this keeps the guidance direction free of the source).
- ``alignment="reference"``: RF-Edit's half-step key offset; ``"same_time"`` aligns times exactly.
- 25 steps (MusRec paper); ``inject_steps=3`` (RF-Edit's maintainers recommend 2-7; on mini-flux 3 keeps the
  melody visibly better than no injection while the timbre still changes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicprobe.editors.config import JsonConfig
from musicprobe.editors.flow_injection import ALIGNMENTS, InvertedSource, denoise, invert_and_record
from musicprobe.editors.result import EditResult, edit_metrics
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, Probe
from musicprobe.inversion import SOLVERS

INJECT_KINDS = ("none", "k", "v", "kv")


@dataclass
class MusRecConfig(JsonConfig):
    """MusRec settings (validated; JSON round-trip with ``to_json`` / ``from_json``)."""

    inject: str = "kv"
    inject_steps: int = 3
    blocks: str | list[str] | list[int] = "all"
    tokens: str = "all"
    inject_uncond: bool = True
    steps: int = 25
    solver: str = "rf-solver"
    source_guidance: float = 1.0
    target_guidance: float = 4.0
    alignment: str = "reference"
    capture: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_known("inject", self.inject, INJECT_KINDS)
        check_known("solver", self.solver, SOLVERS)
        check_known("alignment", self.alignment, ALIGNMENTS)
        check_known("tokens", self.tokens, ("all", "audio"))
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if not 0 <= self.inject_steps <= self.steps:
            raise ConfigError(f"inject_steps must be within 0..steps={self.steps}, got {self.inject_steps}")
        for name in ("source_guidance", "target_guidance"):
            if getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be >= 1 (1 = no classifier-free guidance), got {getattr(self, name)}")
        if isinstance(self.blocks, str) and self.blocks not in ("latter_half", "all"):
            raise ConfigError(f"blocks must be 'latter_half', 'all', or a list of names/indices, got {self.blocks!r}")

    def block_names(self, probe: Probe) -> list[str]:
        """Resolve ``blocks`` to single-stream attention point names of ``probe``'s model."""
        singles = probe.points(lambda n: n.startswith("single_blocks."), kind="joint_attn") or probe.points(
            lambda n: n.startswith("single_blocks.") and n.endswith(".attn")
        )
        if not singles:
            raise ConfigError("MusRec needs a model with single-stream blocks (Flux family)")
        if self.blocks == "all":
            return singles
        if self.blocks == "latter_half":
            return singles[len(singles) // 2 :]
        out = []
        for b in self.blocks:  # type: ignore[union-attr]
            if isinstance(b, int):
                if not 0 <= b < len(singles):
                    raise ConfigError(f"single block index {b} is out of range 0..{len(singles) - 1}")
                out.append(singles[b])
            else:
                out.append(probe.resolve(b if b.endswith(".attn") else f"{b}.attn").name)
        return out

    def schedule(self, layers: list[str]) -> InjectionSchedule | None:
        if self.inject == "none" or self.inject_steps == 0:
            return None
        branch = "all" if self.inject_uncond or self.target_guidance == 1.0 else "cond"
        return InjectionSchedule.first_steps(
            layers, self.steps, self.inject_steps, kind=self.inject, tokens=self.tokens, branch=branch
        )


class MusRec:
    """The MusRec editor on a flow model (``MiniFlux`` or anything with its interface).

    ``edit`` does everything; ``invert`` + ``denoise`` let sweeps reuse one inversion across variants.
    """

    method = "musrec"

    def __init__(self, model: Any, config: MusRecConfig | None = None, clap: Any = None):
        self.model = model
        self.config = config or MusRecConfig()
        self.probe = Probe(model.transformer)
        self.clap = clap

    def invert(
        self,
        audio: np.ndarray,
        source_prompt: str,
        config: MusRecConfig | None = None,
        record_steps: int | None = None,
        progress=None,
    ) -> InvertedSource:
        c = config or self.config
        layers = c.block_names(self.probe)
        return invert_and_record(
            self.model,
            self.probe,
            self.model.encode(audio),
            source_prompt,
            layers,
            steps=c.steps,
            solver=c.solver,
            guidance=c.source_guidance,
            alignment=c.alignment,
            record_steps=c.inject_steps if record_steps is None else record_steps,
            progress=progress,
        )

    def denoise(
        self,
        source: InvertedSource,
        audio: np.ndarray,
        target_prompt: str,
        config: MusRecConfig | None = None,
        reference: np.ndarray | None = None,
        label: str = "",
        progress=None,
    ) -> EditResult:
        c = config or self.config
        t0 = time.perf_counter()
        layers = c.block_names(self.probe)
        if c.inject != "none" and c.inject_steps and not set(layers) <= set(source.layers):
            raise ConfigError(
                f"blocks {sorted(set(layers) - set(source.layers))} were not recorded during inversion "
                f"(recorded: {source.layers}); invert with these blocks"
            )
        sched = c.schedule(layers)
        path, maps = denoise(
            self.model,
            self.probe,
            source,
            target_prompt,
            schedule=sched,
            guidance=c.target_guidance,
            capture=c.capture or None,
            progress=progress,
        )
        edited = self.model.decode(path.final)
        secs = time.perf_counter() - t0
        src = np.asarray(audio, dtype=np.float32)[: len(edited)]
        metrics = edit_metrics(src, edited, self.model.sr, target_prompt, source.prompt, reference, self.clap)
        return EditResult(
            self.method,
            self.model.sr,
            src,
            edited,
            source.prompt,
            target_prompt,
            c.to_dict(),
            metrics,
            maps,
            secs,
            label or _label(c),
        )

    def edit(
        self,
        audio: np.ndarray,
        source_prompt: str,
        target_prompt: str,
        *,
        reference: np.ndarray | None = None,
        progress=None,
    ) -> EditResult:
        """Edit ``audio`` (mono, ``model.sr``) from ``source_prompt`` to ``target_prompt``."""
        t0 = time.perf_counter()
        src = self.invert(audio, source_prompt, progress=progress)
        res = self.denoise(src, audio, target_prompt, reference=reference, progress=progress)
        res.seconds = time.perf_counter() - t0
        return res


def _label(c: MusRecConfig) -> str:
    return "no injection" if c.inject == "none" or c.inject_steps == 0 else f"{c.inject.upper()} x {c.inject_steps}"
