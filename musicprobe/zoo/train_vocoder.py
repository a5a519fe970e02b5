"""Training recipe of mini-vocoder: log-mel -> audio on the synthetic corpus's waveforms.

Each step draws ``batch_size`` random segments of ``segment`` samples from the training clips (corpus seed 7, the
clips mini-flux saw), applies a random gain (so the vocoder follows loudness instead of memorising it), computes
their codec log-mel in torch and asks the vocoder to return the waveform. Loss: log-mel L1 on the codec's 64-bin mel
plus a finer 128-bin mel (detail above what the codec keeps is what makes audio sound clean) plus the
multi-resolution STFT distance. No adversarial term: on 2 CPU cores it would halve the steps we can afford, and the
benchmark (``musicprobe bench vocoder``) measures whether the result is good enough without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicprobe.audio.features import MelConfig
from musicprobe.audio.spectral import mrstft_distance, torch_log_mel
from musicprobe.models.codec import CodecConfig
from musicprobe.models.vocoder import MiniVocoder, VocoderConfig, VocosNet
from musicprobe.zoo.corpus import cached_audio
from musicprobe.zoo.trainer import CorpusTrainConfig, LoopConfig, export_model, provenance_meta, train_loop


@dataclass
class VocoderTrainConfig(CorpusTrainConfig):
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=12000, lr=5e-4, warmup=300, ema_decay=0.998))
    segment: int = 16384  # samples (1.02 s, 64 frames)
    gain_db: tuple[float, float] = (-9.0, 3.0)
    fine_mels: int = 128
    model: VocoderConfig = field(default_factory=VocoderConfig)


def train_minivocoder(out: str | Path, cfg: VocoderTrainConfig | None = None, log=print) -> Path:
    """Train (or resume) mini-vocoder in ``out``; returns the exported model folder ``out/model``."""
    cfg = cfg or VocoderTrainConfig()
    out = Path(out)
    mc = cfg.model
    codec = CodecConfig(sr=mc.sr, n_fft=mc.n_fft, hop_length=mc.hop_length, n_mels=mc.n_mels)
    audio = torch.from_numpy(cached_audio(cfg.n_clips, cfg.corpus_seed, codec, workers=cfg.workers))
    log(f"audio corpus: {tuple(audio.shape)} float16")
    coarse = codec.mel
    fine = MelConfig(sr=mc.sr, n_fft=2048, hop_length=mc.hop_length, n_mels=cfg.fine_mels)
    net = VocosNet(mc)
    log(f"mini-vocoder: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters")
    n, length = audio.shape
    lo, hi = cfg.gain_db

    def loss_at(step: int, g: torch.Generator):
        idx = torch.randint(n, (cfg.batch_size,), generator=g)
        off = torch.randint(length - cfg.segment, (cfg.batch_size,), generator=g)
        y = torch.stack([audio[i, o : o + cfg.segment] for i, o in zip(idx.tolist(), off.tolist())]).float()
        gain = 10 ** ((lo + (hi - lo) * torch.rand(cfg.batch_size, 1, generator=g)) / 20)
        y = (y * gain).clamp(-1, 1)
        mel = torch_log_mel(y, coarse)
        y_hat = net(mel)
        y = y[:, : y_hat.shape[-1]]
        l_mel = (torch_log_mel(y_hat, coarse) - mel).abs().mean()
        l_fine = (torch_log_mel(y_hat, fine) - torch_log_mel(y, fine)).abs().mean()
        l_stft = mrstft_distance(y_hat, y)
        return l_mel + l_fine + l_stft, {"mel_l1": l_mel.item(), "fine_mel_l1": l_fine.item(), "mrstft": l_stft.item()}

    def export(ema: torch.nn.Module, step: int, segments: list[dict]) -> Path:
        return export_model(out, MiniVocoder(ema, meta=provenance_meta("mini-vocoder", cfg, step, segments)))

    torch.manual_seed(cfg.loop.seed)
    train_loop(out, net, loss_at, cfg.loop, export, train_config=cfg.to_dict(), log=log)
    return out / "model"

