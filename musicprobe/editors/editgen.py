"""EditGen (arXiv 2507.11096): Prompt-to-Prompt attention control in an autoregressive MusicGen-class model.

The source prompt and the edited prompt run as two rows of one batch with one seed (times MusicGen's ``[cond ;
uncond]`` CFG halves). At every generated token the :class:`~musicprobe.editors.p2p.PromptToPrompt` intervention
copies the source row's self-attention into the edited row and controls its cross-attention (replace / refine /
reweight), blended over attention-module depth (soft ``a = i / N`` or hard cut-off). Nothing else changes:
the decoder, the sampling loop and the hook system are the shared ones.

Two ways in:

- :meth:`EditGen.edit_prompts` (the paper's setting): the source is what the model generates from the source
  prompt and seed; ``mode="none"`` is the uncontrolled baseline (the target prompt with the same seed, the same
  random draws per row);
- :meth:`EditGen.edit` (an extension): a given clip is encoded into codes and teacher-forces the source row, so
  the edited row follows the source's attention while generating under the target prompt.

Metrics (EditGen's evaluation, on the mini models): melody accuracy, dynamics (onset-strength correlation; RMS as
the second view), rhythm (beat F1 at 70 ms), CLAP text-to-audio (target prompt) and audio-to-audio (source).
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import torch

from musicprobe.editors.base import Editor, check_prompt, check_prompts
from musicprobe.editors.config import JsonConfig, check_finite
from musicprobe.editors.p2p import (
    BLENDINGS,
    DEPTHS,
    MODES,
    PromptToPrompt,
    check_reweight,
    prompt_to_prompt,
    prompt_tokenizer,
    word_tokens,
)
from musicprobe.editors.result import EditResult
from musicprobe.editors.word_attention import RecordWordAttention, WordAttentionMaps
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks.rows import RowRoles
from musicprobe.models.delay import TokenSampling


@dataclass
class EditGenConfig(JsonConfig):
    """EditGen settings (defaults: the reference's replacement recipe, soft blending, MusicGen's sampling).

    Args:
        mode: ``replace`` | ``refine`` | ``reweight`` | ``none`` (no control: the uncontrolled baseline).
        blending: ``soft`` (``a = i / N`` over attention-module depth), ``hard`` (control modules up to
            ``cutoff * N``) or ``none`` (control every module fully).
        depth: ``paper`` (``a = i / N``) or ``reference`` (the released counter: ``(i + 1) / N``, the last
            module wrapping to 0).
        cutoff: hard blending's fraction of modules controlled (reference 0.75).
        cross_blend: ``b`` of replace / refine (1: the source's columns).
        self_attention: copy the source's self-attention probabilities into the edited row.
        word / weight: reweight's word of the prompt and its factor ``c`` in [-2, 2].
        guidance: classifier-free guidance on the logits (MusicGen's 3).
        seed, frames, top_k, temperature: sampling (``frames`` None: the model's clip length).
        row_noise: ``shared`` (ours: every row draws with the same noise, so rows whose distributions agree draw
            the same token) or ``independent`` (the reference: each row its own draw; only the attention control
            links the edit to its source). The source row is the same generation either way.
        word_maps: record each word's cross-attention over time (the DAAM-style heat maps).
    """

    mode: str = "replace"
    blending: str = "soft"
    depth: str = "paper"
    cutoff: float = 0.75
    cross_blend: float = 1.0
    self_attention: bool = True
    word: str = ""
    weight: float = 2.0
    guidance: float = 3.0
    seed: int = 0
    frames: int | None = None
    top_k: int = 250
    temperature: float = 1.0
    row_noise: str = "shared"
    word_maps: bool = False
    capture: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_finite(self)
        check_known("mode", self.mode, MODES)
        check_known("blending", self.blending, BLENDINGS)
        check_known("depth", self.depth, DEPTHS)
        if not 0.0 < self.cutoff <= 1.0:
            raise ConfigError(f"cutoff must be in (0, 1], got {self.cutoff}")
        if not 0.0 <= self.cross_blend <= 1.0:
            raise ConfigError(f"cross_blend must be in [0, 1], got {self.cross_blend}")
        check_reweight(self.weight)
        if self.guidance < 1.0:
            raise ConfigError(f"guidance must be >= 1 (1 = no classifier-free guidance), got {self.guidance}")
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        self.sampling()

    def sampling(self) -> TokenSampling:
        return TokenSampling(self.top_k, self.temperature, self.row_noise)


@dataclass
class TokenSource:
    """The source of an EditGen edit: its prompt, codes ``(1, K, frames)`` and decoded audio; ``forced`` when the
    codes came from a given clip (teacher forcing) rather than from the model."""

    prompt: str
    codes: torch.Tensor
    audio: np.ndarray
    forced: bool = False


class EditGen(Editor):
    """EditGen on a :class:`~musicprobe.models.protocols.TokenModel` (mini-MusicGen, MusicGen)."""

    method = "editgen"
    config_class = EditGenConfig  # type: ignore[assignment]

    # ---- the paper's setting: edit a generation --------------------------------------------------------------
    def edit_prompts(self, source_prompt: str, target_prompt: str, *, config: EditGenConfig | None = None,
                     label: str = "") -> EditResult:
        """Generate ``source_prompt`` and its edit under ``target_prompt`` in one batch (see the module doc)."""
        c = config or self.config
        check_prompts(source_prompt, target_prompt)
        t0 = time.perf_counter()
        codes, maps = self.generate_rows([source_prompt, target_prompt], c)
        src = TokenSource(source_prompt, codes[:1], self.model.decode(codes[:1]))
        return self._finish(codes[1:], src, target_prompt, c, label, t0, maps)

    # ---- the Editor interface: edit a given clip (teacher-forced source row) ----------------------------------
    def record_source(self, audio: np.ndarray, source_prompt: str, *, sr: int, config=None,
                      progress=None) -> TokenSource:
        y = self.prepare(audio, sr)
        frames = math.ceil(len(y) * self.model.frame_rate / self.model.sr)  # a short clip edits the frames it has
        codes = self.model.encode(y, self.model.sr)[..., :frames]
        return TokenSource(source_prompt, codes, self.model.decode(codes)[: len(y)], forced=True)

    def edit_from(self, source: TokenSource, target_prompt: str, *, config=None, reference=None, label: str = "",
                  progress=None) -> EditResult:
        c = config or self.config
        check_prompt(target_prompt, "the target prompt")
        t0 = time.perf_counter()
        force = torch.cat([source.codes, torch.full_like(source.codes, -1)])
        codes, maps = self.generate_rows([source.prompt, target_prompt], c.replace(frames=source.codes.shape[-1]),
                                         force=force)
        return self._finish(codes[1:], source, target_prompt, c, label, t0, maps, reference)

    # ---- shared ---------------------------------------------------------------------------------------------
    def controller(self, source_prompt: str, target_prompt: str, c: EditGenConfig) -> PromptToPrompt | None:
        """The Prompt-to-Prompt intervention of ``c`` for two prompts (None for ``mode="none"``)."""
        return prompt_to_prompt(self.model, source_prompt, target_prompt, c.mode, word=c.word, weight=c.weight,
                                self_attention=c.self_attention, cross_blend=c.cross_blend, blending=c.blending,
                                depth=c.depth, cutoff=c.cutoff)

    def generate_rows(self, prompts: list[str], c: EditGenConfig, force: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, WordAttentionMaps | None]:
        """Codes ``(rows, K, frames)`` of ``prompts`` as rows of one batch (two prompts: the source row and the
        edited row under ``c``'s control; one prompt: a plain generation) and the word maps if ``c`` asks."""
        cfg = c.guidance != 1.0
        ctrl = self.controller(prompts[0], prompts[1], c) if len(prompts) == 2 else None
        rec = RecordWordAttention(cfg) if c.word_maps else None
        with ExitStack() as stack:
            stack.enter_context(self.probe.with_roles(RowRoles(prompts=len(prompts), cfg=cfg)))
            self.probe.reset_state()
            for iv in (ctrl, rec):
                if iv is not None:
                    stack.enter_context(self.probe.intervene(iv))
            codes = self.model.generate(prompts, seed=c.seed, frames=c.frames, guidance=c.guidance,
                                        sampling=c.sampling(), force=force)
        if rec is None:
            return codes, None
        tok, n = prompt_tokenizer(self.model)
        return codes, WordAttentionMaps.from_record(rec.stacked(), prompts, [word_tokens(p, tok, n) for p in prompts],
                                                    self.probe.points(kind="cross_attn"),
                                                    self.model.frame_rate)

    def word_maps(self, prompt: str, config: EditGenConfig | None = None) -> WordAttentionMaps:
        """Generate ``prompt`` alone and return each word's cross-attention over the generated time."""
        check_prompt(prompt, "the prompt")
        _, maps = self.generate_rows([prompt], (config or self.config).replace(word_maps=True, mode="none"))
        return maps  # type: ignore[return-value]

    def _finish(self, codes: torch.Tensor, source: TokenSource, target_prompt: str, c: EditGenConfig, label: str,
                started: float, maps: WordAttentionMaps | None, reference: np.ndarray | None = None) -> EditResult:
        res = self.finish(codes, source, target_prompt, c, reference=reference, label=label, started=started)
        res.metrics.update(editgen_metrics(res.source, res.edited, res.sr, self.clap))
        res.trace = maps
        return res

    def label(self, c: EditGenConfig) -> str:
        if c.mode == "none":
            return "no control"
        return f"{c.mode} ({c.blending})"


def editgen_metrics(source: np.ndarray, edited: np.ndarray, sr: int, clap=None) -> dict[str, float]:
    """EditGen's preservation metrics of an edit vs its source: melody accuracy, dynamics (onset-strength and RMS
    correlation), rhythm (beat F1, 70 ms) and mini-CLAP audio-to-audio similarity."""
    from musicprobe.metrics import beat_f1, dynamics_correlation, melody_accuracy, onset_strength_correlation

    out = {
        "melody_acc": melody_accuracy(source, edited, sr),
        "dynamics_onset": onset_strength_correlation(source, edited, sr),
        "dynamics_rms": dynamics_correlation(source, edited, sr),
        "rhythm_f1": beat_f1(source, edited, sr),
    }
    if clap is not None:
        e = torch.as_tensor(clap.embed_audio([source, edited], sr))  # unit vectors
        out["clap_audio"] = float((e[0] * e[1]).sum())
    return {k: float(v) for k, v in out.items()}
