"""Composition: a :class:`Plan` (the musical decisions) realised into a :class:`Score` (timed notes and chords).

Edits re-realise a changed plan, so an edit pair shares every decision it does not change: an instrument edit
keeps every note, a mood edit keeps the melodic contour (scale degrees) and rhythm, a genre edit keeps the melody
and the chord progression while accompaniment, bass, drums and tempo follow the new genre.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from musicprobe.errors import ConfigError, check_known
from musicprobe.synth.genres import GENRES, MOODS, get_genre
from musicprobe.synth.instruments import INSTRUMENTS
from musicprobe.synth.theory import (
    PITCH_CLASSES,
    chord_label,
    chord_pitches,
    key_name,
    scale_pitch,
)

DRUM_PITCHES = {"kick": 36, "snare": 38, "hihat": 42, "open_hihat": 46, "ride": 51}
TRACKS = ("melody", "chords", "bass", "drums")


@dataclass(frozen=True)
class Note:
    """A note in seconds. ``instrument`` is a pitched instrument name or a drum name on the drums track."""

    onset: float
    offset: float
    pitch: int
    velocity: float
    instrument: str
    track: str

    def to_dict(self) -> dict:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class BeatNote:
    """A melody note in beats (positions are straight; swing is applied when timing)."""

    start: float
    length: float
    degree: int  # scale degree relative to the tonic in octave 4
    velocity: float


@dataclass(frozen=True)
class Plan:
    """Every musical decision of a clip. ``realize(plan)`` is deterministic."""

    seed: int
    genre: str
    mood: str
    tonic_pc: int
    tempo_pos: float
    melody: tuple[BeatNote, ...]
    progression: tuple[int, ...]
    instruments: dict = field(default_factory=dict)  # track -> instrument name ("drums" -> "drums")
    duration: float = 5.0

    @property
    def mode(self) -> str:
        return MOODS[self.mood][0]

    @property
    def tempo(self) -> float:
        lo, hi = get_genre(self.genre).tempo
        mlo, mhi = MOODS[self.mood][1]
        return round(lo + (hi - lo) * (mlo + (mhi - mlo) * self.tempo_pos), 2)

    def with_changes(self, **kw) -> Plan:
        return replace(self, **kw)


@dataclass
class Score:
    """Timed notes, chords per beat and the clip's descriptors."""

    plan: Plan
    notes: list[Note]
    chords: list[tuple[float, str]]  # (beat time in s, mir_eval label)
    beat_times: list[float]
    tempo: float
    beats_per_bar: int
    key: str
    duration: float

    @property
    def genre(self) -> str:
        return self.plan.genre

    @property
    def mood(self) -> str:
        return self.plan.mood

    @property
    def instruments(self) -> dict:
        return dict(self.plan.instruments)

    def track_notes(self, track: str) -> list[Note]:
        return [n for n in self.notes if n.track == track]

    def pitched_notes(self) -> list[Note]:
        return [n for n in self.notes if n.track != "drums"]

    def to_dict(self) -> dict:
        return {
            "seed": self.plan.seed,
            "genre": self.genre,
            "mood": self.mood,
            "key": self.key,
            "mode": self.plan.mode,
            "tempo": self.tempo,
            "beats_per_bar": self.beats_per_bar,
            "duration": self.duration,
            "instruments": self.instruments,
            "chords": [[round(t, 5), c] for t, c in self.chords],
            "beat_times": [round(t, 5) for t in self.beat_times],
            "notes": [n.to_dict() for n in self.notes],
        }


def _swing(beat: float, ratio: float) -> float:
    whole = math.floor(beat)
    frac = beat - whole
    if ratio == 0.5:
        return beat
    return whole + (frac * 2 * ratio if frac <= 0.5 else ratio + (frac - 0.5) * 2 * (1 - ratio))


