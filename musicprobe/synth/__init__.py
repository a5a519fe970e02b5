"""Deterministic synthetic music corpus with exact ground truth (notes, chords, stems, captions, edit targets)."""

from musicprobe.synth.corpus import (
    EDIT_KINDS,
    Clip,
    EditPair,
    StemTask,
    clip_from_plan,
    edit_choices,
    genre_edit,
    instrument_edit,
    make_clip,
    mood_edit,
    random_edit,
    stem_tasks,
    write_corpus,
)
from musicprobe.synth.genres import GENRES, MOODS
from musicprobe.synth.instruments import DRUMS, INSTRUMENTS
from musicprobe.synth.score import Note, Plan, Score, make_plan, realize

__all__ = [
    "DRUMS",
    "EDIT_KINDS",
    "GENRES",
    "INSTRUMENTS",
    "MOODS",
    "Clip",
    "EditPair",
    "Note",
    "Plan",
    "Score",
    "StemTask",
    "clip_from_plan",
    "genre_edit",
    "instrument_edit",
    "make_clip",
    "make_plan",
    "mood_edit",
    "edit_choices",
    "random_edit",
    "realize",
    "stem_tasks",
    "write_corpus",
]
