"""Training recipe of mini-LDM: epsilon prediction on the synthetic corpus, AudioLDM2's noise schedule.

Each step draws ``batch_size`` clips of the training corpus (seed 7, the clips mini-flux and the vocoder saw), one
of their five captions (replaced by the empty prompt with probability ``cond_dropout``, for classifier-free
guidance), a uniform timestep and Gaussian noise, and regresses the UNet's output on the noise (MSE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.minildm import MiniLDM, MiniLDMConfig
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    train_mel_model,
)


@dataclass
class LDMTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=4000, lr=3e-4, warmup=200, ema_decay=0.999))
    model: MiniLDMConfig = field(default_factory=MiniLDMConfig)


def train_minildm(out: str | Path, cfg: LDMTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-LDM in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or LDMTrainConfig()

    def make_loss(ldm: MiniLDM):
        x_all = ldm.mel_to_latent(data.mels)
        alphas = ldm.config.alphas_cumprod().float()
        log(f"mini-LDM latent {tuple(x_all.shape[1:])}")

        def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
            b = cfg.batch_size
            idx, text = data.draw(g, b, cfg.cond_dropout)
            x0 = x_all[idx]
            t = torch.randint(ldm.config.num_train_timesteps, (b,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            a = alphas[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            return torch.nn.functional.mse_loss(ldm.forward(xt, t, text), eps)

        return loss_at

    data = captioned_corpus(cfg, log)
    return train_mel_model(Path(out), cfg, data, "mini-ldm", MiniLDM, make_loss, log)