def _compose_melody(
    rng: np.random.Generator, genre_name: str, progression: tuple[int, ...], n_bars: int, mode: str
) -> tuple[BeatNote, ...]:
    genre = get_genre(genre_name)
    bpb = genre.beats_per_bar
    notes: list[BeatNote] = []
    degree = int(rng.integers(2, 6))
    for bar in range(n_bars):
        cells = [c for c in genre.melody_cells if abs(sum(c) - bpb) < 1e-9]
        cell = cells[int(rng.integers(len(cells)))]
        chord_root = progression[bar % len(progression)]
        chord_tones = {(chord_root + i) % 7 for i in (0, 2, 4)}
        pos = 0.0
        for length in cell:
            strong = float(pos).is_integer() and int(pos) % 2 == 0
            step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
            cand = int(np.clip(degree + step, 0, 11))
            if strong:  # land on the nearest chord tone
                options = [d for d in range(0, 12) if d % 7 in chord_tones]
                cand = min(options, key=lambda d: (abs(d - cand), d))
            degree = cand
            if rng.random() > 0.08 or strong:
                vel = float(np.round(0.75 + 0.2 * strong + rng.uniform(-0.05, 0.05), 3))
                notes.append(BeatNote(bar * bpb + pos, float(length), degree, vel))
            pos += length
    return tuple(notes)


def make_plan(
    seed: int,
    *,
    genre: str | None = None,
    mood: str | None = None,
    lead: str | None = None,
    accomp: str | None = None,
    key: str | None = None,
    duration: float = 5.0,
    drums: bool | None = None,
) -> Plan:
    """Draw a plan from ``seed``; any argument given fixes that decision."""
    if not 1.0 <= duration <= 60.0:
        raise ConfigError(f"duration must be within 1..60 s, got {duration}")
    rng = np.random.default_rng(seed)
    genre = check_known("genre", genre, GENRES) if genre else str(rng.choice(list(GENRES)))
    mood = check_known("mood", mood, MOODS) if mood else str(rng.choice(list(MOODS)))
    g = get_genre(genre)
    lead = check_known("instrument", lead, INSTRUMENTS) if lead else str(rng.choice(g.lead_choices))
    comp_options = [c for c in g.comp_choices if c != lead] or [c for c in ("piano", "guitar") if c != lead]
    accomp = check_known("instrument", accomp, INSTRUMENTS) if accomp else str(rng.choice(comp_options))
    tonic_pc = PITCH_CLASSES.index(key) if key else int(rng.integers(12))
    if key and key not in PITCH_CLASSES:
        check_known("key", key, PITCH_CLASSES)
    tempo_pos = float(rng.uniform(0, 1))
    progression = g.progressions[int(rng.integers(len(g.progressions)))]
    plan = Plan(seed, genre, mood, tonic_pc, tempo_pos, (), progression, {}, duration)
    n_bars = math.ceil(duration * plan.tempo / 60 / g.beats_per_bar) + 1
    melody = _compose_melody(rng, genre, progression, n_bars, plan.mode)
    instruments = {"melody": lead, "chords": accomp, "bass": "bass"}
    if drums if drums is not None else bool(g.drums):
        instruments["drums"] = "drums"
    return plan.with_changes(melody=melody, instruments=instruments)


