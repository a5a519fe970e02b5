"""Rhythm and dynamics: onset F1 (mir_eval, 50 ms), beat F1 (70 ms, EditGen) and correlations of loudness
and onset-strength envelopes."""

from __future__ import annotations

import librosa
import mir_eval
import numpy as np
from scipy.stats import pearsonr

from musicprobe.audio.io import validate_audio
from musicprobe.metrics.transcription import detect_onsets


def onset_f1(reference_onsets: np.ndarray, estimated_onsets: np.ndarray, window: float = 0.05) -> float:
    """mir_eval onset F-measure between two onset lists (seconds)."""
    ref, est = np.sort(np.asarray(reference_onsets, float)), np.sort(np.asarray(estimated_onsets, float))
    if ref.size == 0 and est.size == 0:
        return 1.0
    if ref.size == 0 or est.size == 0:
        return 0.0
    return float(mir_eval.onset.f_measure(ref, est, window=window)[0])


def rhythm_f1(a: np.ndarray, b: np.ndarray, sr: int = 16000, window: float = 0.05) -> float:
    """Onset F1 of the edit's detected onsets against the source's detected onsets."""
    return onset_f1(detect_onsets(a, sr), detect_onsets(b, sr), window)


def loudness_envelope(y: np.ndarray, sr: int, hop_length: int = 512) -> np.ndarray:
    y = validate_audio(y, sr, mono=True)
    return librosa.feature.rms(y=y, frame_length=2048, hop_length=hop_length)[0]


def dynamics_correlation(a: np.ndarray, b: np.ndarray, sr: int = 16000) -> float:
    """Pearson correlation of RMS loudness envelopes (EditGen's dynamics metric uses onset strength; RMS is
    the steadier choice for sustained instruments)."""
    return _pearson(loudness_envelope(a, sr), loudness_envelope(b, sr))


def _pearson(ea: np.ndarray, eb: np.ndarray) -> float:
    n = min(ea.size, eb.size)
    ea, eb = ea[:n], eb[:n]
    if np.allclose(ea, eb):
        return 1.0
    if np.std(ea) == 0 or np.std(eb) == 0:
        return 0.0
    return float(pearsonr(ea, eb)[0])


def onset_strength_correlation(a: np.ndarray, b: np.ndarray, sr: int = 16000, hop_length: int = 512) -> float:
    """EditGen's dynamics metric: Pearson correlation of the two clips' onset-strength envelopes (librosa)."""
    env = [librosa.onset.onset_strength(y=validate_audio(y, sr, mono=True), sr=sr, hop_length=hop_length)
           for y in (a, b)]
    return _pearson(*env)


def beat_times(y: np.ndarray, sr: int = 16000, hop_length: int = 256) -> np.ndarray:
    """Beat positions (seconds) from librosa's dynamic-programming beat tracker."""
    _, beats = librosa.beat.beat_track(y=validate_audio(y, sr, mono=True), sr=sr, hop_length=hop_length,
                                       units="time")
    return np.asarray(beats, float)


def beat_f1(a: np.ndarray, b: np.ndarray, sr: int = 16000, window: float = 0.07) -> float:
    """EditGen's rhythm metric: F-measure of the edit's tracked beats against the source's (mir_eval, 70 ms;
    librosa's beat tracker stands in for madmom's RNN + DBN, which does not install here)."""
    return onset_f1(beat_times(a, sr), beat_times(b, sr), window)
