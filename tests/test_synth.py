import json

import librosa
import numpy as np
import pytest

from musicprobe.errors import ConfigError, UnknownNameError
from musicprobe.synth import (
    GENRES,
    INSTRUMENTS,
    genre_edit,
    instrument_edit,
    make_clip,
    mood_edit,
    stem_tasks,
    write_corpus,
)
from musicprobe.synth.instruments import render_note
from musicprobe.synth.theory import MODES, midi_to_hz


def test_same_seed_same_audio_and_different_seed_differs():
    a, b, c = make_clip(3), make_clip(3), make_clip(4)
    assert np.array_equal(a.audio, b.audio)
    assert a.metadata() == b.metadata()
    assert not np.array_equal(a.audio, c.audio)


def test_mix_is_exactly_the_sum_of_stems_and_has_the_target_level(pop_clip):
    stems = pop_clip.rendering.stems
    assert set(stems) == {"melody", "chords", "bass", "drums"}
    assert np.allclose(pop_clip.audio, sum(stems.values()), atol=1e-6)
    rms = 20 * np.log10(np.sqrt(np.mean(pop_clip.audio.astype(float) ** 2)))
    assert rms == pytest.approx(-20, abs=1.0) or np.max(np.abs(pop_clip.audio)) == pytest.approx(0.99, abs=1e-3)


def test_ground_truth_is_consistent(pop_clip):
    meta = pop_clip.metadata()
    notes = meta["notes"]
    assert meta["genre"] == "pop" and meta["mode"] == "major" and meta["instruments"]["melody"] == "piano"
    assert all(0 <= n["onset"] < n["offset"] <= meta["duration"] for n in notes)
    melody = [n for n in notes if n["track"] == "melody"]
    tonic = meta["key"].split()[0]
    scale = {(librosa.note_to_midi(tonic + "4") + s) % 12 for s in MODES["major"]}
    assert melody and all(n["pitch"] % 12 in scale for n in melody)
    assert len(meta["chords"]) == len(meta["beat_times"])
    assert all(":" in c for _, c in meta["chords"])
    spb = 60 / meta["tempo"]
    assert np.allclose(np.diff(meta["beat_times"]), spb, atol=1e-4)
    assert "piano" in pop_clip.captions[0] and "pop" in pop_clip.captions[0] and len(set(pop_clip.captions)) >= 4


def test_every_genre_and_instrument_renders():
    assert len(INSTRUMENTS) >= 8 and len(GENRES) >= 5
    for i, g in enumerate(GENRES):
        clip = make_clip(100 + i, genre=g)
        assert np.max(np.abs(clip.audio)) > 0.05 and clip.score.beats_per_bar == GENRES[g].beats_per_bar
    assert "drums" not in make_clip(1, genre="classical").rendering.stems


def _timbre(inst: str, pitch: int, seed: int) -> np.ndarray:
    """Pitch-invariant timbre descriptor: levels of harmonics 1-8 (dB) and the loudness envelope."""
    sr = 16000
    y = render_note(INSTRUMENTS[inst], pitch, 0.6, 0.8, sr, np.random.default_rng(seed))
    f0 = midi_to_hz(pitch)
    seg = y[int(0.15 * sr) : int(0.55 * sr)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / sr)
    harm = np.array([spec[np.abs(freqs - k * f0) < 0.3 * f0].max() for k in range(1, 9)])
    harm_db = 20 * np.log10(harm / harm.max() + 1e-4) / 40
    frames = np.sqrt(np.mean(y[: int(0.6 * sr)].reshape(12, -1) ** 2, axis=1))
    return np.concatenate([harm_db, 2 * frames / frames.max()])


def test_instrument_timbres_are_distinguishable_by_nearest_neighbour():
    names = [n for n in INSTRUMENTS if n != "bass"]
    train = {n: _timbre(n, 64, 0) for n in names}
    hits = 0
    for n in names:
        probe = _timbre(n, 69, 1)  # another pitch and noise seed
        guess = min(train, key=lambda m: np.linalg.norm(train[m] - probe))
        hits += guess == n
    assert hits == len(names)


def test_instrument_edit_keeps_every_note():
    clip = make_clip(5, genre="pop", lead="piano")
    pair = instrument_edit(clip, "flute")
    src, tgt = clip.metadata()["notes"], pair.target.metadata()["notes"]
    strip = lambda ns: [(n["onset"], n["offset"], n["pitch"], n["track"]) for n in ns]  # noqa: E731
    assert strip(src) == strip(tgt)
    assert {n["instrument"] for n in tgt if n["track"] == "melody"} == {"flute"}
    assert "flute" in pair.target_prompt and "piano" in pair.source_prompt
    assert not np.allclose(pair.source.audio, pair.target.audio)
    with pytest.raises(ConfigError, match="already"):
        instrument_edit(clip, "piano")