def realize(plan: Plan) -> Score:
    """Turn a plan into timed notes, chord labels per beat and beat times (deterministic)."""
    g = get_genre(plan.genre)
    mode, tempo, bpb = plan.mode, plan.tempo, g.beats_per_bar
    spb = 60.0 / tempo
    tonic4 = 60 + plan.tonic_pc if plan.tonic_pc < 7 else 48 + plan.tonic_pc  # tonic between F#3 and F#4
    n_beats = int(math.ceil(plan.duration / spb))
    n_bars = math.ceil(n_beats / bpb) + 1
    rng = np.random.default_rng(plan.seed + 7919)  # humanisation only
    t = lambda beat: _swing(beat, g.swing) * spb  # noqa: E731
    notes: list[Note] = []

    def add(onset_b: float, length_b: float, pitch: int, vel: float, inst: str, track: str) -> None:
        on, off = t(onset_b), t(onset_b + length_b)
        if on < plan.duration - 0.05:
            notes.append(Note(round(on, 5), round(min(off, plan.duration), 5), int(pitch), float(vel), inst, track))

    # melody (pitches follow the mode of the mood: an edit of mood keeps the degrees)
    lead = plan.instruments["melody"]
    for bn in plan.melody:
        pitch = scale_pitch(tonic4 if tonic4 >= 60 else tonic4 + 12, mode, bn.degree)
        add(bn.start, bn.length * 0.95, pitch, bn.velocity, lead, "melody")
    chords: list[tuple[float, str]] = []
    accomp = plan.instruments["chords"]
    for bar in range(n_bars):
        degree = plan.progression[bar % len(plan.progression)]
        base = chord_pitches(tonic4 - 12, mode, degree, seventh=g.sevenths)
        voicing = [p + 12 if p < 52 else p for p in base]
        label = chord_label(plan.tonic_pc, mode, degree)
        for beat in range(bpb):
            bt = bar * bpb + beat
            if t(bt) < plan.duration:
                chords.append((round(t(bt), 5), label))
        for i, (pos, length) in enumerate(g.comp):
            vel = 0.5 + rng.uniform(-0.04, 0.04)
            if g.comp_style == "arpeggio":
                seq = voicing + voicing[1:-1][::-1]
                add(bar * bpb + pos, length, seq[i % len(seq)], vel, accomp, "chords")
            elif g.comp_style == "power":
                for p in (
                    base[0] + 12 if base[0] < 48 else base[0],
                    base[0] + 19 if base[0] < 48 else base[0] + 7,
                ):
                    add(bar * bpb + pos, length, p, vel, accomp, "chords")
            else:
                for p in voicing:
                    add(bar * bpb + pos, length, p, vel * 0.8, accomp, "chords")
        root = scale_pitch(tonic4 - 24, mode, degree)
        while root < 36:
            root += 12
        for pos, length, offset in g.bass:
            if pos >= bpb:
                continue
            pitch = root + {0: 0, 2: 3 if mode == "minor" else 4, 4: 7, 5: 9, 7: 12}.get(offset, 0)
            add(bar * bpb + pos, length, pitch, 0.8 + rng.uniform(-0.05, 0.05), "bass", "bass")
        if "drums" in plan.instruments:
            for drum, hits in g.drums.items():
                for pos, vel in hits:
                    add(bar * bpb + pos, 0.1, DRUM_PITCHES[drum], vel, drum, "drums")
    notes.sort(key=lambda n: (n.onset, n.track, n.pitch))
    beat_times = [round(t(b), 5) for b in range(n_beats) if t(b) < plan.duration]
    return Score(plan, notes, chords, beat_times, tempo, bpb, key_name(plan.tonic_pc, mode), plan.duration)


def change_mood(plan: Plan, mood: str) -> Plan:
    """Same melody degrees and rhythm; the mode and tempo follow ``mood``."""
    check_known("mood", mood, MOODS)
    return plan.with_changes(mood=mood)


def change_genre(plan: Plan, genre: str, accomp: str | None = None) -> Plan:
    """Same melody and progression; accompaniment, bass, drums and tempo follow ``genre`` (same meter only)."""
    g_new, g_old = get_genre(genre), get_genre(plan.genre)
    if g_new.beats_per_bar != g_old.beats_per_bar:
        raise ConfigError(
            f"cannot move {plan.genre!r} ({g_old.beats_per_bar}/4) to {genre!r} ({g_new.beats_per_bar}/4): "
            "genre edits keep the melody's bars, so the meters must match"
        )
    inst = dict(plan.instruments)
    lead = inst["melody"]
    inst["chords"] = accomp or next((c for c in g_new.comp_choices if c != lead), "piano")
    if g_new.drums:
        inst["drums"] = "drums"
    else:
        inst.pop("drums", None)
    return plan.with_changes(genre=genre, instruments=inst)


def change_instrument(plan: Plan, track: str, instrument: str) -> Plan:
    check_known("track", track, [k for k in plan.instruments if k != "drums"])
    check_known("instrument", instrument, INSTRUMENTS)
    inst = dict(plan.instruments)
    inst[track] = instrument
    return plan.with_changes(instruments=inst)
