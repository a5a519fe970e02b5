"""Training of mini-flux on the synthetic corpus: rectified flow, logit-normal times, condition dropout, EMA.

Reproducible: fixed seeds for the corpus, the initialisation and the batch order; the run folder keeps a
resumable checkpoint (``checkpoint.pt``), the loss curve (``loss.jsonl``) and, on export, the EMA weights with their
config, corpus seed and step count (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.zoo.codec import CodecConfig
from musicprobe.zoo.corpus import TRAIN_SEED, cached_corpus
from musicprobe.zoo.miniflux import MiniFlux, MiniFluxConfig, build_transformer
from musicprobe.zoo.text import encode_text


@dataclass
class FluxTrainConfig:
    steps: int = 6000
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.01
    cond_dropout: float = 0.1
    logit_normal: tuple[float, float] = (0.0, 1.0)  # mean, std of logit(t)
    ema_decay: float = 0.999
    n_clips: int = 2400
    corpus_seed: int = TRAIN_SEED
    seed: int = 0
    checkpoint_every: int = 250
    workers: int = 2
    model: MiniFluxConfig = field(default_factory=MiniFluxConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.n_clips < self.batch_size:
            raise ConfigError("steps, batch_size must be >= 1 and n_clips >= batch_size")
        if not 0 <= self.cond_dropout < 1:
            raise ConfigError("cond_dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


def cached_text(texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MiniLM token states and pooled vectors (float16), cached on disk by content (minutes of CPU otherwise)."""
    import hashlib

    from musicprobe.cache import cache_dir

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


def _lr_at(step: int, cfg: FluxTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train_miniflux(out: str | Path, cfg: FluxTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-flux in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or FluxTrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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

    transformer = build_transformer(model_cfg, seed=cfg.seed).train()
    mf = MiniFlux(transformer, model_cfg)
    x_all = mf.codec.mel_to_tokens((mels - mean) / std)
    ema = copy.deepcopy(transformer).eval().requires_grad_(False)
    opt = torch.optim.AdamW(transformer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    segments: list[dict] = []
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        transformer.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        segments = state.get("segments") or _first_segment(out, start)
        log(f"resumed at step {start}")
    segments = _extend_segments(segments, start, cfg.steps)
    (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    from musicprobe.zoo.text import TextStates

    t0 = time.time()
    losses: list[float] = []
    for step in range(start, cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
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
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        v = mf.forward(xt, t, text)
        loss = torch.nn.functional.mse_loss(v, eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), transformer.parameters()):
                pe.lerp_(p, 1 - d)
        losses.append(loss.item())
        done = step + 1
        if done % 50 == 0:
            rec = {"step": done, "loss": float(np.mean(losses)), "lr": _lr_at(step, cfg), "sec": time.time() - t0}
            with open(out / "loss.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(json.dumps(rec))
            losses = []
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            tmp = out / "checkpoint.tmp"
            torch.save(
                {
                    "model": transformer.state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "step": done,
                    "segments": segments,
                },
                tmp,
            )
            tmp.replace(ckpt)
            export(out, ema, model_cfg, cfg, done, segments)
    return out / "model"


def _first_segment(out: Path, start: int) -> list[dict]:
    """The schedule of a checkpoint written before segments were recorded (read from its train_config.json)."""
    old = out / "train_config.json"
    planned = json.loads(old.read_text())["steps"] if old.exists() else start
    return [{"from_step": 0, "to_step": start, "schedule_steps": planned}]


def _extend_segments(segments: list[dict], start: int, planned: int) -> list[dict]:
    """Record that steps ``start..planned`` follow a learning-rate schedule planned over ``planned`` steps.

    A run resumed with a longer ``steps`` continues the cosine schedule of the new length (a gentle warm
    restart); the segments keep that history in the exported weights' provenance.
    """
    kept = [dict(s) for s in segments if s["from_step"] < start]
    if kept and kept[-1]["schedule_steps"] == planned:
        kept[-1]["to_step"] = planned  # a plain resume of the same schedule
        return kept
    if kept:
        kept[-1]["to_step"] = start
    if start < planned:
        kept.append({"from_step": start, "to_step": planned, "schedule_steps": planned})
    return kept


def export(
    out: Path,
    ema: torch.nn.Module,
    model_cfg: MiniFluxConfig,
    cfg: FluxTrainConfig,
    step: int,
    segments: list[dict] | None = None,
) -> Path:
    """Write the EMA weights with their provenance to ``out/model`` (atomically replacing the previous export)."""
    meta = {
        "name": "mini-flux",
        "train_steps": step,
        "schedule_segments": segments or [{"from_step": 0, "to_step": step, "schedule_steps": cfg.steps}],
        "corpus_seed": cfg.corpus_seed,
        "corpus_clips": cfg.n_clips,
        "init_seed": cfg.seed,
        "train": {k: v for k, v in cfg.to_dict().items() if k != "model"},
    }
    tmp = out / "model.tmp"
    MiniFlux(ema, model_cfg, meta=meta).save(tmp)
    final = out / "model"
    if final.exists():
        import shutil

        shutil.rmtree(final)
    tmp.replace(final)
    return final
