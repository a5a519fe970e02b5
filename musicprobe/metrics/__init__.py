"""Model-free music metrics, named after their reference implementations (see each module's docstring)."""

from musicprobe.metrics.harmony import chord_accuracy, chord_agreement, recognize_chords
from musicprobe.metrics.pitch import chroma_similarity, cqt1_pcc, cqt_top1, melody_accuracy, pitch_track
from musicprobe.metrics.rhythm import (
    beat_f1,
    beat_times,
    dynamics_correlation,
    onset_f1,
    onset_strength_correlation,
    rhythm_f1,
)
from musicprobe.metrics.suite import (
    METRICS,
    against_ground_truth,
    compare,
    evaluate_files,
    notes_from_metadata,
)
from musicprobe.metrics.symbolic import (
    inter_onset_intervals,
    ioi_overlap,
    overlap_area,
    pch_overlap,
    pitch_class_histogram,
)
from musicprobe.metrics.transcription import detect_onsets, transcribe

__all__ = [
    "METRICS",
    "against_ground_truth",
    "beat_f1",
    "beat_times",
    "chord_accuracy",
    "chord_agreement",
    "chroma_similarity",
    "compare",
    "cqt1_pcc",
    "cqt_top1",
    "detect_onsets",
    "dynamics_correlation",
    "evaluate_files",
    "inter_onset_intervals",
    "ioi_overlap",
    "melody_accuracy",
    "notes_from_metadata",
    "onset_f1",
    "onset_strength_correlation",
    "overlap_area",
    "pch_overlap",
    "pitch_class_histogram",
    "pitch_track",
    "recognize_chords",
    "rhythm_f1",
    "transcribe",
]
