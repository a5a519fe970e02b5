"""A learned perceptual audio distance in the LPIPS style: the LPAPS stand-in, and the hook for a real LPAPS.

LPAPS (Paissan et al.; SteerMusic's structure metric) compares two clips through the activations of a pretrained
audio network: each layer's feature vectors are unit-normalised over channels at every time position, the squared
differences are weighted per channel (learned ``w_l``) and averaged over time, then summed over layers. Its
weights cannot be fetched here, so the **stand-in** uses mini-CLAP's convolutional audio tower as the network
and uniform channel weights (``w_l = 1``, LPIPS's "lin=False" variant), averaged over layers. It is not
calibrated against human judgements; it ranks edits by how far their learned features moved from the source's,
which is what SteerMusic's Table 1 uses LPAPS for. Lower is closer.

A real LPAPS (or any network) plugs in as ``model``: anything with ``feature_maps(audios, sr) -> [(B, C, T), ...]``
(optionally ``channel_weights -> [(C,), ...]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from musicprobe.errors import ConfigError


class FeatureNetwork(Protocol):
    def feature_maps(self, audios: Sequence[np.ndarray] | np.ndarray, sr: int) -> list[torch.Tensor]: ...


def lpaps(model: FeatureNetwork, a, b, sr: int) -> np.ndarray | float:
    """LPIPS-style distance between clips ``a`` and ``b`` (one clip each, or two equal-length lists)."""
    single = isinstance(a, np.ndarray) and a.ndim == 1
    la, lb = ([a], [b]) if single else (list(a), list(b))
    if len(la) != len(lb):
        raise ConfigError(f"lpaps: {len(la)} clips against {len(lb)}")
    fa, fb = model.feature_maps(la, sr), model.feature_maps(lb, sr)
    weights = getattr(model, "channel_weights", None) or [None] * len(fa)
    total = torch.zeros(len(la))
    for x, y, w in zip(fa, fb, weights):
        x = torch.nn.functional.normalize(x.float(), dim=1)
        y = torch.nn.functional.normalize(y.float(), dim=1)
        d = (x - y).pow(2)
        d = d * w.view(1, -1, 1) if w is not None else d
        total += d.sum(1).mean(-1)
    out = (total / len(fa)).numpy()
    return float(out[0]) if single else out
