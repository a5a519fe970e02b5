"""Clips, edit pairs with exact targets, InstructME-style stem triplets, and corpus files on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicprobe.audio.io import save_audio
from musicprobe.errors import ConfigError, check_known
from musicprobe.parallel import pool_map
from musicprobe.synth.captions import captions, instruction
from musicprobe.synth.genres import GENRES, MOOD_OPPOSITE
from musicprobe.synth.instruments import INSTRUMENTS
from musicprobe.synth.render import Rendering, render_score
from musicprobe.synth.score import (
    Plan,
    Score,
    change_genre,
    change_instrument,
    change_mood,
    make_plan,
    realize,
)

SR = 16000
EDIT_KINDS = ("instrument", "genre", "mood")
STEM_TASKS = ("add", "remove", "extract", "replace")


@dataclass
class Clip:
    """A rendered clip with its ground truth."""

    clip_id: str
    score: Score
    rendering: Rendering
    captions: list[str]

    @property
    def audio(self) -> np.ndarray:
        return self.rendering.mix

    @property
    def sr(self) -> int:
        return self.rendering.sr

    @property
    def plan(self) -> Plan:
        return self.score.plan

    def metadata(self) -> dict:
        return {"id": self.clip_id, "sr": self.sr, "captions": self.captions, **self.score.to_dict()}


@dataclass
class EditPair:
    """A source clip, its true edited version and the prompts/instruction describing the edit."""

    kind: str
    source: Clip
    target: Clip
    source_prompt: str
    target_prompt: str
    instruction: str
    change: dict = field(default_factory=dict)


def clip_seed(seed: int, i: int) -> int:
    """The synthesis seed of clip ``i`` of the corpus with ``seed`` (corpora with different seeds are disjoint)."""
    return seed * 1_000_003 + i


def make_clip(seed: int, *, sr: int = SR, clip_id: str | None = None, **plan_kw) -> Clip:
    """Compose and render a clip from ``seed``; keyword arguments fix plan decisions (see ``make_plan``)."""
    return clip_from_plan(make_plan(seed, **plan_kw), sr=sr, clip_id=clip_id)


def clip_from_plan(plan: Plan, *, sr: int = SR, clip_id: str | None = None) -> Clip:
    score = realize(plan)
    rendering = render_score(score, sr)
    cid = clip_id or f"clip{plan.seed:06d}"
    return Clip(cid, score, rendering, captions(score))


def _prompt(score: Score) -> str:
    return captions(score)[0]


def instrument_edit(clip: Clip, new_instrument: str, track: str = "melody") -> EditPair:
    """Re-render the same notes with ``new_instrument`` on ``track`` (e.g. piano -> flute)."""
    old = clip.plan.instruments[track]
    if new_instrument == old:
        raise ConfigError(f"instrument edit: the {track} is already played by {old!r}")
    target = clip_from_plan(
        change_instrument(clip.plan, track, new_instrument),
        sr=clip.sr,
        clip_id=f"{clip.clip_id}_to_{new_instrument.replace(' ', '-')}",
    )
    return EditPair(
        "instrument",
        clip,
        target,
        _prompt(clip.score),
        _prompt(target.score),
        instruction("replace", instrument=old, new_instrument=new_instrument),
        {"track": track, "from": old, "to": new_instrument},
    )


def genre_edit(clip: Clip, new_genre: str) -> EditPair:
    check_known("genre", new_genre, GENRES)
    target = clip_from_plan(change_genre(clip.plan, new_genre), sr=clip.sr, clip_id=f"{clip.clip_id}_as_{new_genre}")
    return EditPair(
        "genre",
        clip,
        target,
        _prompt(clip.score),
        _prompt(target.score),
        instruction("remix", genre=new_genre),
        {"from": clip.plan.genre, "to": new_genre},
    )


def mood_edit(clip: Clip, new_mood: str | None = None) -> EditPair:
    new_mood = new_mood or MOOD_OPPOSITE[clip.plan.mood]
    target = clip_from_plan(change_mood(clip.plan, new_mood), sr=clip.sr, clip_id=f"{clip.clip_id}_{new_mood}")
    return EditPair(
        "mood",
        clip,
        target,
        _prompt(clip.score),
        _prompt(target.score),
        f"make it sound {new_mood}",
        {"from": clip.plan.mood, "to": new_mood},
    )


def edit_choices(clip: Clip, kind: str) -> list[str]:
    """The valid targets of an edit of ``kind`` on ``clip`` (empty when none exists, e.g. a genre edit of the
    only genre in its meter)."""
    check_known("edit kind", kind, EDIT_KINDS)
    if kind == "instrument":
        old = clip.plan.instruments["melody"]
        return [i for i in INSTRUMENTS if i not in (old, "bass")]
    if kind == "genre":
        bpb = GENRES[clip.plan.genre].beats_per_bar
        return [g for g, v in GENRES.items() if g != clip.plan.genre and v.beats_per_bar == bpb]
    return [MOOD_OPPOSITE[clip.plan.mood]]


def random_edit(clip: Clip, kind: str, rng: np.random.Generator) -> EditPair:
    """An edit of ``kind`` with a target drawn from ``rng`` among the valid choices."""
    choices = edit_choices(clip, kind)
    if not choices:
        raise ConfigError(f"no genre shares the meter of {clip.plan.genre!r}: no {kind} edit exists for this clip")
    if kind == "instrument":
        return instrument_edit(clip, str(rng.choice(choices)))
    if kind == "genre":
        return genre_edit(clip, str(rng.choice(choices)))
    return mood_edit(clip)


@dataclass
class StemTask:
    """InstructME-style triplet: ``source`` audio, ``instruction`` text, ``target`` audio."""

    task: str
    source: np.ndarray
    target: np.ndarray
    instruction: str
    track: str
    sr: int


def stem_tasks(clip: Clip, track: str, *, new_instrument: str | None = None) -> dict[str, StemTask]:
    """Add / remove / extract / replace triplets for ``track`` built from the clip's exact stems."""
    stems = clip.rendering.stems
    check_known("track", track, stems)
    inst = clip.plan.instruments[track]
    name = "drums" if track == "drums" else inst
    without = clip.audio - stems[track]
    out = {
        "add": StemTask(
            "add",
            without,
            clip.audio,
            "add drums" if track == "drums" else instruction("add", role=track, instrument=inst),
            track,
            clip.sr,
        ),
        "remove": StemTask("remove", clip.audio, without, instruction("remove", instrument=name), track, clip.sr),
        "extract": StemTask(
            "extract",
            clip.audio,
            stems[track].copy(),
            instruction("extract", instrument=name),
            track,
            clip.sr,
        ),
    }
    if track != "drums":
        choices = [i for i in INSTRUMENTS if i not in (inst, "bass")]
        new = new_instrument or choices[clip.plan.seed % len(choices)]
        replaced = render_score(realize(change_instrument(clip.plan, track, new)), clip.sr)
        # keep the other stems at the source's gain so only the replaced track differs
        target = without + replaced.stems[track] * (clip.rendering.gain / replaced.gain)
        out["replace"] = StemTask(
            "replace",
            clip.audio,
            target.astype(np.float32),
            instruction("replace", instrument=inst, new_instrument=new),
            track,
            clip.sr,
        )
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_clip(clip: Clip, out: Path, *, fmt: str = "wav", stems: bool = False) -> dict:
    """Write the mix (and optionally stems) plus a JSON metadata file; returns the manifest entry."""
    out.mkdir(parents=True, exist_ok=True)
    audio_path = save_audio(out / f"{clip.clip_id}.{fmt}", clip.audio, clip.sr)
    meta = clip.metadata()
    if stems:
        meta["stems"] = {}
        for track, wave in clip.rendering.stems.items():
            p = save_audio(out / "stems" / f"{clip.clip_id}_{track}.{fmt}", wave, clip.sr)
            meta["stems"][track] = str(p.relative_to(out))
    (out / f"{clip.clip_id}.json").write_text(json.dumps(meta, indent=1))
    return {
        "id": clip.clip_id,
        "audio": audio_path.name,
        "meta": f"{clip.clip_id}.json",
        "caption": clip.captions[0],
        "genre": clip.plan.genre,
        "mood": clip.plan.mood,
        "lead": clip.plan.instruments["melody"],
        "sha256": _sha256(audio_path),
    }


