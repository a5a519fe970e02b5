"""InstructME triplet sets as arrays: source / target log-mels, the source's chord matrix, the instruction phrasings.

Triplet set ``(seed, n)`` holds, for each of the corpus clips ``0..n-1`` of ``seed`` (the very clips of
``cached_corpus(n, seed)``), one triplet per operation that applies (add / remove / extract / replace / remix), its
arguments drawn from a generator seeded by ``(seed, clip)``. Training uses the training corpus seed; benchmarks use
``HELDOUT_SEED`` (disjoint clips). Cached on disk like the corpus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.parallel import pool_map
from musicprobe.synth.instruct import OPERATIONS


@dataclass
class TripletSet:
    """``sources`` / ``targets``: raw natural-log mels ``(N, n_mels, frames)`` (float16); ``chords``: the source's
    chord matrix ``(N, 37, frames // frame_multiple)``; per triplet its ``op``, ``phrasings`` (three texts), ``args``
    and clip index."""

    sources: np.ndarray
    targets: np.ndarray
    chords: np.ndarray
    ops: list[str]
    phrasings: list[list[str]]
    args: list[dict]
    clips: list[int]
    seed: int

    def __len__(self) -> int:
        return len(self.ops)

    def where(self, op: str) -> np.ndarray:
        return np.array([i for i, o in enumerate(self.ops) if o == op], dtype=int)


def clip_triplets(seed: int, i: int, sr: int, seconds: float):
    """The triplets of corpus clip ``i`` of ``seed`` (one per operation that applies), deterministic."""
    from musicprobe.synth import make_clip
    from musicprobe.synth.instruct import random_triplet
    from musicprobe.zoo.corpus import clip_seed

    clip = make_clip(clip_seed(seed, i), sr=sr, duration=seconds)
    rng = np.random.default_rng([seed, i, 77])
    return [t for op in OPERATIONS if (t := random_triplet(clip, op, rng)) is not None]


def _one(job: tuple[int, int, CodecConfig, int]) -> list[tuple]:
    from musicprobe.audio.features import log_mel
    from musicprobe.audio.io import trim_or_pad
    from musicprobe.metrics.harmony import chord_matrix
    from musicprobe.synth.instruct import phrasings

    seed, i, codec, multiple = job
    out, chord_cache = [], {}
    width = codec.n_frames // multiple
    step = multiple * codec.hop_length / codec.sr
    for t in clip_triplets(seed, i, codec.sr, codec.seconds):
        src, tgt = (trim_or_pad(a, codec.n_samples) for a in (t.source, t.target))
        key = t.op == "add"  # every other operation starts from the full mix
        if key not in chord_cache:
            chord_cache[key] = chord_matrix(src, codec.sr, step, width).astype(np.float16)
        mels = [log_mel(a, codec.mel)[:, : codec.n_frames].astype(np.float16) for a in (src, tgt)]
        a = t.args
        texts = phrasings(t.op, track=a.get("track", ""), instrument=a.get("instrument", ""),
                          new=a.get("new", ""), genre=a.get("genre", ""))
        out.append((mels[0], mels[1], chord_cache[key], t.op, texts, a, i))
    return out


def build_triplets(n: int, seed: int, codec: CodecConfig, multiple: int = 16, workers: int = 1) -> TripletSet:
    if n < 1:
        raise ConfigError(f"need at least one clip, got {n}")
    jobs = [(seed, i, codec, multiple) for i in range(n)]
    rows = [r for res in pool_map(_one, jobs, workers, chunksize=8) for r in res]
    return TripletSet(
        np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]),
        [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows], [r[6] for r in rows], seed,
    )


def cached_triplets(n: int, seed: int, codec: CodecConfig, multiple: int = 16, workers: int = 1) -> TripletSet:
    """:func:`build_triplets` with an on-disk cache (``$MUSICPROBE_CACHE`` or ``~/.cache/musicprobe``)."""
    from musicprobe.cache import cache_dir

    key = f"triplets_s{seed}_n{n}_h{codec.hop_length}_m{codec.n_mels}_f{codec.n_frames}_x{multiple}"
    path = Path(cache_dir()) / f"{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return TripletSet(z["sources"], z["targets"], z["chords"], meta["ops"], meta["phrasings"], meta["args"],
                          meta["clips"], seed)
    ts = build_triplets(n, seed, codec, multiple, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"ops": ts.ops, "phrasings": ts.phrasings, "args": ts.args, "clips": ts.clips})
    np.savez(path, sources=ts.sources, targets=ts.targets, chords=ts.chords, meta=np.array(meta))
    return ts
