"""InstructME training and test data: instruction triplets (source, instruction, exact target) and multi-round chains.

A :class:`StemState` is a set of rendered stems of one plan, at one gain; every operation maps a state to a new
state, so a chain of instructions has an exact target after every round:

* ``add`` a track (the source lacks it; the target is the full mix), ``remove`` a track, ``extract`` a track (only
  it remains), ``replace`` a track's instrument (the same notes re-rendered, at the source's gain), ``remix`` into
  another genre (same melody, progression and, where the new genre's range allows, tempo; the present tracks are
  re-rendered with the genre's accompaniment and groove; drums follow the genre).

Every operation has several instruction phrasings (:func:`phrasings`); the first one is the corpus's historical
:func:`~musicprobe.synth.captions.instruction` text. Triplets drawn for a seed depend only on that seed, and the
clips themselves are the corpus's (``make_clip``), so existing corpora are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicprobe.errors import ConfigError, check_known
from musicprobe.synth.captions import instruction
from musicprobe.synth.genres import GENRES, get_genre
from musicprobe.synth.instruments import INSTRUMENTS
from musicprobe.synth.render import render_score
from musicprobe.synth.score import MOODS, Plan, change_genre, change_instrument, realize

OPERATIONS = ("add", "remove", "extract", "replace", "remix")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def phrasings(op: str, *, track: str = "", instrument: str = "", new: str = "", genre: str = "") -> list[str]:
    """Every phrasing of an instruction (the first is the canonical one)."""
    check_known("operation", op, OPERATIONS)
    if op == "add":
        if track == "drums":
            return ["add drums", "add a drum track", "put drums under it"]
        return [
            instruction("add", role=track, instrument=instrument),
            f"add {instrument} playing the {track}",
            f"layer in {_a(instrument)} on the {track}",
        ]
    name = "drums" if track == "drums" else instrument
    if op == "remove":
        return [instruction("remove", instrument=name), f"take out the {name}", f"mute the {name} track"]
    if op == "extract":
        return [instruction("extract", instrument=name), f"isolate the {name}", f"keep only the {name}"]
    if op == "replace":
        return [
            instruction("replace", instrument=instrument, new_instrument=new),
            f"swap the {instrument} for {_a(new)}",
            f"play the {instrument} part on {_a(new)} instead",
        ]
    return [instruction("remix", genre=genre), f"turn it into {genre}", f"make {_a(genre)} remix"]


def remix_plan(plan: Plan, genre: str) -> Plan:
    """``change_genre`` that keeps the tempo when the new genre's tempo range allows it (clamped otherwise)."""
    new = change_genre(plan, genre)
    lo, hi = get_genre(genre).tempo
    mlo, mhi = MOODS[plan.mood][1]
    pos = ((plan.tempo - lo) / (hi - lo) - mlo) / max(mhi - mlo, 1e-9)
    return new.with_changes(tempo_pos=float(np.clip(pos, 0.0, 1.0)))


@dataclass
class StemState:
    """The stems present in a mix (``track -> audio``), rendered from ``plan`` at ``gain``."""

    plan: Plan
    stems: dict[str, np.ndarray]
    gain: float
    sr: int

    @property
    def mix(self) -> np.ndarray:
        n = len(next(iter(self.stems.values())))
        return np.sum(list(self.stems.values()), axis=0).astype(np.float32) if self.stems else np.zeros(n, np.float32)

    def instrument(self, track: str) -> str:
        return "drums" if track == "drums" else self.plan.instruments[track]

    def present(self) -> list[str]:
        """The instruments heard in the mix."""
        return [self.instrument(t) for t in self.stems]

    @classmethod
    def of_clip(cls, clip) -> StemState:
        r = clip.rendering
        return cls(clip.plan, dict(r.stems), r.gain, r.sr)

    def _render(self, plan: Plan, tracks: list[str]) -> dict[str, np.ndarray]:
        r = render_score(realize(plan), self.sr)
        scale = self.gain / r.gain
        return {t: (r.stems[t] * scale).astype(np.float32) for t in tracks if t in r.stems}

    def without(self, track: str) -> StemState:
        return StemState(self.plan, {t: s for t, s in self.stems.items() if t != track}, self.gain, self.sr)


@dataclass
class Triplet:
    """One edit: ``source`` and exact ``target`` audio, the ``instruction`` and what it asks (``op``, ``args``)."""

    op: str
    source: np.ndarray
    target: np.ndarray
    instruction: str
    args: dict = field(default_factory=dict)
    sr: int = 16000
    present_before: list[str] = field(default_factory=list)
    present_after: list[str] = field(default_factory=list)
    genre_after: str = ""


