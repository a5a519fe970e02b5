"""Attention arithmetic shared by the hook engine and the interventions."""

from __future__ import annotations

import math

import torch

from musicprobe.errors import MusicProbeError


def repeat_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Expand grouped K/V heads ``(B, H_kv, S, D)`` to ``heads`` query heads (GQA's repeat)."""
    if x.shape[1] == heads:
        return x
    if heads % x.shape[1]:
        raise MusicProbeError(f"cannot expand {x.shape[1]} key/value heads to {heads} query heads")
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def attention_probs(
    q: torch.Tensor,
    k: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """``softmax(q kᵀ · scale + mask)`` in float32, as ``F.scaled_dot_product_attention`` defines it.

    ``q``: (B, H, L, D); ``k``: (B, H_kv, S, D) with H divisible by H_kv (grouped heads are repeated);
    ``mask``: boolean (True = attend) or additive, broadcastable to (B, H, L, S); ``is_causal`` uses the
    top-left-aligned lower triangle, as SDPA does. Fully masked rows give zeros.
    """
    k = repeat_heads(k, q.shape[1])
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    if is_causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    return torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
