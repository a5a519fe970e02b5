"""Training of mini-flux on the synthetic corpus: rectified flow, logit-normal times, condition dropout, EMA.

Reproducible: fixed seeds for the corpus, the initialisation and the batch order; the run folder keeps a
resumable checkpoint (``checkpoint.pt``), the loss curve (``loss.jsonl``) and, on export, the EMA weights with their
config, corpus seed and step count (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.miniflux import MiniFlux, MiniFluxConfig, build_transformer
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    export_model,
    provenance_meta,
    train_loop,
)


@dataclass
class FluxTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=6000, lr=3e-4, warmup=200, ema_decay=0.999))
    logit_normal: tuple[float, float] = (0.0, 1.0)  # mean, std of logit(t)
    model: MiniFluxConfig = field(default_factory=MiniFluxConfig)


def train_miniflux(out: str | Path, cfg: FluxTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-flux in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or FluxTrainConfig()
    out = Path(out)
    data = captioned_corpus(cfg, log)
    model_cfg = data.model_config
    transformer = build_transformer(model_cfg, seed=cfg.loop.seed)
    mf = MiniFlux(transformer, model_cfg)
    x_all = mf.codec.mel_to_tokens(data.mels)

    def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
        idx, text = data.draw(g, cfg.batch_size, cfg.cond_dropout)
        x0 = x_all[idx]
        eps = torch.randn(x0.shape, generator=g)
        mu, sd = cfg.logit_normal
        t = torch.sigmoid(mu + sd * torch.randn(cfg.batch_size, generator=g))
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * eps
        return torch.nn.functional.mse_loss(mf.forward(xt, t, text), eps - x0)

    def export(ema: torch.nn.Module, step: int, segments: list[dict]) -> Path:
        meta = provenance_meta("mini-flux", cfg, step, segments)
        return export_model(out, MiniFlux(ema, model_cfg, meta=meta))

    train_loop(out, transformer, loss_at, cfg.loop, export, train_config=cfg.to_dict(), log=log)
    return out / "model"
