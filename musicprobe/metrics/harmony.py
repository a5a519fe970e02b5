"""Template chord recognition (major, minor, diminished triads) on beat-synchronous chroma."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musicprobe.audio.features import chroma
from musicprobe.audio.io import resample, validate_audio
from musicprobe.synth.theory import PITCH_CLASSES

QUALITIES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6)}
_HOP = 512
_SR = 22050


def _templates() -> tuple[list[str], np.ndarray]:
    labels, rows = [], []
    for q, ivs in QUALITIES.items():
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in ivs]] = 1.0
            labels.append(f"{PITCH_CLASSES[root]}:{q}")
            rows.append(t / np.linalg.norm(t))
    return labels, np.array(rows)


LABELS, TEMPLATES = _templates()


def _chroma_and_level(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CQT chroma ``(12, frames)`` at 22.05 kHz / hop 512, the RMS of each frame, and the frame times (s)."""
    y22 = resample(y, sr, _SR)
    C = chroma(y22, _SR, hop_length=_HOP)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y22, (0, _HOP)), _HOP)[::_HOP][: C.shape[1]]
    return C, np.sqrt(np.mean(frames**2, axis=1)), np.arange(C.shape[1]) * _HOP / _SR


def recognize_chords(
    y: np.ndarray,
    sr: int,
    segment_starts: Sequence[float],
    duration: float | None = None,
    silence_db: float = -50.0,
) -> list[str]:
    """One label per segment ``[start_i, start_{i+1})`` (last segment to the end); ``'N'`` for silence."""
    y = validate_audio(y, sr, mono=True)
    C, rms, times = _chroma_and_level(y, sr)
    peak = rms.max() + 1e-12
    end = duration if duration is not None else y.size / sr
    starts = list(segment_starts) + [end]
    out = []
    for s, e in zip(starts[:-1], starts[1:]):
        sel = (times >= s) & (times < e)
        if not sel.any() or 20 * np.log10(rms[sel].mean() / peak + 1e-12) < silence_db:
            out.append("N")
            continue
        v = C[:, sel].mean(axis=1)
        v = v / (np.linalg.norm(v) + 1e-12)
        out.append(LABELS[int(np.argmax(TEMPLATES @ v))])
    return out


def chord_accuracy(reference: Sequence[str], estimated: Sequence[str]) -> float:
    """Fraction of segments with the same label (exact root and triad quality)."""
    n = min(len(reference), len(estimated))
    if n == 0:
        return float("nan")
    return float(np.mean([r == e for r, e in zip(reference[:n], estimated[:n])]))


def chord_agreement(a: np.ndarray, b: np.ndarray, sr: int = 16000, segment: float = 0.5) -> float:
    """Chord accuracy of the edit against the chords recognised in the source, on fixed segments."""
    dur = min(a.size, b.size) / sr
    starts = np.arange(0, dur, segment)
    return chord_accuracy(
        recognize_chords(a[: int(dur * sr)], sr, starts, dur),
        recognize_chords(b[: int(dur * sr)], sr, starts, dur),
    )


CHORD_CLASSES = LABELS + ["N"]  # the rows of a chord matrix: every triad template, then "no chord"


def chord_matrix(
    y: np.ndarray,
    sr: int,
    step: float,
    n_steps: int | None = None,
    *,
    sharpness: float = 16.0,
    silence_db: float = -50.0,
) -> np.ndarray:
    """InstructME's chord progression matrix: chord probabilities ``(len(CHORD_CLASSES), n_steps)``, one column per
    ``step`` seconds.

    Each column is a softmax over the cosine similarities of the column's mean CQT chroma with the triad templates
    (``sharpness`` is the inverse temperature), times the probability that the column is not silent; the last row is
    "N" (silence, relative to the clip's loudest column). The paper uses a learned recogniser's probabilities; ours
    is the template recogniser of :func:`recognize_chords` made soft.
    """
    y = validate_audio(y, sr, mono=True, allow_silence=True)
    n_steps = n_steps or max(1, int(np.ceil(y.size / sr / step)))
    C, rms, times = _chroma_and_level(y, sr)
    col = np.minimum((times / step).astype(int), n_steps - 1)
    out = np.zeros((len(CHORD_CLASSES), n_steps), np.float32)
    peak = rms.max() + 1e-12
    for j in range(n_steps):
        sel = col == j
        if not sel.any():
            out[-1, j] = 1.0
            continue
        level = 20 * np.log10(rms[sel].mean() / peak + 1e-12)
        voiced = 1.0 / (1.0 + np.exp(-(level - silence_db) / 3.0))
        v = C[:, sel].mean(axis=1)
        v = v / (np.linalg.norm(v) + 1e-12)
        logits = sharpness * (TEMPLATES @ v)
        p = np.exp(logits - logits.max())
        out[:-1, j] = voiced * p / p.sum()
        out[-1, j] = 1.0 - voiced
    return out
