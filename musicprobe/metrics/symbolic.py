"""mgeval-style note statistics: pitch-class histograms and inter-onset intervals.

Notes come from ground truth when a clip has it (any objects with ``onset``, ``offset``, ``pitch``), otherwise
from :func:`musicprobe.metrics.transcription.transcribe`.

* ``pitch_class_histogram`` follows mgeval's ``total_pitch_class_histogram`` (activation per pitch class,
  normalised to sum 1) weighted by note duration, as mgeval's piano roll is.
* ``pch_overlap`` is the overlap of two such histograms, ``sum(min(h1, h2))`` (1 = identical).
* ``ioi_overlap`` is mgeval's ``overlap_area``: the area under ``min`` of the two Gaussian KDEs of the
  inter-onset-interval distributions (1 = identical distributions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import gaussian_kde

from musicprobe.errors import AudioError


def pitch_class_histogram(notes: Sequence) -> np.ndarray:
    h = np.zeros(12)
    for n in notes:
        h[int(n.pitch) % 12] += max(float(n.offset) - float(n.onset), 1e-3)
    if h.sum() == 0:
        raise AudioError("pitch-class histogram: no pitched notes")
    return h / h.sum()


def pch_overlap(a: Sequence, b: Sequence) -> float:
    return float(np.minimum(pitch_class_histogram(a), pitch_class_histogram(b)).sum())


def inter_onset_intervals(notes: Sequence, min_gap: float = 0.02) -> np.ndarray:
    """Intervals between distinct onsets (onsets closer than ``min_gap`` s, e.g. chord notes, merge)."""
    onsets = np.unique(np.round(np.sort([float(n.onset) for n in notes]) / min_gap) * min_gap)
    return np.diff(onsets)


def overlap_area(x: np.ndarray, y: np.ndarray, grid: int = 512) -> float:
    """Area under min of two Gaussian KDEs (mgeval ``utils.overlap_area``)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or y.size < 2:
        raise AudioError("overlap_area: need at least two values in each distribution")
    if x.size == y.size and np.allclose(np.sort(x), np.sort(y)):
        return 1.0
    if np.allclose(x, x[0]) and np.allclose(y, y[0]):
        return 1.0 if np.isclose(x[0], y[0]) else 0.0
    jitter = 1e-6 * np.arange(max(x.size, y.size))  # KDE needs non-zero variance
    kx = gaussian_kde(x + jitter[: x.size])
    ky = gaussian_kde(y + jitter[: y.size])
    lo = min(x.min(), y.min())
    hi = max(x.max(), y.max())
    pad = 3 * max(np.std(x), np.std(y), 1e-3)
    t = np.linspace(lo - pad, hi + pad, grid)
    return float(np.clip(np.trapezoid(np.minimum(kx(t), ky(t)), t), 0.0, 1.0))


def ioi_overlap(a: Sequence, b: Sequence) -> float:
    return overlap_area(inter_onset_intervals(a), inter_onset_intervals(b))