def _write_one(args: tuple[int, str, float, Path, str, bool]) -> dict:
    seed, cid, duration, out, fmt, stems = args
    return write_clip(make_clip(seed, duration=duration, clip_id=cid), out, fmt=fmt, stems=stems)


def write_corpus(
    out: str | Path,
    n: int,
    seed: int = 0,
    *,
    duration: float = 5.0,
    edits: int = 0,
    stems: bool = False,
    fmt: str = "wav",
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Write ``n`` clips (and ``edits`` edit pairs, cycling instrument/genre/mood) with a ``manifest.json``.

    Clip ``i`` depends only on ``(seed, i)``, so the corpus is identical whatever ``workers`` is.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n)
    jobs = [(int(seeds[i]), f"clip{i:05d}", duration, out, fmt, stems) for i in range(n)]
    results = pool_map(_write_one, jobs, workers, chunksize=max(1, n // (8 * workers)))
    entries = list(_progress(results, n, progress))
    pairs = []
    for j in range(edits):
        src_seed, cid = jobs[j % n][0], jobs[j % n][1]
        clip = make_clip(src_seed, duration=duration, clip_id=cid)
        kind = EDIT_KINDS[j % len(EDIT_KINDS)]
        pair = random_edit(clip, kind, np.random.default_rng(seed * 1000 + j))
        tgt = write_clip(pair.target, out / "targets", fmt=fmt)
        pairs.append(
            {
                "kind": kind,
                "source": cid,
                "target": f"targets/{tgt['audio']}",
                "target_meta": f"targets/{tgt['meta']}",
                "source_prompt": pair.source_prompt,
                "target_prompt": pair.target_prompt,
                "instruction": pair.instruction,
                "change": pair.change,
                "sha256": tgt["sha256"],
            }
        )
    manifest = {
        "generator": "musicprobe.synth",
        "seed": seed,
        "n": n,
        "sr": SR,
        "duration": duration,
        "clips": entries,
        "edit_pairs": pairs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out / "manifest.json"


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="synth", unit="clip")
