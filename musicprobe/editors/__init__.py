"""Editors: one module per method over shared parts (editor base, configs, sources, the sampler layer, hooks).

Where a new method goes: a module here with a config (a subclass of :class:`EditConfig`) and an editor (a subclass
of :class:`Editor` implementing ``record_source`` and ``edit_from`` and ending in ``Editor.finish``), built from
:mod:`musicprobe.inversion` (``Sampler``), :mod:`musicprobe.hooks` (interventions) and :mod:`.sources`.
"""

from musicprobe.editors.base import Editor, provenance, resolve_clap
from musicprobe.editors.config import EditConfig, JsonConfig
from musicprobe.editors.ddim_edit import DDIMEdit, DDIMEditConfig
from musicprobe.editors.musickv import MusicKV, MusicKVConfig, musickv_schedule, musickv_tokens
from musicprobe.editors.musrec import INJECT_KINDS, MusRec, MusRecConfig
from musicprobe.editors.result import EditResult, edit_metrics
from musicprobe.editors.sdedit import SDEdit, SDEditConfig
from musicprobe.editors.sources import (
    ALIGNMENTS,
    RecordedSource,
    denoise_injecting,
    generate_and_record,
    invert_and_record,
)
from musicprobe.editors.steermusic import DDSTrace, SteerMusic, SteerMusicConfig
from musicprobe.editors.zeta import ZETA, ZETAConfig

__all__ = [
    "ALIGNMENTS",
    "DDIMEdit",
    "DDIMEditConfig",
    "DDSTrace",
    "INJECT_KINDS",
    "EditConfig",
    "EditResult",
    "Editor",
    "JsonConfig",
    "MusRec",
    "MusRecConfig",
    "MusicKV",
    "MusicKVConfig",
    "RecordedSource",
    "SDEdit",
    "SDEditConfig",
    "SteerMusic",
    "SteerMusicConfig",
    "ZETA",
    "ZETAConfig",
    "denoise_injecting",
    "edit_metrics",
    "generate_and_record",
    "invert_and_record",
    "musickv_schedule",
    "musickv_tokens",
    "provenance",
    "resolve_clap",
]
