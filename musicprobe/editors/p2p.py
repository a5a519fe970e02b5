"""Prompt-to-Prompt attention control as one intervention: word <-> token maps, alignments and the controllers.

A source prompt and an edited prompt run as two rows of one batch (times the CFG halves). At every attention call
the :class:`PromptToPrompt` intervention rewrites the **edited row's** probabilities from the source row's
(conditional half only, as both reference implementations do):

- self-attention: the source's probabilities are copied into the edited row (the structure of the source);
- cross-attention, by mode: **replace** (the changed words' columns take ``(1 - b)`` own ``+ b`` the mean of the
  source word's columns: EditGen's ``ReplaceWordController``), **refine** (columns of tokens the Needleman-Wunsch
  alignment of the two token sequences pairs up take the source's column; new tokens keep their own attention:
  Prompt-to-Prompt's refinement mapper) and **reweight** (the source's probabilities with one word's columns
  scaled by ``c``: Prompt-to-Prompt's equaliser; EditGen instead divides every other column by ``c``, which agrees
  in direction for ``c > 0``).

Blending over depth (EditGen's modifiers) counts attention modules in call order, self and cross separately
(module ``j`` of ``N``): **soft** ``out = a * original + (1 - a) * controlled`` with ``a = j / N`` (the paper's
``i / N``: the first module fully controlled) or, with ``depth="reference"``, ``a = (j + 1) / N`` wrapping to 0
at the last module (what the released counter does); **hard** controls modules ``j + 1 <= floor(cutoff * N)``
only (reference default cutoff 0.75).

Windows over denoising steps (Prompt-to-Prompt in a diffusion model): ``steps`` are the steps the controller acts
at and ``self_steps`` those at which it also copies self-attention (``cross_replace_steps`` /
``self_replace_steps`` of the reference notebooks, e.g. the first 80 % / 40 % of the steps). EditGen controls every
generated token: both default to all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.hooks.interventions import AttnCall, Intervention, as_steps

MODES = ("none", "replace", "refine", "reweight")
BLENDINGS = ("soft", "hard", "none")
DEPTHS = ("paper", "reference")
REWEIGHT_RANGE = (-2.0, 2.0)  # the paper's bound on a reweighted word's factor c


def check_reweight(weight: float, name: str = "weight") -> float:
    """``weight`` if it is a reweight factor the paper allows (in :data:`REWEIGHT_RANGE`), else a clear error."""
    lo, hi = REWEIGHT_RANGE
    if not lo <= weight <= hi:
        raise ConfigError(f"{name} must be in [{lo:g}, {hi:g}], got {weight}")
    return weight


# ------------------------------------------------------------------------------------------- words and tokens
def leading_specials(tokenizer) -> int:
    """How many special tokens the tokenizer puts before a prompt's words (MiniLM's ``[CLS]``: 1; T5: 0)."""
    with_special = tokenizer("music")["input_ids"]
    words = tokenizer("music", add_special_tokens=False)["input_ids"]
    for lead in range(len(with_special) - len(words) + 1):
        if with_special[lead : lead + len(words)] == words:
            return lead
    raise ConfigError(f"cannot find the words among the special tokens of {type(tokenizer).__name__}")


def word_tokens(prompt: str, tokenizer, max_tokens: int) -> list[tuple[str, list[int]]]:
    """Each whitespace word of ``prompt`` with the positions of its tokens in the encoded prompt (after the
    tokenizer's leading special tokens: MiniLM's ``[CLS]`` is position 0, T5 has none); words past
    ``max_tokens - 1`` are cut, as the encoder cuts them (one closing special token: ``[SEP]`` or ``</s>``)."""
    out, pos = [], leading_specials(tokenizer)
    for word in prompt.split():
        n = len(tokenizer(word, add_special_tokens=False)["input_ids"])
        idx = [p for p in range(pos, pos + n) if p < max_tokens - 1]
        out.append((word, idx))
        pos += n
    return out


def token_ids(prompt: str, tokenizer, max_tokens: int) -> list[int]:
    return tokenizer(prompt, truncation=True, max_length=max_tokens)["input_ids"]


def changed_words(source: str, target: str) -> list[int]:
    """Indices of the words that differ between two prompts of equal word count (Replace's requirement)."""
    s, t = source.split(), target.split()
    if len(s) != len(t):
        raise ConfigError(
            f"replace needs prompts with the same number of words: the source has {len(s)} ({' '.join(s)!r}), "
            f"the target {len(t)} ({' '.join(t)!r}); use mode='refine' when words are added or removed"
        )
    diff = [i for i, (a, b) in enumerate(zip(s, t)) if a.lower() != b.lower()]
    if not diff:
        raise ConfigError(f"the source and target prompts are the same ({source!r}): nothing to replace")
    return diff


def needleman_wunsch(a: list[int], b: list[int], match: int = 1, mismatch: int = -1, gap: int = 0) -> list[int]:
    """Global alignment of ``b`` to ``a`` (Prompt-to-Prompt's scores): for each position of ``b`` the aligned
    position of ``a`` with the same token, or -1 (a gap or a mismatch: a new token)."""
    n, m = len(a), len(b)
    score = np.zeros((n + 1, m + 1))
    score[:, 0] = gap * np.arange(n + 1)
    score[0, :] = gap * np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = score[i - 1, j - 1] + (match if a[i - 1] == b[j - 1] else mismatch)
            score[i, j] = max(diag, score[i - 1, j] + gap, score[i, j - 1] + gap)
    out, i, j = [-1] * m, n, m
    while i > 0 and j > 0:
        same = a[i - 1] == b[j - 1]
        if score[i, j] == score[i - 1, j - 1] + (match if same else mismatch):
            if same:
                out[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif score[i, j] == score[i - 1, j] + gap:
            i -= 1
        else:
            j -= 1
    return out


@dataclass(frozen=True)
class CrossPlan:
    """What cross-attention control does to the edited row: column maps, built once from the two prompts."""

    mode: str
    pairs: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()  # replace: (source cols, target cols) per word
    mapper: tuple[int, ...] = ()  # refine: per target token the source token, or -1
    columns: tuple[int, ...] = ()  # reweight: the word's columns
    weight: float = 1.0


def cross_plan(mode: str, source: str, target: str, tokenizer, max_tokens: int, *, word: str = "",
               weight: float = 1.0) -> CrossPlan:
    """The :class:`CrossPlan` of ``mode`` for two prompts (clear errors when they cannot be aligned)."""
    if mode == "replace":
        sw, tw = word_tokens(source, tokenizer, max_tokens), word_tokens(target, tokenizer, max_tokens)
        pairs = tuple((tuple(sw[i][1]), tuple(tw[i][1])) for i in changed_words(source, target))
        cut = [tw[i][0] for i in changed_words(source, target) if not tw[i][1] or not sw[i][1]]
        if cut:
            raise ConfigError(f"changed words past the text encoder's {max_tokens} tokens: {', '.join(cut)}")
        return CrossPlan(mode, pairs=pairs)
    if mode == "refine":
        src, tgt = token_ids(source, tokenizer, max_tokens), token_ids(target, tokenizer, max_tokens)
        mapper = needleman_wunsch(src, tgt)
        if all(m >= 0 for m in mapper) and len(src) == len(tgt):
            raise ConfigError(f"the source and target prompts are the same ({source!r}): nothing to refine")
        return CrossPlan(mode, mapper=tuple(mapper))
    if mode == "reweight":
        words = word_tokens(target, tokenizer, max_tokens)
        hits = [idx for w, idx in words if w.strip(".,;:!?").lower() == word.lower()]
        if not word or not hits:
            names = ", ".join(w for w, _ in words)
            raise ConfigError(f"reweight needs a word of the prompt {target!r} (words: {names}); got {word!r}")
        check_reweight(weight, "the reweight factor")
        return CrossPlan(mode, columns=tuple(sorted({p for idx in hits for p in idx})), weight=weight)
    return CrossPlan("none")


# ------------------------------------------------------------------------------------------- depth blending
def depth_alpha(j: int, n: int, blending: str, depth: str = "paper", cutoff: float = 0.75) -> float:
    """The weight of the *original* probabilities at attention module ``j`` of ``n`` (0 = fully controlled)."""
    if blending == "none":
        return 0.0
    if blending == "hard":
        return 0.0 if j + 1 <= math.floor(cutoff * n) else 1.0
    if depth == "reference":
        return ((j + 1) % n) / n
    return j / n


class PromptToPrompt(Intervention):
    """The Prompt-to-Prompt controller (see the module docstring) on a two-prompt batch (source = prompt 0).

    Args:
        plan: the cross-attention plan (:func:`cross_plan`).
        self_attention: copy the source's self-attention probabilities into the edited row.
        cross_blend: ``b`` of replace / refine (1 = the source's columns).
        blending / depth / cutoff: blending over attention-module depth (see :func:`depth_alpha`).
        steps: the steps (denoising steps or generated tokens) the controller acts at (default: all).
        self_steps: the steps at which self-attention is copied too (default: wherever the controller acts).
    """

    def __init__(self, plan: CrossPlan, *, self_attention: bool = True, cross_blend: float = 1.0,
                 blending: str = "soft", depth: str = "paper", cutoff: float = 0.75,
                 steps: Iterable[int] | int | None = None, self_steps: Iterable[int] | int | None = None):
        super().__init__(steps)
        self.self_steps = as_steps(self_steps)
        if not 0.0 <= cross_blend <= 1.0:
            raise ConfigError(f"cross_blend must be in [0, 1], got {cross_blend}")
        if not 0.0 < cutoff <= 1.0:
            raise ConfigError(f"cutoff must be in (0, 1], got {cutoff}")
        self.plan, self.self_attention, self.b = plan, self_attention, cross_blend
        self.blending, self.depth, self.cutoff = blending, depth, cutoff
        self._module: dict[str, tuple[int, str]] = {}

    def bind(self, probe) -> None:
        names = probe.points(kind="self_attn") + probe.points(kind="cross_attn")
        pts = sorted((probe.resolve(n) for n in names), key=lambda p: (p.depth, p.kind != "self_attn"))
        self._n = len(pts)
        self._module = {p.name: (j, p.kind) for j, p in enumerate(pts)}
        self.attention_points = frozenset(self._module)

    def active(self, point: str, step: int) -> bool:
        if not super().active(point, step):
            return False
        return self._module[point][1] == "cross_attn" or self.self_steps is None or step in self.self_steps

    def wants_probs(self, point: str) -> bool:
        j, kind = self._module[point]
        return kind == "cross_attn" or self.self_attention

    def modify_probs(self, call: AttnCall, probs: torch.Tensor) -> torch.Tensor:
        j, kind = self._module[call.point]
        alpha = depth_alpha(j, self._n, self.blending, self.depth, self.cutoff)
        if alpha >= 1.0:
            return probs
        if call.roles.prompts < 2:
            raise ConfigError("Prompt-to-Prompt runs the source and the edited prompt as rows of one batch: wrap the "
                              "call in probe.with_roles(RowRoles(prompts=2, cfg=...))")
        b = probs.shape[0]
        branch = "cond" if call.roles.cfg else "all"
        src_rows = call.rows(b, branch=branch, prompt=0)
        tgt_rows = call.rows(b, branch=branch, prompt=1)
        src, own = probs[src_rows], probs[tgt_rows]
        controlled = (src if self.self_attention else own) if kind == "self_attn" else self._cross(src, own)
        out = probs.clone()
        out[tgt_rows] = alpha * own + (1.0 - alpha) * controlled
        return out

    def _cross(self, src: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        p, b = self.plan, self.b
        if p.mode == "replace":
            out = own.clone()
            for s_cols, t_cols in p.pairs:
                mean = src[..., list(s_cols)].mean(-1, keepdim=True)
                out[..., list(t_cols)] = (1 - b) * own[..., list(t_cols)] + b * mean
            return out
        if p.mode == "refine":
            out = own.clone()
            keep = [(t, s) for t, s in enumerate(p.mapper) if s >= 0 and t < own.shape[-1]]
            t_idx, s_idx = [t for t, _ in keep], [s for _, s in keep]
            out[..., t_idx] = (1 - b) * own[..., t_idx] + b * src[..., s_idx]
            return out
        if p.mode == "reweight":
            out = src.clone()
            out[..., list(p.columns)] = out[..., list(p.columns)] * p.weight
            return out
        return own


# ------------------------------------------------------------------------------------------- building a controller
def prompt_tokenizer(model):
    """The model's text tokenizer (a backend's own; the zoo's MiniLM) and its token limit."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        from musicprobe.models.text import _load

        tok = _load()[0]
    return tok, model.config.max_text_tokens


def prompt_to_prompt(model, source_prompt: str, target_prompt: str, mode: str, *, word: str = "",
                     weight: float = 2.0, **kw) -> PromptToPrompt | None:
    """The :class:`PromptToPrompt` controller of ``mode`` for two prompts of ``model`` (None for ``"none"``);
    ``kw`` goes to the controller (blending, windows, ...)."""
    if mode == "none":
        return None
    if mode == "reweight" and source_prompt != target_prompt:
        raise ConfigError("reweight keeps the prompt and scales one of its words: give the same source and "
                          f"target prompt (got {source_prompt!r} and {target_prompt!r})")
    tok, n = prompt_tokenizer(model)
    plan = cross_plan(mode, source_prompt, target_prompt, tok, n, word=word, weight=weight)
    return PromptToPrompt(plan, **kw)
