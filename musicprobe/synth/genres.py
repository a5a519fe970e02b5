"""Genres defined by tempo, meter, swing, harmony, accompaniment/bass/drum patterns and instrumentation.

Patterns are positions in beats within one bar. Drum hits are ``(beat, velocity)``; comping hits are
``(beat, length_in_beats)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicprobe.errors import check_known


@dataclass(frozen=True)
class Genre:
    name: str
    tempo: tuple[float, float]
    beats_per_bar: int
    progressions: tuple[tuple[int, ...], ...]  # scale degrees, one chord per bar (0 = I)
    comp: tuple[tuple[float, float], ...]
    comp_style: str  # "block" | "arpeggio" | "power"
    bass: tuple[
        tuple[float, float, int], ...
    ]  # (beat, length, degree offset from chord root: 0 root, 4 fifth, 7 octave)
    drums: dict[str, tuple[tuple[float, float], ...]]
    lead_choices: tuple[str, ...]
    comp_choices: tuple[str, ...]
    swing: float = 0.5  # position of the off-beat eighth within the beat (0.5 = straight, 0.667 = swing)
    sevenths: bool = False
    melody_cells: tuple[tuple[float, ...], ...] = ((1, 1, 1, 1), (2, 1, 1), (1.5, 0.5, 2), (1, 0.5, 0.5, 2))
    description: str = ""


_EIGHTHS = tuple(i * 0.5 for i in range(8))
_POP_CELLS = ((1, 1, 1, 1), (2, 1, 1), (1.5, 0.5, 2), (1, 0.5, 0.5, 2), (0.5, 0.5, 1, 2))

GENRES: dict[str, Genre] = {
    g.name: g
    for g in [
        Genre(
            "pop",
            (96, 120),
            4,
            ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4)),
            comp=((0, 2), (2, 2)),
            comp_style="block",
            bass=((0, 1, 0), (1.5, 0.5, 0), (2, 1, 0), (3, 1, 4)),
            drums={
                "kick": ((0, 1.0), (2.5, 0.7)),
                "snare": ((1, 0.9), (3, 0.9)),
                "hihat": tuple((b, 0.5) for b in _EIGHTHS),
            },
            lead_choices=("piano", "synth lead", "guitar", "flute", "violin"),
            comp_choices=("piano", "guitar"),
            melody_cells=_POP_CELLS,
            description="steady backbeat, I-V-vi-IV progressions",
        ),
        Genre(
            "rock",
            (120, 144),
            4,
            ((0, 6, 3, 0), (0, 3, 4, 3), (0, 4, 3, 3)),
            comp=tuple((b, 0.45) for b in _EIGHTHS),
            comp_style="power",
            bass=tuple((b, 0.45, 0) for b in _EIGHTHS),
            drums={
                "kick": ((0, 1.0), (1.5, 0.8), (2, 1.0)),
                "snare": ((1, 1.0), (3, 1.0)),
                "hihat": tuple((b, 0.6) for b in _EIGHTHS),
            },
            lead_choices=("guitar", "synth lead", "organ", "violin"),
            comp_choices=("guitar", "organ"),
            description="driving eighth-note power chords, loud backbeat",
        ),
        Genre(
            "jazz",
            (112, 150),
            4,
            ((1, 4, 0, 0), (1, 4, 0, 5), (0, 5, 1, 4)),
            comp=((1.5, 0.5), (3.5, 0.5)),
            comp_style="block",
            sevenths=True,
            swing=0.667,
            bass=((0, 1, 0), (1, 1, 2), (2, 1, 4), (3, 1, 5)),
            drums={
                "ride": ((0, 0.7), (1, 0.8), (1.5, 0.5), (2, 0.7), (3, 0.8), (3.5, 0.5)),
                "hihat": ((1, 0.4), (3, 0.4)),
                "kick": ((0, 0.3),),
            },
            lead_choices=("trumpet", "piano", "flute", "guitar"),
            comp_choices=("piano", "guitar"),
            melody_cells=((1, 0.5, 0.5, 1, 1), (0.5, 0.5, 0.5, 0.5, 2), (1.5, 0.5, 1, 1)),
            description="swung eighths, ii-V-I with sevenths, walking bass and ride cymbal",
        ),
        Genre(
            "reggae",
            (70, 90),
            4,
            ((0, 3, 0, 4), (0, 5, 3, 4), (5, 4, 0, 0)),
            comp=((0.5, 0.3), (1.5, 0.3), (2.5, 0.3), (3.5, 0.3)),
            comp_style="block",
            bass=((0, 1.5, 0), (2, 0.5, 4), (2.5, 1, 7)),
            drums={"kick": ((2, 1.0),), "snare": ((2, 0.8),), "hihat": tuple((b, 0.4) for b in _EIGHTHS)},
            lead_choices=("organ", "guitar", "trumpet", "synth lead"),
            comp_choices=("guitar", "organ"),
            description="off-beat skank chords and one-drop drums",
        ),
        Genre(
            "waltz",
            (96, 144),
            3,
            ((0, 4, 4, 0), (0, 3, 4, 0), (0, 5, 1, 4)),
            comp=((1, 0.9), (2, 0.9)),
            comp_style="block",
            bass=((0, 1, 0),),
            drums={"kick": ((0, 0.5),), "hihat": ((1, 0.3), (2, 0.3))},
            lead_choices=("violin", "flute", "piano"),
            comp_choices=("piano", "guitar"),
            melody_cells=((1, 1, 1), (2, 1), (1.5, 0.5, 1), (3,)),
            description="3/4 meter, oom-pah-pah accompaniment",
        ),
        Genre(
            "electronic",
            (120, 132),
            4,
            ((0, 0, 5, 3), (5, 3, 0, 4), (0, 6, 5, 6)),
            comp=tuple((i * 0.25, 0.2) for i in range(16)),
            comp_style="arpeggio",
            bass=tuple((b, 0.4, 0) for b in (0.5, 1.5, 2.5, 3.5)),
            drums={
                "kick": ((0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)),
                "snare": ((1, 0.6), (3, 0.6)),
                "open_hihat": ((0.5, 0.5), (1.5, 0.5), (2.5, 0.5), (3.5, 0.5)),
            },
            lead_choices=("synth lead", "piano", "organ"),
            comp_choices=("synth lead", "organ"),
            description="four-on-the-floor kick, off-beat hats, sixteenth-note arpeggios",
        ),
        Genre(
            "classical",
            (60, 96),
            4,
            ((0, 3, 4, 0), (0, 5, 1, 4), (0, 4, 5, 2)),
            comp=tuple((i * 0.5, 0.5) for i in range(8)),
            comp_style="arpeggio",
            bass=((0, 2, 0), (2, 2, 0)),
            drums={},
            lead_choices=("violin", "flute", "piano"),
            comp_choices=("piano", "violin"),
            melody_cells=((1, 1, 1, 1), (2, 2), (1.5, 0.5, 1, 1), (0.5, 0.5, 1, 2)),
            description="no drums, Alberti-style arpeggios, cadential progressions",
        ),
    ]
}

MOODS: dict[str, tuple[str, tuple[float, float]]] = {
    # mood -> (mode, position of the tempo within the genre's range)
    "happy": ("major", (0.65, 1.0)),
    "calm": ("major", (0.0, 0.3)),
    "sad": ("minor", (0.0, 0.3)),
    "dark": ("minor", (0.65, 1.0)),
}
MOOD_OPPOSITE = {"happy": "sad", "sad": "happy", "calm": "dark", "dark": "calm"}


def get_genre(name: str) -> Genre:
    return GENRES[check_known("genre", name, GENRES)]
