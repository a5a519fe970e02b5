"""One hook system for every supported architecture: a Probe, interventions as objects, schedules, caches.

Layout: :mod:`.adapters` (canonical names per family), :mod:`.probe` (names, registered interventions, per-call
dispatch), :mod:`.install` (how hooks get in and out), :mod:`.interventions` (capture, record, inject, share,
edit, bypass), :mod:`.rows` (CFG branch and prompt rows of a batch), :mod:`.schedule` (injection schedules),
:mod:`.cache` (stores), :mod:`.attention` (the softmax as SDPA defines it).
"""

from musicprobe.hooks.adapters import ADAPTERS, Adapter, Point, adapter_for
from musicprobe.hooks.attention import attention_probs
from musicprobe.hooks.cache import ActivationCache, CacheKey, KVStore
from musicprobe.hooks.interventions import (
    AttnCall,
    AttnTensors,
    Bypass,
    Capture,
    EditAttention,
    InjectKV,
    Intervention,
    RecordKV,
    ShareKV,
)
from musicprobe.hooks.probe import Probe, RunState, Session
from musicprobe.hooks.rows import RowRoles
from musicprobe.hooks.schedule import CURVES, InjectionSchedule, ScheduleSpec

__all__ = [
    "ADAPTERS",
    "ActivationCache",
    "Adapter",
    "AttnCall",
    "AttnTensors",
    "Bypass",
    "CURVES",
    "CacheKey",
    "Capture",
    "EditAttention",
    "InjectKV",
    "InjectionSchedule",
    "Intervention",
    "KVStore",
    "Point",
    "Probe",
    "RecordKV",
    "RowRoles",
    "RunState",
    "ScheduleSpec",
    "Session",
    "ShareKV",
    "adapter_for",
    "attention_probs",
]
