"""One hook system for every supported architecture (see :mod:`musicprobe.hooks.engine` and ``adapters``)."""

from musicprobe.hooks.adapters import ADAPTERS, Adapter, Point, adapter_for
from musicprobe.hooks.cache import ActivationCache, CacheKey, KVStore
from musicprobe.hooks.engine import AttnCall, Probe, RunState, attention_probs
from musicprobe.hooks.schedule import CURVES, InjectionSchedule

__all__ = [
    "ADAPTERS",
    "ActivationCache",
    "Adapter",
    "AttnCall",
    "CURVES",
    "CacheKey",
    "InjectionSchedule",
    "KVStore",
    "Point",
    "Probe",
    "RunState",
    "adapter_for",
    "attention_probs",
]
