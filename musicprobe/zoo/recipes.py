"""Training recipes of the zoo models (what ``musicprobe zoo train <name>`` runs) and their evaluation sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicprobe.errors import check_known
from musicprobe.models.codec import CodecConfig
from musicprobe.zoo.corpus import HELDOUT_SEED, TRAIN_SEED, MelCorpus, cached_corpus
from musicprobe.zoo.train_flux import FluxTrainConfig, train_miniflux

RECIPES = ("mini-flux", "mini-clap", "mini-vocoder", "mini-ldm", "mini-sao")


def corpus_codec(corpus: MelCorpus, base: CodecConfig | None = None) -> CodecConfig:
    """The codec with the corpus's log-mel mean/std (as mini-flux's training computes them)."""
    base = base or CodecConfig()
    m = corpus.mels.astype(np.float32)
    return CodecConfig(**{**base.to_dict(), "mel_mean": round(float(m.mean()), 4), "mel_std": round(float(m.std()), 4)})


def heldout(n: int = 256, workers: int = 1) -> MelCorpus:
    """Held-out clips (a corpus seed disjoint from training) for evaluation."""
    return cached_corpus(n, HELDOUT_SEED, workers=workers)


def train(
    name: str, out: str | Path, *, steps: int | None = None, n_clips: int = 2400, workers: int = 2, log=print
) -> Path:
    """Train zoo model ``name`` into ``out`` (resumable for mini-flux); returns the folder holding the weights."""
    check_known("zoo model", name, RECIPES)
    out = Path(out)
    if name == "mini-flux":
        cfg = FluxTrainConfig(n_clips=n_clips, workers=workers)
        if steps:
            cfg.loop.steps = steps
        return train_miniflux(out, cfg, log=log)
    if name == "mini-ldm":
        from musicprobe.zoo.train_ldm import LDMTrainConfig, train_minildm

        lcfg = LDMTrainConfig(n_clips=n_clips, workers=workers)
        if steps:
            lcfg.loop.steps = steps
        return train_minildm(out, lcfg, log=log)
    if name == "mini-sao":
        from musicprobe.zoo.train_sao import SAOTrainConfig, train_minisao

        scfg = SAOTrainConfig(n_clips=n_clips, workers=workers)
        if steps:
            scfg.loop.steps = steps
        return train_minisao(out, scfg, log=log)
    if name == "mini-vocoder":
        from musicprobe.zoo.train_vocoder import VocoderTrainConfig, train_minivocoder

        vcfg = VocoderTrainConfig(n_clips=n_clips, workers=workers)
        if steps:
            vcfg.loop.steps = steps
        return train_minivocoder(out, vcfg, log=log)
    from musicprobe.zoo.train_clap import train_miniclap

    corpus = cached_corpus(n_clips, TRAIN_SEED, workers=workers)
    train_miniclap(
        out,
        corpus.mels,
        corpus.captions,
        corpus.labels,
        steps=steps or 1000,
        codec=corpus_codec(corpus),
        meta={"corpus_seed": TRAIN_SEED, "corpus_clips": n_clips},
        log=log,
    )
    return out
