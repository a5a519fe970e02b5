"""Training recipe of mini-LDM: epsilon prediction on the synthetic corpus, AudioLDM2's noise schedule.

Each step draws ``batch_size`` clips of the training corpus (seed 7, the clips mini-flux and the vocoder saw), one
of their five captions (replaced by the empty prompt with probability ``cond_dropout``, for classifier-free
guidance), a uniform timestep and Gaussian noise, and regresses the UNet's output on the noise (MSE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.models.minildm import MiniLDM, MiniLDMConfig, build_unet
from musicprobe.zoo.trainer import (
    DiffusionTrainConfig,
    LoopConfig,
    captioned_corpus,
    export_model,
    provenance_meta,
    train_loop,
)


@dataclass
class LDMTrainConfig(DiffusionTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=4000, lr=3e-4, warmup=200, ema_decay=0.999))
    model: MiniLDMConfig = field(default_factory=MiniLDMConfig)


def train_minildm(out: str | Path, cfg: LDMTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-LDM in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or LDMTrainConfig()
    out = Path(out)
    data = captioned_corpus(cfg, log)
    model_cfg = data.model_config
    unet = build_unet(model_cfg, seed=cfg.loop.seed)
    ldm = MiniLDM(unet, model_cfg)
    x_all = ldm.mel_to_latent(data.mels)
    alphas = model_cfg.alphas_cumprod().float()
    n_params = sum(p.numel() for p in unet.parameters()) / 1e6
    log(f"mini-LDM: {n_params:.2f} M parameters, latent {tuple(x_all.shape[1:])}")

    def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
        b = cfg.batch_size
        idx, text = data.draw(g, b, cfg.cond_dropout)
        x0 = x_all[idx]
        t = torch.randint(model_cfg.num_train_timesteps, (b,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        return torch.nn.functional.mse_loss(ldm.forward(xt, t, text), eps)

    def export(ema: torch.nn.Module, step: int, segments: list[dict]) -> Path:
        return export_model(out, MiniLDM(ema, model_cfg, meta=provenance_meta("mini-ldm", cfg, step, segments)))

    train_loop(out, unet, loss_at, cfg.loop, export, train_config=cfg.to_dict(), log=log)
    return out / "model"
