"""Audio <-> model-space codec of the mini models: normalised log-mel frames grouped into tokens.

The mini models have no learned autoencoder. Their "latent" is the log-mel spectrogram (16 kHz, n_fft 1024,
hop 256, 64 bins; natural log with a 1e-5 floor, as AudioLDM2), standardised with corpus statistics, and cut
into tokens of ``frames_per_token`` consecutive frames (token channels = frames_per_token * n_mels, the way
FluxMusic packs 2x2 VAE-latent patches). Decoding inverts the standardisation and runs a decoder:

- ``"vocoder"``: the trained mini-vocoder (:mod:`musicprobe.models.vocoder`), the default whenever the codec has
  one (models loaded from the zoo get it);
- ``"griffin-lim"``: mel pseudo-inverse + Griffin-Lim (32 iterations), the fallback that reproduces results made
  before the vocoder existed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from musicprobe.audio.features import LOG_FLOOR, MelConfig, log_mel, mel_to_audio
from musicprobe.audio.io import trim_or_pad, validate_audio
from musicprobe.errors import AudioError, ConfigError, check_known


@dataclass(frozen=True)
class CodecConfig:
    sr: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    n_frames: int = 320  # 5.12 s
    frames_per_token: int = 4  # 64 ms per token; 80 audio tokens per clip
    mel_mean: float = -5.0
    mel_std: float = 3.0

    def __post_init__(self) -> None:
        if self.n_frames % self.frames_per_token:
            raise ConfigError(
                f"n_frames={self.n_frames} must be a multiple of frames_per_token={self.frames_per_token}"
            )
        if self.mel_std <= 0:
            raise ConfigError("mel_std must be positive")

    @property
    def mel(self) -> MelConfig:
        return MelConfig(sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels)

    @property
    def n_samples(self) -> int:
        return self.n_frames * self.hop_length

    @property
    def n_tokens(self) -> int:
        return self.n_frames // self.frames_per_token

    @property
    def token_dim(self) -> int:
        return self.n_mels * self.frames_per_token

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sr

    def to_dict(self) -> dict:
        return asdict(self)


MEL_CEILING = 6.0  # the loudest log-mel the decoders are handed (natural log of a magnitude)
MEL_PEAK = 1.5  # the top of the data range: the corpus's loudest log-mel bin is about 1.0 (1.01 over 60 clips)

DECODERS = ("vocoder", "griffin-lim")


class MelCodec:
    """Encode audio to ``(tokens, channels)`` arrays and decode them back (see module docstring).

    ``vocoder``: an object with ``decode(logmel) -> audio`` (a :class:`~musicprobe.models.vocoder.MiniVocoder`);
    ``decoder``: ``"vocoder"`` (default when a vocoder is given) or ``"griffin-lim"``.
    """

    def __init__(self, config: CodecConfig = CodecConfig(), vocoder=None, decoder: str | None = None):
        self.config = config
        self.vocoder = vocoder
        self.decoder = decoder or ("vocoder" if vocoder is not None else "griffin-lim")

    @property
    def decoder(self) -> str:
        """Which decoder ``decode`` uses: ``"vocoder"`` or ``"griffin-lim"`` (settable)."""
        return self._decoder

    @decoder.setter
    def decoder(self, name: str) -> None:
        check_known("decoder", name, DECODERS)
        if name == "vocoder" and self.vocoder is None:
            raise ConfigError("this codec has no vocoder: load the model from the zoo, or use decoder='griffin-lim'")
        self._decoder = name

    def mel(self, audio: np.ndarray, sr: int | None = None) -> np.ndarray:
        """Standardised log-mel ``(n_mels, n_frames)``; audio is trimmed or zero-padded to the model's length."""
        c = self.config
        sr = c.sr if sr is None else sr
        if sr != c.sr:
            raise AudioError(f"the mini models expect {c.sr} Hz audio, got {sr} Hz (resample with musicprobe.audio)")
        y = validate_audio(audio, sr, mono=True)
        y = trim_or_pad(y, c.n_samples)
        m = log_mel(y, c.mel)[:, : c.n_frames]
        return ((m - c.mel_mean) / c.mel_std).astype(np.float32)

    def mel_to_tokens(self, mel: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(..., n_mels, n_frames)`` -> ``(..., n_tokens, frames_per_token * n_mels)``."""
        c = self.config
        m = torch.as_tensor(mel, dtype=torch.float32)
        lead = m.shape[:-2]
        m = m.reshape(*lead, c.n_mels, c.n_tokens, c.frames_per_token)
        return m.movedim(-3, -1).reshape(*lead, c.n_tokens, c.token_dim)

    def tokens_to_mel(self, tokens: torch.Tensor) -> torch.Tensor:
        c = self.config
        t = torch.as_tensor(tokens, dtype=torch.float32)
        lead = t.shape[:-2]
        t = t.reshape(*lead, c.n_tokens, c.frames_per_token, c.n_mels)
        return t.movedim(-1, -3).reshape(*lead, c.n_mels, c.n_frames)

    def encode(self, audio: np.ndarray, sr: int | None = None) -> torch.Tensor:
        """Audio -> ``(1, n_tokens, token_dim)`` latent tokens."""
        return self.mel_to_tokens(self.mel(audio, sr))[None]

    def log_mel(self, tokens: torch.Tensor) -> np.ndarray:
        """Latent tokens ``(n_tokens, dim)`` or ``(1, n_tokens, dim)`` -> un-standardised log-mel."""
        t = tokens[0] if tokens.ndim == 3 else tokens
        return self.unstandardise(self.tokens_to_mel(t.detach().cpu()).numpy())

    def unstandardise(self, m: np.ndarray) -> np.ndarray:
        """Standardised log-mel -> natural-log mel within what the decoders are handed (floor to ``MEL_CEILING``)."""
        return np.clip(m * self.config.mel_std + self.config.mel_mean, np.log(LOG_FLOOR), MEL_CEILING)

    def standard_range(self) -> tuple[float, float]:
        """The data's range in standardised units: the log-mel floor to ``MEL_PEAK``."""
        c = self.config
        return float((np.log(LOG_FLOOR) - c.mel_mean) / c.mel_std), float((MEL_PEAK - c.mel_mean) / c.mel_std)

    def decode(self, tokens: torch.Tensor, decoder: str | None = None) -> np.ndarray:
        """Latent tokens -> audio, ``n_samples`` long, with ``decoder`` (default: the codec's ``decoder``)."""
        if not torch.isfinite(torch.as_tensor(tokens)).all():
            raise AudioError("decode: the latent contains NaN or infinite values")
        return self.decode_mel(self.log_mel(tokens), decoder)

    def decode_mel(self, logmel: np.ndarray, decoder: str | None = None, n_samples: int | None = None) -> np.ndarray:
        """Un-standardised log-mel ``(n_mels, frames)`` -> audio, ``n_samples`` long (default: the codec's window)."""
        name = check_known("decoder", decoder, DECODERS) if decoder else self.decoder
        if name == "vocoder":
            if self.vocoder is None:
                raise ConfigError("this codec has no vocoder: use decoder='griffin-lim'")
            y = self.vocoder.decode(logmel)
        else:
            y = mel_to_audio(logmel, self.config.mel, n_iter=32, seed=0)
        return trim_or_pad(y, n_samples or self.config.n_samples).astype(np.float32)
