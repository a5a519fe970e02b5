import json

import numpy as np
import pytest
from conftest import SR, sine

from musicprobe.errors import AudioError
from musicprobe.metrics import (
    chroma_similarity,
    compare,
    cqt1_pcc,
    dynamics_correlation,
    melody_accuracy,
    onset_f1,
    overlap_area,
    pch_overlap,
    recognize_chords,
    transcribe,
)
from musicprobe.synth import make_clip
from musicprobe.synth.instruments import INSTRUMENTS, render_note


def melody(pitches, note_dur=0.25, shift=0, inst="flute", offset=0.0):
    rng = np.random.default_rng(0)
    out = np.zeros(int((len(pitches) * note_dur + offset + 0.5) * SR), np.float32)
    for i, p in enumerate(pitches):
        w = render_note(INSTRUMENTS[inst], p + shift, note_dur * 0.9, 0.8, SR, rng)
        s = int((offset + i * note_dur) * SR)
        out[s : s + w.size] += w[: out.size - s]
    return out


TUNE = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 60]


def test_identical_audio_scores_perfectly(pop_clip):
    scores = compare(pop_clip.audio, pop_clip.audio)
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in scores.values()), scores


def test_transposed_melody_lowers_chroma_and_cqt1():
    a, b = melody(TUNE), melody(TUNE, shift=3)
    assert chroma_similarity(a, a) == 1.0 and cqt1_pcc(a, a) == 1.0
    assert chroma_similarity(a, b) < 0.3
    same_contour = cqt1_pcc(a, b)  # CQT-1 PCC is contour-based: a transposition still correlates...
    scrambled = cqt1_pcc(a, melody(list(np.random.default_rng(1).permutation(TUNE))))
    assert scrambled < same_contour  # ...but a scrambled melody does not
    assert melody_accuracy(a, melody(TUNE, inst="violin")) > melody_accuracy(a, b)


def test_timbre_change_keeps_chroma_better_than_transposition():
    a = melody(TUNE)
    assert chroma_similarity(a, melody(TUNE, inst="violin")) > chroma_similarity(a, melody(TUNE, shift=5)) + 0.3


def test_triads_are_recognised():
    chords = [(60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60), (59, 62, 65)]
    labels = ["C:maj", "G:maj", "A:min", "F:maj", "B:dim"]
    y = np.concatenate([sum(sine(440 * 2 ** ((p - 69) / 12), 1.0, amp=0.2) for p in c) for c in chords])
    assert recognize_chords(y, SR, [0, 1, 2, 3, 4]) == labels


def test_chords_of_a_synthetic_clip_match_ground_truth(pop_clip):
    from musicprobe.metrics import against_ground_truth

    assert against_ground_truth(pop_clip.audio, SR, pop_clip.metadata())["chord_accuracy"] > 0.6


def test_onset_f1_known_answers():
    ref = np.array([0.5, 1.0, 1.5, 2.0])
    assert onset_f1(ref, ref) == 1.0
    assert onset_f1(ref, ref + 0.02) == 1.0  # inside the 50 ms window
    assert onset_f1(ref, ref + 0.1) == 0.0
    assert onset_f1(ref, ref[:2]) == pytest.approx(2 * (1.0 * 0.5) / 1.5)


def test_shifted_onsets_lower_rhythm_f1_from_audio():
    from musicprobe.metrics import rhythm_f1

    a = melody(TUNE, note_dur=0.3)
    b = melody(TUNE, note_dur=0.3, offset=0.12)
    assert rhythm_f1(a, a) == 1.0
    assert rhythm_f1(a, b) < 0.3


def test_note_statistics_known_answers():
    class N:
        def __init__(self, onset, offset, pitch):
            self.onset, self.offset, self.pitch = onset, offset, pitch

    c_major = [N(i * 0.5, i * 0.5 + 0.5, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71])]
    f_sharp = [N(i * 0.5, i * 0.5 + 0.5, p + 6) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71])]
    assert pch_overlap(c_major, c_major) == pytest.approx(1.0)
    assert pch_overlap(c_major, f_sharp) == pytest.approx(2 / 7)  # only B and E are shared
    assert overlap_area(np.array([0.5, 0.5, 0.25]), np.array([0.5, 0.5, 0.25])) == 1.0
    assert overlap_area(np.array([0.1, 0.12, 0.11]), np.array([2.0, 2.1, 2.05])) < 0.01
    with pytest.raises(AudioError, match="two values"):
        overlap_area(np.array([1.0]), np.array([1.0, 2.0]))


def test_transcription_finds_the_tune():
    notes = transcribe(melody(TUNE, note_dur=0.3), SR)
    pitches = [n.pitch for n in notes]
    assert len(notes) == pytest.approx(len(TUNE), abs=2)
    assert np.mean([p in TUNE for p in pitches]) > 0.8


def test_dynamics_correlation_direction():
    t = np.linspace(0, 1, 2 * SR)
    rise = (sine(440, 2.0) * t).astype(np.float32)
    fall = (sine(440, 2.0) * t[::-1]).astype(np.float32)
    assert dynamics_correlation(rise, rise) == 1.0
    assert dynamics_correlation(rise, fall) < -0.9


def test_metrics_reject_bad_input():
    with pytest.raises(AudioError, match="silent"):
        chroma_similarity(np.zeros(SR, np.float32), sine(440))
    with pytest.raises(AudioError, match="NaN"):
        cqt1_pcc(sine(440), np.full(SR, np.nan, np.float32))


def test_edit_ordering_ideal_beats_unrelated():
    clip = make_clip(21, genre="pop", lead="piano")
    from musicprobe.synth import instrument_edit

    ideal = compare(clip.audio, instrument_edit(clip, "violin").target.audio)
    unrelated = compare(clip.audio, make_clip(22, genre="jazz").audio)
    for m in ("chroma_similarity", "chord_agreement", "pch_overlap"):
        assert ideal[m] > unrelated[m] + 0.2, m


def test_metrics_cli_json_uses_ground_truth_sidecars(capsys):
    from musicprobe.cli.main import main
    from musicprobe.data import data_dir

    d = data_dir()
    assert main(["metrics", str(d / "pop_piano.flac"), str(d / "targets/pop_piano_to_flute.flac"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["notes"] == "ground truth"
    assert out["edit_vs_source"]["pch_overlap"] == 1.0  # an instrument edit keeps every note
    assert 0 < out["edit_vs_source"]["chroma_similarity"] <= 1
