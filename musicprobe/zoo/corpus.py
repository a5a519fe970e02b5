"""The mini models' training corpus: synthetic clips as log-mel arrays with captions and labels, cached on disk.

Clip ``i`` of a corpus with ``seed`` is ``make_clip(seed * 1_000_003 + i, duration=codec seconds)``; corpora with
different seeds are disjoint, so held-out evaluation uses another seed (``HELDOUT_SEED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicprobe.audio.features import log_mel
from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.parallel import pool_map
from musicprobe.synth.corpus import clip_seed

TRAIN_SEED = 7
HELDOUT_SEED = 9001
LABEL_FIELDS = ("lead", "genre", "mood", "accomp")


@dataclass
class MelCorpus:
    """``mels`` (N, n_mels, n_frames) raw natural-log mel (float16), 5 ``captions`` per clip and ``labels``."""

    mels: np.ndarray
    captions: list[list[str]]
    labels: dict[str, list[str]]
    seed: int

    def __len__(self) -> int:
        return len(self.mels)

    def label(self, field: str, i: int) -> str:
        return self.labels[field][i]


def _clip_audio(s: int, codec: CodecConfig):
    """Clip ``s`` rendered at the codec's rate and trimmed/padded to the codec's length."""
    from musicprobe.audio.io import trim_or_pad
    from musicprobe.synth import make_clip

    clip = make_clip(s, sr=codec.sr, duration=codec.seconds)
    return clip, trim_or_pad(clip.audio, codec.n_samples)


def _one(args: tuple[int, CodecConfig]) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    s, codec = args
    clip, y = _clip_audio(s, codec)
    m = log_mel(y, codec.mel)[:, : codec.n_frames].astype(np.float16)
    p = clip.plan
    return m, clip.captions, (p.instruments["melody"], p.genre, p.mood, p.instruments["chords"])


def build_corpus(
    n: int, seed: int = TRAIN_SEED, codec: CodecConfig | None = None, workers: int = 1, progress: bool = False
) -> MelCorpus:
    """Synthesize ``n`` clips and compute their log-mels (deterministic whatever ``workers`` is)."""
    codec = codec or CodecConfig()
    if n < 1:
        raise ConfigError(f"corpus size must be >= 1, got {n}")
    jobs = [(clip_seed(seed, i), codec) for i in range(n)]
    results = list(_maybe_progress(pool_map(_one, jobs, workers), n, progress))
    mels = np.stack([r[0] for r in results])
    labels = {f: [r[2][k] for r in results] for k, f in enumerate(LABEL_FIELDS)}
    return MelCorpus(mels, [r[1] for r in results], labels, seed)


def _maybe_progress(it, n, progress):
    if not progress:
        return it
    from tqdm import tqdm

    return tqdm(it, total=n, desc="corpus")


def cached_corpus(
    n: int, seed: int = TRAIN_SEED, codec: CodecConfig | None = None, workers: int = 1, cache_dir: Path | None = None
) -> MelCorpus:
    """``build_corpus`` with an on-disk cache (``$MUSICPROBE_CACHE`` or ``~/.cache/musicprobe``)."""
    codec = codec or CodecConfig()
    import json

    from musicprobe.cache import cache_dir as default_cache

    cache_dir = Path(cache_dir or default_cache())
    key = f"corpus_s{seed}_n{n}_h{codec.hop_length}_m{codec.n_mels}_f{codec.n_frames}"
    path = cache_dir / f"{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return MelCorpus(z["mels"], meta["captions"], meta["labels"], seed)
    corpus = build_corpus(n, seed, codec, workers, progress=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"captions": corpus.captions, "labels": corpus.labels})
    np.savez(path, mels=corpus.mels, meta=np.array(meta))
    return corpus


def _one_audio(args: tuple[int, CodecConfig]) -> np.ndarray:
    return _clip_audio(*args)[1].astype(np.float16)


def cached_audio(n: int, seed: int = TRAIN_SEED, codec: CodecConfig | None = None, workers: int = 1) -> np.ndarray:
    """The waveforms ``(n, n_samples)`` (float16) of the same clips as ``cached_corpus(n, seed)``, cached on disk."""
    codec = codec or CodecConfig()
    if n < 1:
        raise ConfigError(f"corpus size must be >= 1, got {n}")
    from musicprobe.cache import cache_dir

    path = cache_dir() / f"audio_s{seed}_n{n}_sr{codec.sr}_l{codec.n_samples}.npy"
    if path.exists():
        return np.load(path)
    jobs = [(clip_seed(seed, i), codec) for i in range(n)]
    audio = np.stack(list(_maybe_progress(pool_map(_one_audio, jobs, workers), n, True)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, audio)
    return audio


def cached_text(texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MiniLM token states and pooled vectors (float16), cached on disk by content (minutes of CPU otherwise)."""
    import hashlib

    from musicprobe.cache import cache_dir
    from musicprobe.models.text import encode_text

    key = hashlib.sha256(("\n".join(texts) + f"|{max_tokens}").encode()).hexdigest()[:16]
    folder = cache_dir()
    path = folder / f"text_{key}.pt"
    if path.exists():
        d = torch.load(path)
        return d["tokens"], d["pooled"]
    enc = encode_text(texts, max_tokens)
    out = {"tokens": enc.tokens.half(), "pooled": enc.pooled.half()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out["tokens"], out["pooled"]
