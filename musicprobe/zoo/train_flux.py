"""Training of mini-flux on the synthetic corpus: rectified flow, logit-normal times, condition dropout, EMA.

Reproducible: fixed seeds for the corpus, the initialisation and the batch order; the run folder keeps a
resumable checkpoint (``checkpoint.pt``), the loss curve (``loss.jsonl``) and, on export, the EMA weights with their
config, corpus seed and step count (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.models.miniflux import MiniFlux, MiniFluxConfig, build_transformer
from musicprobe.models.text import TextStates
from musicprobe.zoo.corpus import TRAIN_SEED, cached_corpus, cached_text
from musicprobe.zoo.trainer import LoopConfig, replace_folder, train_loop


@dataclass
class FluxTrainConfig:
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=6000, lr=3e-4, warmup=200, ema_decay=0.999))
    batch_size: int = 16
    cond_dropout: float = 0.1
    logit_normal: tuple[float, float] = (0.0, 1.0)  # mean, std of logit(t)
    n_clips: int = 2400
    corpus_seed: int = TRAIN_SEED
    workers: int = 2
    model: MiniFluxConfig = field(default_factory=MiniFluxConfig)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.n_clips < self.batch_size:
            raise ConfigError("batch_size must be >= 1 and n_clips >= batch_size")
        if not 0 <= self.cond_dropout < 1:
            raise ConfigError("cond_dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def train_miniflux(out: str | Path, cfg: FluxTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-flux in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or FluxTrainConfig()
    out = Path(out)
    corpus = cached_corpus(cfg.n_clips, cfg.corpus_seed, cfg.model.codec, workers=cfg.workers)
    mels = corpus.mels.astype(np.float32)
    mean, std = float(mels.mean()), float(mels.std())
    codec = CodecConfig(**{**cfg.model.codec.to_dict(), "mel_mean": round(mean, 4), "mel_std": round(std, 4)})
    model_cfg = MiniFluxConfig.from_dict({**cfg.model.to_dict(), "codec": codec.to_dict()})
    log(f"corpus: {len(corpus)} clips, log-mel mean {mean:.3f} std {std:.3f}")

    texts = [c for caps in corpus.captions for c in caps]
    txt_tokens, txt_pooled = cached_text(texts + [""], model_cfg.max_text_tokens)
    n_caps = len(corpus.captions[0])
    empty = len(texts)

    transformer = build_transformer(model_cfg, seed=cfg.loop.seed)
    mf = MiniFlux(transformer, model_cfg)
    x_all = mf.codec.mel_to_tokens((mels - mean) / std)

    def loss_at(step: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(corpus), (cfg.batch_size,), generator=g)
        cap = idx * n_caps + torch.randint(n_caps, (cfg.batch_size,), generator=g)
        drop = torch.rand(cfg.batch_size, generator=g) < cfg.cond_dropout
        cap = torch.where(drop, torch.full_like(cap, empty), cap)
        text = TextStates(txt_tokens[cap].float(), torch.ones(cfg.batch_size), txt_pooled[cap].float())
        x0 = x_all[idx]
        eps = torch.randn(x0.shape, generator=g)
        mu, sd = cfg.logit_normal
        t = torch.sigmoid(mu + sd * torch.randn(cfg.batch_size, generator=g))
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * eps
        return torch.nn.functional.mse_loss(mf.forward(xt, t, text), eps - x0)

    def export(ema: torch.nn.Module, step: int, segments: list[dict]) -> Path:
        meta = {
            "name": "mini-flux",
            "train_steps": step,
            "schedule_segments": segments,
            "corpus_seed": cfg.corpus_seed,
            "corpus_clips": cfg.n_clips,
            "init_seed": cfg.loop.seed,
            "train": {k: v for k, v in cfg.to_dict().items() if k != "model"},
        }
        MiniFlux(ema, model_cfg, meta=meta).save(out / "model.tmp")
        return replace_folder(out / "model.tmp", out / "model")

    train_loop(out, transformer, loss_at, cfg.loop, export, train_config=cfg.to_dict(), log=log)
    return out / "model"
