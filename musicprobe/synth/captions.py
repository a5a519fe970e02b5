"""Natural-language captions of a score in several phrasings, plus edit instructions."""

from __future__ import annotations

import numpy as np

from musicprobe.synth.score import Score

_TEMPLATES = (
    "a {mood} {genre} piece with {lead} playing the melody",
    "{lead} melody over {accomp} chords, {genre} style",
    "{genre} music in {key} at {tempo} bpm featuring {lead}, {accomp} and bass{drums_and}",
    "a {mood} tune played by {lead_a}",
    "{lead}, {genre}, {mood}",
)
_MOOD_WORDS = {"happy": "happy", "calm": "calm", "sad": "sad", "dark": "dark"}


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def captions(score: Score) -> list[str]:
    """All caption phrasings of ``score`` (the first is the canonical one used as a default prompt)."""
    inst = score.instruments
    fields = {
        "mood": _MOOD_WORDS[score.mood],
        "genre": score.genre,
        "lead": inst["melody"],
        "lead_a": _article(inst["melody"]),
        "accomp": inst["chords"],
        "key": score.key,
        "tempo": int(round(score.tempo)),
        "drums_and": " with drums" if "drums" in inst else "",
    }
    return [t.format(**fields) for t in _TEMPLATES]


def pick_caption(score: Score, seed: int) -> str:
    options = captions(score)
    return options[int(np.random.default_rng(seed).integers(len(options)))]


def instruction(kind: str, *, role: str = "", instrument: str = "", new_instrument: str = "", genre: str = "") -> str:
    """InstructME-style instruction text for an edit of ``kind``."""
    templates = {
        "add": lambda: f"add {_article(instrument)} {role} track",
        "remove": lambda: f"remove the {instrument}",
        "extract": lambda: f"extract the {instrument}",
        "replace": lambda: f"replace the {instrument} with {new_instrument}",
        "remix": lambda: f"remix it as {genre}",
    }
    return templates[kind]()
