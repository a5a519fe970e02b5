"""InstructME as an editor: a trained instruction editor, sampled with DDIM from noise given the source.

Unlike the zero-shot editors it inverts nothing: the source latent and its chord matrix condition every denoiser
call (:meth:`~musicprobe.models.miniinstructme.MiniInstructME.bind`), the instruction is the prompt, classifier-free
guidance is on the instruction (``guidance``; the empty instruction is the unconditional branch). Any length is
edited in one pass (the chunk transformer), up to ``max_seconds``. ``chords=False`` feeds the null chord token
instead of the source's chord matrix (the trained model's own "without chord condition" view; the separately
trained ablation is ``load("mini-instructme-no-chord")``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicprobe.editors.base import MIN_SECONDS, Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.instructions import parse_instruction
from musicprobe.editors.result import EditResult
from musicprobe.errors import AudioError, ConfigError
from musicprobe.inversion import Sampler


@dataclass
class InstructMEConfig(EditConfig):
    """DDIM ``steps``, instruction guidance ``target_guidance``, noise ``seed``, whether to use the chord matrix."""

    steps: int = 50
    solver: str = "ddim"
    target_guidance: float = 2.0
    seed: int = 0
    chords: bool = True
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.solver != "ddim":
            raise ConfigError(f"InstructME samples with DDIM: solver must be ddim, got {self.solver!r}")
        if self.max_seconds < MIN_SECONDS:
            raise ConfigError(f"max_seconds must be >= {MIN_SECONDS}")


@dataclass
class InstructMESource:
    """A prepared source: audio at the model's rate, its latent and chord matrix."""

    audio: np.ndarray
    latent: Any
    chords: Any
    prompt: str = ""


class InstructME(Editor):
    """``InstructME(load("mini-instructme")).edit(audio, "add drums", sr=16000)``."""

    method = "instructme"
    config_class = InstructMEConfig

    def prepare(self, audio: np.ndarray, sr: int, what: str = "source", max_seconds: float | None = None):
        """Mono float32 audio at the model's rate; any length from :data:`MIN_SECONDS` to ``max_seconds``."""
        y = self.at_model_rate(audio, sr, what)
        dur, limit = len(y) / self.model.sr, max_seconds or self.config.max_seconds
        if dur > limit:
            raise AudioError(f"{what}: {dur:.1f} s is longer than max_seconds={limit:g}; cut it or raise the limit")
        return y

    def record_source(self, audio: np.ndarray, source_prompt: str = "", *, sr: int, config: Any = None,
                      progress=None) -> InstructMESource:
        c = config or self.config
        y = self.prepare(audio, sr, max_seconds=c.max_seconds)
        z = self.model.encode(y, self.model.sr)
        return InstructMESource(y, z, self.model.chords(y, self.model.sr), source_prompt)

    def run_edit(self, source: InstructMESource, instruction: str, c: InstructMEConfig, progress=None):
        bound = self.model.bind(source.latent, source.chords if c.chords else None)
        sampler = Sampler(bound, "ddim", c.steps, c.target_guidance, x0_clip=c.x0_clip)
        noise = bound.noise(c.seed)
        return sampler.sample(noise, instruction, context=self.probe.at_step, progress=progress).final

    def edit(self, audio: np.ndarray, instruction: str, *, sr: int, reference: np.ndarray | None = None,
             config: InstructMEConfig | None = None, label: str = "", progress=None) -> EditResult:  # type: ignore[override]
        """Edit ``audio`` (rate ``sr``) as ``instruction`` says; ``reference``: the true target (adds metrics)."""
        t0 = time.perf_counter()
        c = config or self.config
        parsed = parse_instruction(instruction)
        src = self.record_source(audio, sr=sr, config=c)
        ref = None
        if reference is not None:
            ref = self.prepare(reference, sr, what="reference", max_seconds=c.max_seconds)
        res = self.edit_from(src, instruction, config=c, reference=ref, label=label or self.label(c),
                             progress=progress)
        res.metrics.update(instruction_metrics(src.audio, res.edited, self.model.sr, ref))
        res.provenance["instruction"] = {"op": parsed.op, "instruments": list(parsed.instruments),
                                         "genre": parsed.genre}
        res.seconds = time.perf_counter() - t0
        return res

    def label(self, c: InstructMEConfig) -> str:
        name = (getattr(self.model, "meta", {}) or {}).get("name", "instructme")
        return name + ("" if c.chords else " (null chord)")


def instruction_metrics(source: np.ndarray, edited: np.ndarray, sr: int,
                        reference: np.ndarray | None = None) -> dict[str, float]:
    """InstructME's harmony metrics: chord recognition accuracy of the edit against the source's chords
    (``cra_source``) and, with the true target, against its chords (``cra``, the paper's CRA), and the PCH / IOI
    overlap areas of transcribed notes against the target (``pch``, ``ioi``)."""
    from musicprobe.metrics.harmony import chord_agreement
    from musicprobe.metrics.symbolic import ioi_overlap, pch_overlap
    from musicprobe.metrics.transcription import transcribe

    n = min(len(source), len(edited))
    out = {"cra_source": chord_agreement(source[:n], edited[:n], sr)}
    if reference is not None:
        m = min(n, len(reference))
        r, e = reference[:m], edited[:m]
        out["cra"] = chord_agreement(r, e, sr)
        rn, en = transcribe(r, sr), transcribe(e, sr)
        out["pch"] = pch_overlap(rn, en) if rn and en else float("nan")
        out["ioi"] = ioi_overlap(rn, en) if len(rn) > 2 and len(en) > 2 else float("nan")
    return {k: float(v) for k, v in out.items()}
