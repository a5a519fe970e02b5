"""Exceptions raised by musicprobe. Every message names what was wrong and, where possible, how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MusicProbeError(Exception):
    """Base class of every musicprobe error."""


class AudioError(MusicProbeError, ValueError):
    """The audio given is unusable as it is (NaN, silence, wrong shape, rate or length, unreadable file)."""


class ConfigError(MusicProbeError, ValueError):
    """A configuration value is outside its valid range or of the wrong kind."""


class UnknownNameError(MusicProbeError, KeyError):
    """A name (layer, hook point, instrument, genre, metric) is not known; the message suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = list(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        sample = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        self.kind, self.name, self.suggestions = kind, name, close
        super().__init__(f"Unknown {kind} {name!r}.{hint} Known: {sample}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


def check_known(kind: str, name: str, known: Iterable[str]) -> str:
    """Return ``name`` if it is in ``known``, else raise :class:`UnknownNameError` with suggestions."""
    known = list(known)
    if name not in known:
        raise UnknownNameError(kind, name, known)
    return name


def check_fields(cls: type, d: dict) -> None:
    """Refuse keys of ``d`` that are not fields of dataclass ``cls``, suggesting the closest field."""
    known = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(d) - set(known))
    if unknown:
        hints = [
            f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, known, 1)) else repr(u)
            for u in unknown
        ]
        raise ConfigError(f"{cls.__name__}: unknown fields {', '.join(hints)}; known: {', '.join(known)}")
