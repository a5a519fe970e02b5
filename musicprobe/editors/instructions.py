"""What an InstructME instruction asks: its operation and arguments, or a clear error naming what exists.

The editor's model reads the instruction as free text, but it was trained on five operations over the corpus's
instruments and genres; an instruction outside them gets a :class:`ConfigError` instead of a silent, meaningless
edit. Every phrasing of :func:`musicprobe.synth.instruct.phrasings` parses back to its operation and arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from musicprobe.errors import ConfigError
from musicprobe.synth.genres import GENRES
from musicprobe.synth.instruct import OPERATIONS
from musicprobe.synth.instruments import INSTRUMENTS

EXAMPLES = ("add drums", "remove the bass", "extract the piano", "replace the piano with flute", "remix it as jazz")
_VERBS = (
    ("replace", r"^(replace|swap|play)\b"),
    ("remix", r"^(remix|turn it into|make (a|an) .* remix)\b"),
    ("extract", r"^(extract|isolate|keep only)\b"),
    ("remove", r"^(remove|take out|mute)\b"),
    ("add", r"^(add|layer in|put)\b"),
)
_ALIASES = {"drum": "drums"}
_NAMES = sorted(set(INSTRUMENTS) | {"drums"} | set(_ALIASES), key=len, reverse=True)


@dataclass(frozen=True)
class Instruction:
    """A parsed instruction: ``op`` and the instruments / genre it names (in the order they appear)."""

    text: str
    op: str
    instruments: tuple[str, ...] = ()
    genre: str = ""
    extra: dict = field(default_factory=dict)


def _named(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    rest = text
    for name in _NAMES:
        for m in re.finditer(rf"\b{re.escape(name)}\b", rest):
            found.append((m.start(), name))
        rest = re.sub(rf"\b{re.escape(name)}\b", " " * len(name), rest)
    return [_ALIASES.get(n, n) for _, n in sorted(found)]


def parse_instruction(text: str) -> Instruction:
    """The operation and arguments of ``text`` (a :class:`ConfigError` naming the trained operations otherwise)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"the instruction is empty: try one of {', '.join(repr(e) for e in EXAMPLES)}")
    t = " ".join(text.lower().strip().rstrip(".!").split())
    op = next((name for name, pattern in _VERBS if re.search(pattern, t)), None)
    if op is None:
        raise ConfigError(
            f"unknown instruction {text!r}: mini-InstructME was trained on {' / '.join(OPERATIONS)} "
            f"(e.g. {', '.join(repr(e) for e in EXAMPLES)})"
        )
    if op == "remix":
        genres = [g for g in GENRES if re.search(rf"\b{re.escape(g)}\b", t)]
        if not genres:
            raise ConfigError(f"remix into which genre? {text!r} names none of {', '.join(GENRES)}")
        return Instruction(text, op, genre=genres[0])
    names = _named(t)
    need = 2 if op == "replace" else 1
    if len(names) < need:
        what = "an instrument to replace and one to replace it with" if op == "replace" else "an instrument"
        known = ", ".join(sorted(set(_NAMES) - set(_ALIASES)))
        raise ConfigError(f"{op}: {text!r} does not name {what}; known: {known}")
    return Instruction(text, op, tuple(names[:need]))
