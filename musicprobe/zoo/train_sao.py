"""Training recipe of mini-SAO: v-prediction in the cosine (trig-flow) parameterisation, as Stable Audio Open.

Each step draws ``batch_size`` clips of the training corpus (seed 7, the clips the other zoo models saw), one of
their five captions (the empty prompt with probability ``cond_dropout``, for classifier-free guidance), an angle
``a = u * pi / 2`` with ``u`` uniform (stable-audio-tools' ``v`` objective draws its time uniformly), Gaussian noise,
and regresses the DiT's output on ``v = eps cos(a) - x0 sin(a)`` for the input ``x0 cos(a) + eps sin(a)`` (MSE).
The DiT and the duration/text projection train together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.minisao import MiniSAO, MiniSAOConfig
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    train_mel_model,
)


@dataclass
class SAOTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=6000, lr=3e-4, warmup=200, ema_decay=0.999))
    model: MiniSAOConfig = field(default_factory=MiniSAOConfig)


def train_minisao(out: str | Path, cfg: SAOTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-SAO in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or SAOTrainConfig()

    def make_loss(sao: MiniSAO):
        x_all = sao.codec.mel_to_tokens(data.mels)

        def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
            b = cfg.batch_size
            idx, text = data.draw(g, b, cfg.cond_dropout)
            x0 = x_all[idx]
            eps = torch.randn(x0.shape, generator=g)
            a = torch.rand(b, generator=g) * (math.pi / 2)
            c, s = torch.cos(a)[:, None, None], torch.sin(a)[:, None, None]
            return torch.nn.functional.mse_loss(sao.forward_v(c * x0 + s * eps, a, text), c * eps - s * x0)

        return loss_at

    data = captioned_corpus(cfg, log)
    return train_mel_model(Path(out), cfg, data, "mini-sao", MiniSAO, make_loss, log)
