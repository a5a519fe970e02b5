"""Training of mini-flux on the synthetic corpus: rectified flow, logit-normal times, condition dropout, EMA.

Reproducible: fixed seeds for the corpus, the initialisation and the batch order; the run folder keeps a
resumable checkpoint (``checkpoint.pt``), the loss curve (``loss.jsonl``) and, on export, the EMA weights with their
config, corpus seed and step count (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.miniflux import MiniFlux, MiniFluxConfig
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    train_mel_model,
)


@dataclass
class FluxTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=6000, lr=3e-4, warmup=200, ema_decay=0.999))
    logit_normal: tuple[float, float] = (0.0, 1.0)  # mean, std of logit(t)
    model: MiniFluxConfig = field(default_factory=MiniFluxConfig)


def train_miniflux(out: str | Path, cfg: FluxTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-flux in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or FluxTrainConfig()

    def make_loss(mf: MiniFlux):
        x_all = mf.codec.mel_to_tokens(data.mels)

        def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
            idx, text = data.draw(g, cfg.batch_size, cfg.cond_dropout)
            x0 = x_all[idx]
            eps = torch.randn(x0.shape, generator=g)
            mu, sd = cfg.logit_normal
            t = torch.sigmoid(mu + sd * torch.randn(cfg.batch_size, generator=g))
            xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * eps
            return torch.nn.functional.mse_loss(mf.forward(xt, t, text), eps - x0)

        return loss_at

    data = captioned_corpus(cfg, log)
    return train_mel_model(Path(out), cfg, data, "mini-flux", MiniFlux, make_loss, log)
