"""InstructME's chunk transformer as diffusers attention processors, and the time-aligned chord cross-attention.

Tokens of a ``Transformer2DModel`` come row-major from a ``(height, width)`` map: frequency rows, time columns.

* :class:`ChunkedSelfAttention` cuts the time axis into ``chunk``-column windows with 50 % overlap, runs one
  attention per window (all windows in one ``scaled_dot_product_attention`` call, windows folded into the head
  axis so the batch rows stay the rows a Probe knows) and merges the overlapping outputs by addition. The paper
  says "fusion by addition"; a plain sum would count the middle of a clip twice and its edges once, so each window
  output is weighted by a triangular window and the sum divided by the summed weights (overlap-add). A token
  sees at most ``1.5 * chunk`` columns of neighbours per layer; cost is ``O(T * chunk)``, not ``O(T^2)``. A map no
  wider than ``chunk`` is one window: plain attention.
* :class:`TextCrossAttention` attends to the text tokens only (the leading ``text_len`` conditioning tokens).
* :class:`ChordCrossAttention` (the bottleneck) attends to the chord tokens after them, each time column only to
  the chord frames within ``band`` columns of its own time: the paper does not say how chord frames align with the
  bottleneck map; a band mask is our choice (a global cross-attention has no way to know which chord is "now").
* :class:`GatedChordCrossAttention` (our extension, the up path): the text cross-attention plus a time-banded
  attention to the chord tokens through keys, values and an output projection of its own (``attn.chord_k``,
  ``attn.chord_v``, ``attn.chord_out``; :func:`add_chord_inputs` adds them). The output projection starts at zero
  (ControlNet's zero convolution), so the block starts as it was. A scalar gate at zero in front of the shared
  output projection (our first version) deadlocks: the keys / values get no gradient while the gate is zero, and
  the gate's own gradient is the loss's correlation with a random projection, which averages out (measured: after
  800 fine-tuning steps every gate was within 0.002 of zero). A zero matrix gets a full outer-product gradient and
  picks the useful directions out of the random features at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window_starts(width: int, chunk: int) -> list[int]:
    """Starts of ``chunk``-wide windows with hop ``chunk // 2`` covering ``[0, width)`` (the last one flush right)."""
    if width <= chunk:
        return [0]
    hop = max(1, chunk // 2)
    starts = list(range(0, width - chunk + 1, hop))
    if starts[-1] + chunk < width:
        starts.append(width - chunk)
    return starts


def _triangle(chunk: int, device, dtype) -> torch.Tensor:
    i = torch.arange(chunk, device=device, dtype=dtype)
    return torch.minimum(i + 1, chunk - i) / ((chunk + 1) / 2)


def _heads(attn, x: torch.Tensor) -> torch.Tensor:
    b, n, _ = x.shape
    return x.view(b, n, attn.heads, -1).transpose(1, 2)


def _merge_heads(out: torch.Tensor) -> torch.Tensor:
    """``(B, heads, N, d)`` -> ``(B, N, heads * d)``: the inverse of :func:`_heads`."""
    b, h, n, d = out.shape
    return out.transpose(1, 2).reshape(b, n, h * d)


def _project_out(attn, out: torch.Tensor) -> torch.Tensor:
    return attn.to_out[1](attn.to_out[0](_merge_heads(out)))


class ChunkedSelfAttention:
    """Self-attention over overlapping time windows of a ``height``-row token map (see the module docstring)."""

    def __init__(self, height: int, chunk: int):
        self.height = int(height)
        self.chunk = int(chunk)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        b, n, _ = hidden_states.shape
        width = n // self.height
        q, k, v = (_heads(attn, f(hidden_states)) for f in (attn.to_q, attn.to_k, attn.to_v))
        starts = window_starts(width, self.chunk)
        if len(starts) == 1:
            out = F.scaled_dot_product_attention(q, k, v)
            return _project_out(attn, out)
        c, heads = self.chunk, attn.heads

        def windows(x: torch.Tensor) -> torch.Tensor:  # (b, h, H*W, d) -> (b, h * n_win, H * c, d)
            grid = x.reshape(b, heads, self.height, width, -1)
            win = torch.stack([grid[:, :, :, s : s + c] for s in starts], dim=2)  # b h n H c d
            return win.reshape(b, heads * len(starts), self.height * c, -1)

        out = F.scaled_dot_product_attention(windows(q), windows(k), windows(v))
        out = out.reshape(b, heads, len(starts), self.height, c, -1)
        w = _triangle(c, out.device, out.dtype).view(1, 1, 1, c, 1)
        total = out.new_zeros(b, heads, self.height, width, out.shape[-1])
        weight = out.new_zeros(1, 1, 1, width, 1)
        for i, s in enumerate(starts):
            total[:, :, :, s : s + c] += out[:, :, i] * w
            weight[:, :, :, s : s + c] += w
        merged = (total / weight).reshape(b, heads, self.height * width, -1)
        return _project_out(attn, merged)


def _cross(attn, hidden_states: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    q, k, v = _heads(attn, attn.to_q(hidden_states)), _heads(attn, attn.to_k(context)), _heads(attn, attn.to_v(context))
    return _project_out(attn, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


class TextCrossAttention:
    """Cross-attention to the first ``text_len`` conditioning tokens (the instruction)."""

    def __init__(self, text_len: int):
        self.text_len = int(text_len)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs) -> torch.Tensor:
        context = encoder_hidden_states[:, : self.text_len]
        mask = None
        if attention_mask is not None:  # diffusers' additive bias (B, 1, L_total)
            mask = attention_mask[..., : self.text_len].unsqueeze(1).to(hidden_states.dtype)
        return _cross(attn, hidden_states, context, mask)


def band_mask(height: int, width: int, frames: int, band: int, device=None) -> torch.Tensor:
    """Boolean ``(height * width, frames)``: column ``w`` may see chord frame ``j`` when the two times differ by at
    most ``band`` chord frames (the frame under the column's centre, chord frames spread evenly over the width)."""
    col = ((torch.arange(width, device=device) * 2 + 1) * frames // (2 * width)).clamp(max=frames - 1)
    j = torch.arange(frames, device=device)
    near = (col[:, None] - j[None, :]).abs() <= band  # every column sees at least its own chord frame
    return near.repeat(height, 1)


class ChordCrossAttention:
    """Bottleneck cross-attention to the chord tokens (everything after the first ``text_len`` tokens), time-banded."""

    def __init__(self, height: int, text_len: int, band: int = 1):
        self.height = int(height)
        self.text_len = int(text_len)
        self.band = int(band)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs) -> torch.Tensor:
        chords = encoder_hidden_states[:, self.text_len :]
        width = hidden_states.shape[1] // self.height
        mask = band_mask(self.height, width, chords.shape[1], self.band, hidden_states.device)
        return _cross(attn, hidden_states, chords, mask[None, None])


def add_chord_inputs(attn: nn.Module, token_dim: int) -> None:
    """Give a cross-attention module chord keys / values of its own and a zero output projection (see the module
    docstring)."""
    inner = attn.to_q.out_features
    attn.chord_k = nn.Linear(token_dim, inner, bias=False)
    attn.chord_v = nn.Linear(token_dim, inner, bias=False)
    attn.chord_out = nn.Linear(inner, attn.to_out[0].out_features, bias=False)
    nn.init.zeros_(attn.chord_out.weight)


class GatedChordCrossAttention(TextCrossAttention):
    """Text cross-attention plus a time-banded attention to the chord tokens through ``attn.chord_out``."""

    def __init__(self, height: int, text_len: int, band: int = 1):
        super().__init__(text_len)
        self.height = int(height)
        self.band = int(band)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs) -> torch.Tensor:
        text = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask)
        chords = encoder_hidden_states[:, self.text_len :]
        width = hidden_states.shape[1] // self.height
        mask = band_mask(self.height, width, chords.shape[1], self.band, hidden_states.device)
        q = _heads(attn, attn.to_q(hidden_states))
        k, v = _heads(attn, attn.chord_k(chords)), _heads(attn, attn.chord_v(chords))
        heard = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None, None])
        return text + attn.chord_out(_merge_heads(heard))
