"""Training recipe of mini-CLAP: symmetric InfoNCE with soft targets on the synthetic corpus.

A caption names only some attributes ("a calm tune played by a piano" says nothing about genre), so every clip in the
batch whose attributes agree with everything a caption names is a positive for it; plain CLIP loss would push those
true matches apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicprobe.models.codec import CodecConfig
from musicprobe.models.miniclap import MiniClap, MiniClapConfig, MiniClapNet

# attributes each caption template of musicprobe.synth.captions names (template index -> label fields)
TEMPLATE_FIELDS = (
    ("mood", "genre", "lead"),
    ("lead", "accomp", "genre"),
    ("genre", "lead", "accomp"),
    ("mood", "lead"),
    ("lead", "genre", "mood"),
)


def cached_pooled(texts: list[str]) -> torch.Tensor:
    """MiniLM sentence vectors of ``texts`` (shares mini-flux training's on-disk text cache)."""
    from musicprobe.models.text import MAX_TOKENS
    from musicprobe.zoo.corpus import cached_text

    return cached_text([*texts, ""], MAX_TOKENS)[1][:-1].float()


def positive_mask(labels: dict[str, list[str]], clip_idx: np.ndarray, template_idx: np.ndarray) -> torch.Tensor:
    """``M[i, j] = 1`` when clip ``j`` has every attribute caption ``i`` (clip_idx[i], template) names."""
    n = len(clip_idx)
    m = np.ones((n, n), dtype=bool)
    for i in range(n):
        for f in TEMPLATE_FIELDS[int(template_idx[i])]:
            vals = np.array([labels[f][int(c)] for c in clip_idx])
            m[i] &= vals == labels[f][int(clip_idx[i])]
    return torch.as_tensor(m, dtype=torch.float32)


def train_miniclap(
    out: str | Path,
    mels: np.ndarray,
    captions: list[list[str]],
    labels: dict[str, list[str]],
    *,
    steps: int = 1000,
    batch_size: int = 48,
    lr: float = 1e-3,
    seed: int = 0,
    codec: CodecConfig | None = None,
    meta: dict | None = None,
    log=print,
) -> MiniClap:
    """Train mini-CLAP on raw log-mels ``(N, n_mels, frames)`` with their captions; saves to ``out``."""
    codec = codec or CodecConfig()
    torch.manual_seed(seed)
    config = MiniClapConfig(codec=codec)
    net = MiniClapNet(config).train()
    x = torch.as_tensor((mels.astype(np.float32) - codec.mel_mean) / codec.mel_std)
    n_caps = len(captions[0])
    pooled = cached_pooled([c for caps in captions for c in caps])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=g).numpy()
        tmpl = rng.integers(n_caps, size=batch_size)
        m = x[idx]
        m = m + 0.3 * torch.randn(batch_size, 1, 1, generator=g) / codec.mel_std * 3  # gain jitter
        m = m + 0.05 * torch.randn(m.shape, generator=g)
        a = nn.functional.normalize(net.audio(m), dim=-1)
        t = nn.functional.normalize(net.text(pooled[idx * n_caps + tmpl]), dim=-1)
        logits = net.logit_scale.exp().clamp(max=100) * t @ a.T  # texts x audios
        pos = positive_mask(labels, idx, tmpl)
        loss_t = -(pos / pos.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
        loss_a = -(pos.T / pos.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
        loss = (loss_t + loss_a) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0:
            log(json.dumps({"step": step + 1, "loss": round(loss.item(), 4)}))
    clap = MiniClap(net.eval(), config, meta={"name": "mini-clap", "train_steps": steps, **(meta or {})})
    clap.save(out)
    return clap
