"""Pitch and melody preservation metrics between two clips (source vs edit).

* ``chroma_similarity`` — MusRec/ZETA-lineage recipe (``chroma_argmax_librosa``): librosa ``chroma_cqt`` at
  22.05 kHz, hop 512; per-frame argmax pitch class; fraction of frames where the two agree.
* ``cqt1_pcc`` — SteerMusic's CQT-1 PCC: CQT at 16 kHz (fmin 65 Hz, 128 bins, 24 per octave, hop 512), the top-1
  bin per frame, Pearson correlation of the two bin sequences. SteerMusic uses nnAudio's ``CQT2010``; we use
  librosa's CQT with the same bins (the argmax sequence is what matters, not the filter normalisation).
* ``melody_accuracy`` — EditGen-style: librosa ``piptrack``, strongest pitch per frame, fraction of voiced frames
  where both clips agree within half a semitone.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy.stats import pearsonr

from musicprobe.audio.features import chroma, cqt
from musicprobe.audio.io import resample, validate_audio


def _pair(a: np.ndarray, b: np.ndarray, sr: int, target_sr: int) -> tuple[np.ndarray, np.ndarray]:
    a = resample(validate_audio(a, sr, name="source", mono=True), sr, target_sr)
    b = resample(validate_audio(b, sr, name="edit", mono=True), sr, target_sr)
    return a, b


def _crop(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(x.shape[-1], y.shape[-1])
    return x[..., :n], y[..., :n]


def chroma_similarity(a: np.ndarray, b: np.ndarray, sr: int = 16000) -> float:
    """Fraction of frames whose dominant pitch class agrees (1.0 for identical audio)."""
    a, b = _pair(a, b, sr, 22050)
    ca, cb = _crop(chroma(a, 22050).argmax(axis=0), chroma(b, 22050).argmax(axis=0))
    return float(np.mean(ca == cb))


def cqt_top1(y: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Index of the strongest CQT bin per frame (SteerMusic's CQT-1 representation)."""
    return cqt(y, sr, hop_length=512, fmin=65.0, n_bins=128, bins_per_octave=24).argmax(axis=0)


def _safe_pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.array_equal(x, y):
        return 1.0
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0  # correlation undefined for a constant sequence: report no shared melody
    return float(pearsonr(x, y)[0])


def cqt1_pcc(a: np.ndarray, b: np.ndarray, sr: int = 16000) -> float:
    """Pearson correlation of per-frame top-1 CQT bins (1.0 for identical audio)."""
    a, b = _pair(a, b, sr, 16000)
    ta, tb = _crop(cqt_top1(a), cqt_top1(b))
    return _safe_pearson(ta.astype(np.float64), tb.astype(np.float64))


def pitch_track(y: np.ndarray, sr: int, hop_length: int = 512, fmin: float = 60.0, fmax: float = 2000.0) -> np.ndarray:
    """Strongest ``piptrack`` pitch per frame as fractional MIDI, NaN where unvoiced."""
    pitches, mags = librosa.piptrack(y=y, sr=sr, hop_length=hop_length, fmin=fmin, fmax=fmax)
    idx = mags.argmax(axis=0)
    f = pitches[idx, np.arange(pitches.shape[1])]
    strong = mags.max(axis=0) > 0.1 * (mags.max() + 1e-12)
    out = np.full(f.shape, np.nan)
    ok = (f > 0) & strong
    out[ok] = librosa.hz_to_midi(f[ok])
    return out


def melody_accuracy(a: np.ndarray, b: np.ndarray, sr: int = 16000) -> float:
    """Fraction of frames, voiced in either clip, where both clips' strongest pitch agree within 0.5 semitone."""
    a, b = _pair(a, b, sr, sr)
    pa, pb = _crop(pitch_track(a, sr), pitch_track(b, sr))
    voiced = ~np.isnan(pa) | ~np.isnan(pb)
    if not voiced.any():
        return float("nan")
    both = ~np.isnan(pa) & ~np.isnan(pb)
    hit = both & (np.abs(np.where(both, pa - pb, 99)) < 0.5)
    return float(hit[voiced].mean())
