"""mini-CLAP: a contrastive audio-text model trained on the synthetic corpus (offline CLAP score and FAD embeddings).

- audio tower: a 1-D convolutional net over the standardised log-mel of :mod:`musicprobe.models.codec` (frequency
  bins are channels, convolution runs over time), mean+max pooled over time, projected to ``dim``;
- text tower: the frozen MiniLM sentence vector, through a two-layer MLP to ``dim``;
- trained with a soft-target InfoNCE (:mod:`musicprobe.zoo.train_clap`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicprobe.models.codec import CodecConfig, MelCodec
from musicprobe.models.text import TEXT_DIM, encode_text
from musicprobe.models.weights import read_weights, save_weights


@dataclass(frozen=True)
class MiniClapConfig:
    dim: int = 256
    channels: tuple[int, ...] = (64, 128, 128)
    time_pool: int = 2  # average-pool frames before the convolutions (64 ms -> 32 ms hop is plenty for timbre/rhythm)
    codec: CodecConfig = CodecConfig()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MiniClapConfig:
        return cls(d["dim"], tuple(d["channels"]), d.get("time_pool", 1), CodecConfig(**d["codec"]))


class AudioTower(nn.Module):
    def __init__(self, n_mels: int, channels: tuple[int, ...], dim: int, time_pool: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.AvgPool1d(time_pool)] if time_pool > 1 else []
        layers += [nn.Conv1d(n_mels, channels[0], 5, padding=2), nn.GELU()]
        prev = channels[0]
        for c in channels:
            layers += [nn.Conv1d(prev, c, 5, stride=2, padding=2), nn.GroupNorm(8, c), nn.GELU()]
            prev = c
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(2 * prev, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, n_mels, frames)
        h = self.conv(mel)
        return self.proj(torch.cat([h.mean(-1), h.amax(-1)], -1))

    def feature_maps(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """The activations ``(B, C, frames')`` after each convolution's non-linearity (the LPAPS stand-in's view)."""
        maps, h = [], mel
        for layer in self.conv:
            h = layer(h)
            if isinstance(layer, nn.GELU):
                maps.append(h)
        return maps


class MiniClapNet(nn.Module):
    def __init__(self, config: MiniClapConfig):
        super().__init__()
        self.audio = AudioTower(config.codec.n_mels, config.channels, config.dim, config.time_pool)
        self.text = nn.Sequential(nn.Linear(TEXT_DIM, config.dim), nn.GELU(), nn.Linear(config.dim, config.dim))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))


class MiniClap:
    """Embeds audio and text into one space; ``score(audio, text)`` is their cosine similarity."""

    name = "mini-clap"

    def __init__(self, net: MiniClapNet, config: MiniClapConfig, meta: dict | None = None):
        self.net = net.eval()
        self.config = config
        self.codec = MelCodec(config.codec)
        self.meta = dict(meta or {})

    @torch.no_grad()
    def embed_mel(self, mels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Standardised log-mels ``(B, n_mels, n_frames)`` -> unit embeddings ``(B, dim)``."""
        m = torch.as_tensor(np.asarray(mels, dtype=np.float32))
        return nn.functional.normalize(self.net.audio(m), dim=-1)

    def mels(self, audios: list[np.ndarray] | np.ndarray, sr: int) -> np.ndarray:
        """Standardised log-mels of mono clips at rate ``sr`` (resampled to the codec's rate first, as LAION
        CLAP's wrapper does, so both judges take audio at any model's rate)."""
        from musicprobe.audio.io import resample

        if isinstance(audios, np.ndarray) and audios.ndim == 1:
            audios = [audios]
        rate = self.codec.config.sr
        return np.stack([self.codec.mel(resample(a, int(sr), rate), rate) for a in audios])

    def embed_audio(self, audios: list[np.ndarray] | np.ndarray, sr: int) -> torch.Tensor:
        return self.embed_mel(self.mels(audios, sr))

    @torch.no_grad()
    def feature_maps(self, audios: list[np.ndarray] | np.ndarray, sr: int) -> list[torch.Tensor]:
        """Per-layer audio-tower activations ``(B, C, T)`` of each clip (see :mod:`musicprobe.metrics.perceptual`)."""
        return self.net.audio.feature_maps(torch.as_tensor(self.mels(audios, sr)))

    @torch.no_grad()
    def embed_text(self, texts: list[str] | str) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return nn.functional.normalize(self.net.text(encode_text(texts).pooled), dim=-1)

    def save(self, folder: str | Path) -> Path:
        return save_weights(folder, self.net, self.config.to_dict(), self.meta)

    @classmethod
    def load(cls, folder: str | Path) -> MiniClap:
        config, meta, state = read_weights(folder, "mini-CLAP")
        cfg = MiniClapConfig.from_dict(config)
        net = MiniClapNet(cfg)
        net.load_state_dict(state)
        return cls(net, cfg, meta=meta)
