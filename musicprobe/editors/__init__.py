"""Editors built from shared parts: an inverter, the hook system's injection, and a schedule."""

from musicprobe.editors.flow_injection import (
    ALIGNMENTS,
    InvertedSource,
    denoise,
    generate_and_record,
    invert_and_record,
    time_key,
)
from musicprobe.editors.musickv import MusicKV, MusicKVConfig
from musicprobe.editors.musrec import INJECT_KINDS, MusRec, MusRecConfig
from musicprobe.editors.result import EditResult, edit_metrics

__all__ = [
    "ALIGNMENTS",
    "INJECT_KINDS",
    "EditResult",
    "InvertedSource",
    "MusRec",
    "MusicKV",
    "MusicKVConfig",
    "MusRecConfig",
    "denoise",
    "edit_metrics",
    "generate_and_record",
    "invert_and_record",
    "time_key",
]