def test_mood_edit_changes_mode_keeps_rhythm_in_beats():
    clip = make_clip(6, genre="pop", mood="happy")
    pair = mood_edit(clip)
    assert pair.target.plan.mood == "sad" and pair.target.score.plan.mode == "minor"
    src = [n for n in clip.score.notes if n.track == "melody"]
    tgt = [n for n in pair.target.score.notes if n.track == "melody"]
    k = min(len(src), len(tgt))  # a slower tempo fits fewer notes into the same 5 s
    assert k >= 4
    ratio = pair.target.score.tempo / clip.score.tempo  # seconds scale with 1 / tempo
    assert np.allclose([n.onset * ratio for n in tgt[:k]], [n.onset for n in src[:k]], atol=1e-3)
    assert any(a.pitch != b.pitch for a, b in zip(src[:k], tgt[:k]))  # thirds / sixths / sevenths lowered
    assert all(abs(a.pitch - b.pitch) <= 1 for a, b in zip(src[:k], tgt[:k]))


def test_genre_edit_keeps_melody_changes_accompaniment():
    clip = make_clip(7, genre="pop")
    pair = genre_edit(clip, "rock")
    src = [n.pitch for n in clip.score.track_notes("melody")]
    tgt = [n.pitch for n in pair.target.score.track_notes("melody")]
    k = min(len(src), len(tgt))
    assert k >= 4 and src[:k] == tgt[:k] and pair.target.score.genre == "rock"
    assert [n.pitch for n in clip.score.track_notes("bass")] != [n.pitch for n in pair.target.score.track_notes("bass")]
    with pytest.raises(ConfigError, match="meter"):
        genre_edit(clip, "waltz")
    with pytest.raises(UnknownNameError, match="Did you mean 'rock'"):
        genre_edit(clip, "rokc")


def test_a_waltz_has_no_genre_edit_and_held_out_pairs_skip_it():
    from musicprobe.bench.musrec import heldout_pairs
    from musicprobe.synth import edit_choices, random_edit

    waltz = make_clip(7, genre="waltz")
    assert edit_choices(waltz, "genre") == [] and "waltz" not in edit_choices(make_clip(7, genre="pop"), "genre")
    with pytest.raises(ConfigError, match="meter of 'waltz'"):
        random_edit(waltz, "genre", np.random.default_rng(0))
    pairs = heldout_pairs(6, kinds=("instrument", "genre"))
    assert [p.kind for p in pairs] == ["instrument", "genre"] * 3
    assert all(p.change["from"] != p.change["to"] and "waltz" not in (p.change["from"], p.change["to"])
               for p in pairs if p.kind == "genre")


def test_stem_tasks_are_exact(pop_clip):
    tasks = stem_tasks(pop_clip, "melody", new_instrument="flute")
    stems = pop_clip.rendering.stems
    assert np.allclose(tasks["extract"].target, stems["melody"])
    assert np.allclose(tasks["remove"].target + tasks["extract"].target, pop_clip.audio, atol=1e-6)
    assert np.allclose(tasks["add"].source, tasks["remove"].target)
    diff = tasks["replace"].target - tasks["remove"].target  # only the melody changed
    assert not np.allclose(diff, stems["melody"]) and np.max(np.abs(diff)) > 0.01
    assert tasks["replace"].instruction == "replace the piano with flute"
    assert "drums" in stem_tasks(pop_clip, "drums")["remove"].instruction
    assert "replace" not in stem_tasks(pop_clip, "drums")


def test_write_corpus_is_identical_for_any_worker_count(tmp_path):
    m1 = json.loads(write_corpus(tmp_path / "a", 4, seed=9, edits=3).read_text())
    m2 = json.loads(write_corpus(tmp_path / "b", 4, seed=9, edits=3, workers=2).read_text())
    assert [c["sha256"] for c in m1["clips"]] == [c["sha256"] for c in m2["clips"]]
    assert [p["kind"] for p in m1["edit_pairs"]] == ["instrument", "genre", "mood"]
    assert (tmp_path / "a" / m1["edit_pairs"][0]["target"]).is_file()
    with pytest.raises(ConfigError):
        write_corpus(tmp_path / "c", 0)
