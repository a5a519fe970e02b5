"""AudioLDM2 (``diffusers.AudioLDM2Pipeline``; the base of SteerMusic, ZETA, SDEdit and DDIM editing) behind the
epsilon protocol.

What runs where:

- **Audio in**: mono at the vocoder's rate (16 kHz for the real model). The pipeline has no audio-encoding path, so
  the backend follows the reference editing code (AudioLDM's ``wav2fbank`` as ZETA and SteerMusic use it): the
  clip's mean is removed and its peak scaled to 0.5, then a log-mel of the real model's settings (n_fft 1024, hop =
  the vocoder's upsampling, 64 Slaney mel bands up to sr / 2, magnitude, ``log(max(x, 1e-5))``) laid out
  ``(1, 1, frames, 64)`` goes through the VAE (posterior mean, times ``scaling_factor``).
- **Audio out**: the VAE's mel through the HiFi-GAN vocoder (``mel_spectrogram_to_waveform``), as the pipeline.
- **Window**: ``seconds`` (default: what the pipeline generates by default, ``unet.sample_size x vae scale x hop /
  sr``, 10.24 s for the real model) rounded up to the VAE's frame multiple; shorter clips are padded and the edit
  trimmed back.
- **Text**: the pipeline's own ``encode_prompt`` (CLAP + T5 through the projection model, then 8 GPT-2 states) with
  classifier-free guidance, so each prompt's unconditional branch is the pipeline's (the empty prompt, its T5
  tokens padded to the prompt's length). Rows with T5 sequences of different lengths are padded and masked.
- **Network**: one UNet call with both cross-attention streams (GPT-2 states, T5 states + mask); a v-prediction
  checkpoint is converted to epsilon. **Sampler**: musicprobe's DDIM / DDPM layer on the pipeline scheduler's
  ``alphas_cumprod`` and timestep spacing (``ddim_timesteps``). One difference from the stock ``DDIMScheduler``
  with ``set_alpha_to_one=False`` (the real configs): its last step lands on ``alphas_cumprod[0]`` (a trace of
  noise left), ours on the clean estimate; with ``set_alpha_to_one=True`` the two agree (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.backends.base import PipelineBackend
from musicprobe.models.prompt_rows import PromptRows


@dataclass
class LDM2Conditioning(PromptRows):
    """Prompt states of AudioLDM2, with the pipeline's unconditional row of each prompt kept beside it.

    ``t5`` (B, L, d) and ``mask`` (B, L): the second cross-attention stream; ``gpt`` (B, 8, d'): the first;
    ``uncond``: the same for the unconditional branch (``None`` once taken)."""

    t5: torch.Tensor
    mask: torch.Tensor
    gpt: torch.Tensor
    uncond: LDM2Conditioning | None = None

    def unconditional(self) -> LDM2Conditioning:
        if self.uncond is None:
            raise ConfigError("these prompt states have no unconditional branch")
        return self.uncond


class AudioLDM2Codec:
    """AudioLDM2's audio path (the module docstring's "Audio in" / "Audio out" / "Window"), shared by the AudioLDM2
    and FluxMusic backends: ``self.pipe`` has ``vae`` (mel VAE) and ``vocoder`` (HiFi-GAN); ``self.seconds`` is the
    window."""

    pipe: Any
    seconds: float
    _mel_basis: torch.Tensor | None = None

    @property
    def sr(self) -> int:
        return int(self.pipe.vocoder.config.sampling_rate)

    @property
    def hop(self) -> int:
        return int(np.prod(self.pipe.vocoder.config.upsample_rates))

    @property
    def n_mels(self) -> int:
        return int(self.pipe.vocoder.config.model_in_dim)

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.pipe.vae.config.block_out_channels) - 1)

    @property
    def frames(self) -> int:
        """Mel frames of the window (a multiple of the VAE's scale, as the pipeline rounds ``height``)."""
        f = self.vae_scale
        return int(np.ceil(round(self.seconds * self.sr / self.hop) / f)) * f

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.sr))

    def reference_mel(self, audio: np.ndarray) -> torch.Tensor:
        """The reference's log-mel of mono audio at ``sr``: ``(frames, n_mels)`` over the window."""
        import librosa

        y = np.asarray(audio, dtype=np.float64)
        y = y.mean(axis=0) if y.ndim == 2 else y
        y = y - y.mean()  # the clip itself is normalised, then padded to the window (as wav2fbank)
        peak = np.abs(y).max(initial=0.0)
        if peak > 0:
            y = 0.5 * y / peak
        y = self.window(y, self.n_samples, 1)[0, 0].double()
        if self._mel_basis is None:
            self._mel_basis = torch.from_numpy(librosa.filters.mel(sr=self.sr, n_fft=1024, n_mels=self.n_mels,
                                                                   fmin=0.0, fmax=self.sr / 2)).double()
        spec = torch.stft(y, 1024, self.hop, 1024, window=torch.hann_window(1024, dtype=torch.float64),
                          center=True, pad_mode="reflect", return_complex=True).abs()
        mel = torch.log(torch.clamp(self._mel_basis @ spec, min=1e-5)).T.float()
        out = torch.full((self.frames, self.n_mels), float(np.log(1e-5)))
        n = min(self.frames, mel.shape[0])
        out[:n] = mel[:n]
        return out

    @torch.no_grad()
    def vae_latent(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Mono audio at ``sr`` (= the vocoder's rate) -> VAE latent ``(1, C, frames / f, n_mels / f)``, scaled."""
        self.check_rate(sr)
        mel = self.reference_mel(audio)[None, None].to(self.device, self.dtype)
        z = self.pipe.vae.encode(mel).latent_dist.mean
        return (z * self.pipe.vae.config.scaling_factor).float()

    @torch.no_grad()
    def vae_mel(self, latent: torch.Tensor) -> torch.Tensor:
        """VAE latent -> the VAE's log-mel ``(1, frames, n_mels)``."""
        z = latent if latent.ndim == 4 else latent[None]
        z = (z / self.pipe.vae.config.scaling_factor).to(self.device, self.dtype)
        return self.pipe.vae.decode(z).sample[:, 0]

    @torch.no_grad()
    def vae_audio(self, latent: torch.Tensor) -> np.ndarray:
        """VAE latent -> mel -> HiFi-GAN -> mono audio over the window."""
        wave = self.pipe.vocoder(self.vae_mel(latent))[0].float().cpu()
        return wave[: self.n_samples].numpy().astype(np.float32)

    def latent_noise(self, seed: int, batch: int, channels: int) -> torch.Tensor:
        f = self.vae_scale
        shape = (batch, channels, self.frames // f, self.n_mels // f)
        return torch.randn(shape, generator=self.generator(seed)).to(self.device)


class AudioLDM2Backend(AudioLDM2Codec, PipelineBackend):
    """An ``AudioLDM2Pipeline`` as an :class:`~musicprobe.models.protocols.EpsModel` (see the module docstring)."""

    kind = "audioldm2"
    label = "AudioLDM2"
    family = "audioldm2"
    pipeline_class = "diffusers:AudioLDM2Pipeline"
    default_source = "cvssp/audioldm2-music"

    def __init__(self, pipe, *, source: str = "built in memory", device=None, dtype=None,
                 seconds: float | None = None):
        super().__init__(pipe, source=source, device=device, dtype=dtype)
        default = self.pipe.unet.config.sample_size * self.vae_scale * self.hop / self.sr
        self.seconds = float(default if seconds is None else seconds)
        if self.seconds < 0.5:
            raise ConfigError(f"seconds must be at least 0.5, got {seconds}")

    @property
    def max_text_tokens(self) -> int:
        return int(getattr(self.pipe.tokenizer_2, "model_max_length", 0) or 0)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.pipe.unet

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.pipe.scheduler.alphas_cumprod.float()

    @property
    def num_train_timesteps(self) -> int:
        return int(self.pipe.scheduler.config.num_train_timesteps)

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Mono audio at ``sr`` (= the vocoder's rate) -> latent ``(1, C, frames / f, n_mels / f)``."""
        return self.vae_latent(audio, sr)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        return self.vae_audio(latent)

    def log_mel(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> natural-log mel ``(n_mels, frames)`` (the VAE's; what the vocoder decodes)."""
        return self.vae_mel(latent)[0].T.float().cpu().numpy()

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        return self.latent_noise(seed, batch, int(self.pipe.unet.config.in_channels))

    def ddim_timesteps(self, steps: int) -> np.ndarray:
        """The pipeline scheduler's timesteps for ``steps`` steps (its spacing and offset), high to low."""
        if not 1 <= steps <= self.num_train_timesteps:
            raise ConfigError(f"steps must be in 1..{self.num_train_timesteps}, got {steps}")
        sched = type(self.pipe.scheduler).from_config(self.pipe.scheduler.config)
        sched.set_timesteps(steps)
        return sched.timesteps.cpu().numpy().astype(np.int64)

    # ---- text ---------------------------------------------------------------------------------------------
    def encode_one(self, prompt: str) -> LDM2Conditioning:
        """The pipeline's conditioning of one prompt, with its unconditional row."""
        t5, mask, gpt = self.pipe.encode_prompt(prompt, self.device, 1, True)
        return LDM2Conditioning(t5[1:], mask[1:], gpt[1:], LDM2Conditioning(t5[:1], mask[:1], gpt[:1]))

    # ---- the network ----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: int, states: LDM2Conditioning) -> torch.Tensor:
        """Epsilon at latents ``x`` (B, ...) and training timestep ``t`` (one UNet call, no guidance)."""
        out = self.pipe.unet(
            x.to(self.device, self.dtype),
            torch.as_tensor(t, device=self.device),
            encoder_hidden_states=states.gpt,
            encoder_hidden_states_1=states.t5,
            encoder_attention_mask_1=states.mask,
            return_dict=False,
        )[0].float()
        if self.pipe.scheduler.config.prediction_type == "v_prediction":
            a = self.alphas_cumprod[int(t)].to(out.device)
            out = a.sqrt() * out + (1 - a).sqrt() * x.float()
        return out

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: int, prompt, guidance: float = 1.0) -> torch.Tensor:
        """Epsilon with the pipeline's classifier-free guidance (``[uncond ; cond]`` in one call)."""
        b = x.shape[0]
        cond = self.encode_prompt(prompt).rows(b)
        if guidance == 1.0:
            return self.forward(x, t, cond)
        both = LDM2Conditioning.cat([cond.unconditional(), cond])
        out_u, out_c = self.forward(torch.cat([x, x]), t, both).chunk(2)
        return out_u + guidance * (out_c - out_u)
