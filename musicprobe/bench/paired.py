"""Per-pair differences between two conditions run on the same inputs (the benchmarks' spread-aware directions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_difference(rows: Sequence[dict], base: Sequence[dict], keys: Sequence[str]) -> dict[str, list[float]]:
    """Per metric in ``keys``: ``[mean, sd, n]`` of ``row[k] - base[k]`` over the inputs both ran on (row ``i`` of
    each list is the same input); pairs where either value is NaN are left out."""
    if len(rows) != len(base):
        raise ValueError(f"paired_difference: {len(rows)} rows against {len(base)}")
    out = {}
    for k in keys:
        d = np.array([r[k] - b[k] for r, b in zip(rows, base)], dtype=float)
        d = d[np.isfinite(d)]
        out[k] = [float(d.mean()), float(d.std()), int(d.size)] if d.size else [float("nan"), float("nan"), 0]
    return out
