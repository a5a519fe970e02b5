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

from dataclasses import dataclass

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.sources import ALIGNMENTS, RecordedSource, denoise_injecting, invert_and_record
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, Probe

INJECT_KINDS = ("none", "k", "v", "kv")


@dataclass
class MusRecConfig(EditConfig):
    """MusRec settings (validated; JSON round-trip with ``to_json`` / ``from_json``). Shared fields: see
    :class:`~musicprobe.editors.config.EditConfig`."""

    inject: str = "kv"
    inject_steps: int = 3
    blocks: str | list[str] | list[int] = "all"
    tokens: str = "all"
    inject_uncond: bool = True
    alignment: str = "reference"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_known("inject", self.inject, INJECT_KINDS)
        check_known("alignment", self.alignment, ALIGNMENTS)
        check_known("tokens", self.tokens, ("all", "audio"))
        if self.solver not in ("euler", "rf-solver"):
            raise ConfigError(f"MusRec inverts a flow model: solver must be euler or rf-solver, got {self.solver!r}")
        if not 0 <= self.inject_steps <= self.steps:
            raise ConfigError(f"inject_steps must be within 0..steps={self.steps}, got {self.inject_steps}")
        if isinstance(self.blocks, str) and self.blocks not in ("latter_half", "all"):
            raise ConfigError(f"blocks must be 'latter_half', 'all', or a list of names/indices, got {self.blocks!r}")

    def block_names(self, probe: Probe) -> list[str]:
        """Resolve ``blocks`` to single-stream attention point names of ``probe``'s model."""
        singles = probe.points(lambda n: n.startswith("single_blocks."), kind="joint_attn")
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
                name = probe.resolve(b if b.endswith(".attn") else f"{b}.attn").name
                if name not in singles:
                    raise ConfigError(
                        f"MusRec injects into single-stream blocks only; {b!r} is not one "
                        f"(single blocks: {', '.join(s.removesuffix('.attn') for s in singles)})"
                    )
                out.append(name)
        return out

    def schedule(self, layers: list[str]) -> InjectionSchedule | None:
        if self.inject == "none" or self.inject_steps == 0:
            return None
        branch = "all" if self.inject_uncond or self.target_guidance == 1.0 else "cond"
        return InjectionSchedule.first_steps(
            layers, self.steps, self.inject_steps, kind=self.inject, tokens=self.tokens, branch=branch
        )


class MusRec(Editor):
    """The MusRec editor on a flow model (``MiniFlux``, or any :class:`~musicprobe.models.protocols.FlowModel` with
    single-stream Flux blocks). ``record_source`` inverts once; ``edit_from`` edits that source any number of ways.
    """

    method = "musrec"
    config_class = MusRecConfig

    def record_source(
        self,
        audio: np.ndarray,
        source_prompt: str,
        *,
        sr: int,
        config: MusRecConfig | None = None,
        record_steps: int | None = None,
        progress=None,
    ) -> RecordedSource:
        """Invert ``audio`` under ``source_prompt``, recording K/V for the first ``record_steps`` (default: the
        config's ``inject_steps``) denoising steps."""
        c = config or self.config
        y = self.prepare(audio, sr)
        return invert_and_record(
            self.sampler(c),
            self.probe,
            self.model.encode(y, self.model.sr),
            source_prompt,
            c.block_names(self.probe),
            alignment=c.alignment,
            record_steps=c.inject_steps if record_steps is None else record_steps,
            audio=y,
            progress=progress,
        )

    def run_edit(self, source: RecordedSource, target_prompt: str, c: MusRecConfig, progress=None):
        layers = c.block_names(self.probe)
        if c.inject != "none" and c.inject_steps and not set(layers) <= set(source.layers):
            raise ConfigError(
                f"blocks {sorted(set(layers) - set(source.layers))} were not recorded during inversion "
                f"(recorded: {source.layers}); invert with these blocks"
            )
        schedule = c.schedule(layers)
        return denoise_injecting(self.probe, source, target_prompt, schedule=schedule,
                                 guidance=c.target_guidance, progress=progress)[0].final

    def label(self, c: MusRecConfig) -> str:
        return "no injection" if c.inject == "none" or c.inject_steps == 0 else f"{c.inject.upper()} x {c.inject_steps}"
