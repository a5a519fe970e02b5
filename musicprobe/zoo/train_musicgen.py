"""Training recipe of mini-MusicGen: fit the RVQ on the corpus, then next-token cross-entropy on its codes.

1. The residual vector quantiser (K=4 codebooks of 512) is fitted by k-means on 100,000 standardised log-mel
   frames of the training corpus (seed 7, the clips every zoo model saw), stage by stage on the residuals; its
   codebooks are saved once in the run folder (``rvq/``) so a resumed run quantises with the same codebooks.
2. Every clip is encoded into codes ``(K, 320)``. Each step draws ``batch_size`` clips, one of their five captions
   (the empty prompt with probability ``cond_dropout``, for classifier-free guidance), lays the codes out in the
   delay pattern and trains the decoder and the text projection with teacher forcing: cross-entropy of every
   codebook's next token (padding positions ignored), averaged over codebooks as MusicGen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.delay import teacher_forcing
from musicprobe.models.minimusicgen import MiniMusicGen, MiniMusicGenConfig
from musicprobe.models.rvq import ResidualVQ, RVQConfig
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    train_mel_model,
)


@dataclass
class MusicGenTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=4500, lr=5e-4, warmup=200, ema_decay=0.999))
    model: MiniMusicGenConfig = field(
        default_factory=lambda: MiniMusicGenConfig(hidden_size=192, num_attention_heads=6, ffn_dim=768)
    )
    rvq_iters: int = 25


def fit_quantiser(out: Path, mels, cfg: MusicGenTrainConfig, log=print) -> ResidualVQ:
    """The run's RVQ: loaded from ``out/rvq`` when a previous run fitted it, otherwise fitted and saved there."""
    folder = out / "rvq"
    if (folder / "rvq.safetensors").exists():
        return ResidualVQ.load(folder)
    m = cfg.model
    rcfg = RVQConfig(n_codebooks=m.num_codebooks, codebook_size=m.codebook_size, iters=cfg.rvq_iters,
                     seed=cfg.loop.seed)
    frames = torch.as_tensor(mels).transpose(1, 2).reshape(-1, m.codec.n_mels)
    rvq = ResidualVQ.fit(frames, rcfg, meta={"corpus_seed": cfg.corpus_seed, "corpus_clips": cfg.n_clips})
    rvq.save(folder)
    mse = [float(((rvq.decode(rvq.encode(frames[:20000], k)) - frames[:20000]) ** 2).mean())
           for k in range(1, m.num_codebooks + 1)]
    log(f"RVQ fitted: frame MSE with 1..{m.num_codebooks} codebooks {[round(x, 4) for x in mse]}")
    return rvq


def train_minimusicgen(out: str | Path, cfg: MusicGenTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-MusicGen in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or MusicGenTrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def make_loss(mg: MiniMusicGen):
        codes = mg.codes_of_mel(data.mels)  # (clips, K, frames)
        pad, k = mg.pad_id, mg.n_codebooks

        def loss_at(step: int, g: torch.Generator) -> tuple[torch.Tensor, dict]:
            idx, text = data.draw(g, cfg.batch_size, cfg.cond_dropout)
            inputs, targets = teacher_forcing(codes[idx], pad)
            logits = mg.network(inputs, text)
            per_book = [
                torch.nn.functional.cross_entropy(logits[:, j].reshape(-1, logits.shape[-1]), targets[:, j].reshape(-1))
                for j in range(k)
            ]
            return torch.stack(per_book).mean(), {f"ce{j}": float(x.detach()) for j, x in enumerate(per_book)}

        return loss_at

    data = captioned_corpus(cfg, log)
    rvq = fit_quantiser(out, data.mels, cfg, log)
    return train_mel_model(out, cfg, data, "mini-musicgen", MiniMusicGen, make_loss, log, rvq=rvq)