def apply(state: StemState, op: str, *, track: str = "", new: str = "", genre: str = "",
          phrasing: int = 0) -> tuple[StemState, Triplet]:
    """Apply one operation to ``state``: the new state and the triplet (source = this state's mix)."""
    check_known("operation", op, OPERATIONS)
    if op == "add":
        full = StemState(state.plan, {}, state.gain, state.sr)
        stems = dict(state.stems)
        check_known("track", track, full.plan.instruments)
        if track in stems:
            raise ConfigError(f"add: the {track} track is already in the mix")
        stems.update(state._render(state.plan, [track]))
        after = StemState(state.plan, stems, state.gain, state.sr)
        args = {"track": track, "instrument": state.instrument(track)}
    elif op in ("remove", "extract"):
        check_known("track", track, state.stems)
        after = (state.without(track) if op == "remove"
                 else StemState(state.plan, {track: state.stems[track]}, state.gain, state.sr))
        args = {"track": track, "instrument": state.instrument(track)}
    elif op == "replace":
        check_known("track", track, [t for t in state.stems if t != "drums"])
        check_known("instrument", new, INSTRUMENTS)
        plan = change_instrument(state.plan, track, new)
        stems = dict(state.stems)
        stems.update(state._render(plan, [track]))
        after = StemState(plan, stems, state.gain, state.sr)
        args = {"track": track, "instrument": state.instrument(track), "new": new}
    else:
        check_known("genre", genre, GENRES)
        plan = remix_plan(state.plan, genre)
        tracks = [t for t in plan.instruments if t in state.stems or t == "drums"]
        after = StemState(plan, state._render(plan, tracks), state.gain, state.sr)
        args = {"genre": genre, "from": state.plan.genre}
    texts = phrasings(op, track=args.get("track", ""), instrument=args.get("instrument", ""), new=new, genre=genre)
    trip = Triplet(op, state.mix, after.mix, texts[phrasing % len(texts)], args, state.sr,
                   state.present(), after.present(), after.plan.genre)
    return after, trip


def operation_choices(state: StemState, op: str) -> list[dict]:
    """The valid arguments of ``op`` on ``state`` (empty when none applies)."""
    plan = state.plan
    if op == "add":
        return [{"track": t} for t in plan.instruments if t not in state.stems]
    if op in ("remove", "extract"):
        return [{"track": t} for t in state.stems] if len(state.stems) > 1 else []
    if op == "replace":
        out = []
        for t in ("melody", "chords"):
            if t in state.stems:
                here = state.present()
                out += [{"track": t, "new": i} for i in INSTRUMENTS if i not in (*here, "bass")]
        return out
    bpb = GENRES[plan.genre].beats_per_bar
    return [{"genre": g} for g, v in GENRES.items() if g != plan.genre and v.beats_per_bar == bpb]


def random_triplet(clip, op: str, rng: np.random.Generator) -> Triplet | None:
    """A triplet of ``op`` on ``clip`` with its arguments and phrasing drawn from ``rng`` (None if none applies).
    ``add`` starts from the clip without one of its tracks."""
    state = StemState.of_clip(clip)
    if op == "add":
        track = str(rng.choice(list(state.stems)))
        state = state.without(track)
        if not state.stems:
            return None
    choices = operation_choices(state, op)
    if not choices:
        return None
    args = choices[int(rng.integers(len(choices)))]
    return apply(state, op, phrasing=int(rng.integers(3)), **args)[1]


def random_chain(clip, rounds: int, rng: np.random.Generator) -> list[Triplet]:
    """A multi-round edit: ``rounds`` instructions in a row (different operations), each with its exact target;
    round ``i + 1`` starts from round ``i``'s target. ``extract`` only comes last (after it little is left)."""
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    state, out = StemState.of_clip(clip), []
    ops = [o for o in OPERATIONS if o != "extract"]
    for i in range(rounds):
        pool = [o for o in (ops + ["extract"] if i == rounds - 1 else ops) if operation_choices(state, o)]
        pool = [o for o in pool if o not in [t.op for t in out]] or pool
        op = str(rng.choice(pool))
        choices = operation_choices(state, op)
        state, trip = apply(state, op, phrasing=int(rng.integers(3)), **choices[int(rng.integers(len(choices)))])
        out.append(trip)
    return out
