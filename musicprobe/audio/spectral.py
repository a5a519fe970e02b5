"""Differentiable spectral features and distances in torch (vocoder training and the vocoder benchmark).

``torch_log_mel`` equals :func:`musicprobe.audio.features.log_mel` (librosa's centred, zero-padded STFT, Slaney mel
basis, magnitude, ``log(max(mel, 1e-5))``) to float precision, so a loss on it optimises the codec's own view.
The multi-resolution STFT distance is the sum over resolutions of spectral convergence and log-magnitude L1
(Yamamoto et al., Parallel WaveGAN, 2020), the definition ``auraloss.freq.MultiResolutionSTFTLoss`` uses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from musicprobe.audio.features import LOG_FLOOR, MelConfig, _mel_basis

RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


@lru_cache(maxsize=8)
def _window(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft)


def stft_magnitude(y: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``|STFT|`` ``(..., n_fft // 2 + 1, frames)`` with librosa's defaults (centred, zero padding, periodic Hann)."""
    lead = y.shape[:-1]
    spec = torch.stft(
        y.reshape(-1, y.shape[-1]), n_fft, hop, n_fft, window=_window(n_fft).to(y.device), center=True,
        pad_mode="constant", return_complex=True,
    )
    return spec.abs().reshape(*lead, *spec.shape[-2:])


def torch_log_mel(y: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Natural-log mel ``(..., n_mels, frames)`` of audio ``(..., samples)``; equals ``features.log_mel``."""
    basis = torch.as_tensor(np.asarray(_mel_basis(cfg)), dtype=y.dtype, device=y.device)
    mel = basis @ stft_magnitude(y, cfg.n_fft, cfg.hop_length)
    return torch.log(mel.clamp(min=LOG_FLOOR))


def mrstft_distance(
    y_hat: torch.Tensor, y: torch.Tensor, resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS
) -> torch.Tensor:
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1, summed over resolutions)."""
    total = y.new_zeros(())
    for n_fft, hop in resolutions:
        s_hat, s = stft_magnitude(y_hat, n_fft, hop), stft_magnitude(y, n_fft, hop)
        sc = torch.linalg.norm(s - s_hat, dim=(-2, -1)) / torch.linalg.norm(s, dim=(-2, -1)).clamp(min=1e-7)
        mag = (torch.log(s.clamp(min=LOG_FLOOR)) - torch.log(s_hat.clamp(min=LOG_FLOOR))).abs().mean(dim=(-2, -1))
        total = total + (sc + mag).mean()
    return total


def mel_projection(y: torch.Tensor, target_logmel: torch.Tensor, cfg: MelConfig, iters: int = 2) -> torch.Tensor:
    """Rescale the STFT of ``y`` so that its mel matches ``target_logmel``, keeping its phase; ``iters`` passes.

    Each pass measures the mel of ``y`` (``(..., n_mels, frames)`` like ``torch_log_mel``), turns the per-band
    gains ``exp(target - measured)`` into per-frequency gains through the mel filterbank (a weighted average of
    the bands each bin belongs to) and resynthesises. The first output frame beyond the target's frames reuses
    the last target frame. It corrects level and spectral-envelope errors of a decoder without touching its
    phase; a DSP step, not learned.
    """
    basis = torch.as_tensor(np.asarray(_mel_basis(cfg)), dtype=y.dtype, device=y.device)  # (n_mels, bins)
    cover = basis.sum(0)  # (bins,)
    weights = (basis / cover.clamp(min=1e-8)).T  # (bins, n_mels): each bin averages the bands it lies in
    window = _window(cfg.n_fft).to(y.device)
    length = y.shape[-1]
    lead = y.shape[:-1]
    y = y.reshape(-1, length)
    target = torch.as_tensor(target_logmel, dtype=y.dtype, device=y.device).reshape(y.shape[0], cfg.n_mels, -1)
    for _ in range(iters):
        spec = torch.stft(y, cfg.n_fft, cfg.hop_length, cfg.n_fft, window=window, center=True, pad_mode="constant",
                          return_complex=True)
        frames = spec.shape[-1]
        tgt = target[..., :frames]
        if tgt.shape[-1] < frames:
            tgt = torch.cat([tgt, tgt[..., -1:].expand(*tgt.shape[:-1], frames - tgt.shape[-1])], -1)
        measured = torch.log((basis @ spec.abs()).clamp(min=LOG_FLOOR))
        gain = weights @ torch.exp(tgt - measured)  # (B, bins, frames)
        gain = torch.where(cover[:, None] > 0, gain, torch.ones_like(gain))
        y = torch.istft(spec * gain, cfg.n_fft, cfg.hop_length, cfg.n_fft, window=window, center=True, length=length)
    return y.reshape(*lead, length)
