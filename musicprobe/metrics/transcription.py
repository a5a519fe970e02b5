"""A small offline audio-to-notes transcription used when a clip has no ground-truth notes.

Method (documented, deterministic, no learned model): onsets from librosa's spectral-flux onset detector
(backtracked); each inter-onset segment gets the pitch of its strongest semitone-resolution CQT bin (median
over the segment), ignoring segments quieter than -40 dB below the clip's peak. It estimates the *dominant* line,
so on dense mixes it reports the loudest voice. Good enough for pitch-class and inter-onset statistics; it is not a
polyphonic transcriber.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from musicprobe.audio.io import validate_audio

FMIN_MIDI = 36  # C2


@dataclass(frozen=True)
class TranscribedNote:
    onset: float
    offset: float
    pitch: int
    velocity: float


def detect_onsets(y: np.ndarray, sr: int, hop_length: int = 256) -> np.ndarray:
    """Onset times in seconds (librosa onset strength + peak picking, backtracked)."""
    y = validate_audio(y, sr, mono=True)
    frames = librosa.onset.onset_detect(y=y, sr=sr, hop_length=hop_length, backtrack=True, units="frames")
    return librosa.frames_to_time(frames, sr=sr, hop_length=hop_length)


def transcribe(y: np.ndarray, sr: int, hop_length: int = 256) -> list[TranscribedNote]:
    """Dominant-pitch notes: one per onset segment (see the module docstring)."""
    y = validate_audio(y, sr, mono=True)
    onsets = detect_onsets(y, sr, hop_length)
    duration = y.size / sr
    if onsets.size == 0:
        return []
    n_bins = 60
    C = np.abs(
        librosa.cqt(
            y,
            sr=sr,
            hop_length=hop_length,
            fmin=librosa.midi_to_hz(FMIN_MIDI),
            n_bins=n_bins,
            bins_per_octave=12,
        )
    )
    db = librosa.amplitude_to_db(C, ref=np.max)
    times = librosa.frames_to_time(np.arange(C.shape[1]), sr=sr, hop_length=hop_length)
    bounds = list(onsets) + [duration]
    notes = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        sel = (times >= start) & (times < end)
        if not sel.any():
            continue
        seg = np.median(C[:, sel], axis=1)
        k = int(seg.argmax())
        if db[k, sel].max() < -40:
            continue
        notes.append(TranscribedNote(float(start), float(end), FMIN_MIDI + k, float(seg[k] / (C.max() + 1e-12))))
    return notes
