"""mini-LDM: a small AudioLDM2-class latent diffusion model (diffusers ``UNet2DConditionModel``, epsilon prediction).

What it keeps of AudioLDM2 (``cvssp/audioldm2-music``):

- a 2-D UNet with cross-attention to text in its lower-resolution blocks, predicting the noise ``eps``;
- the DDPM noise schedule of AudioLDM2's scheduler config: ``scaled_linear`` betas from 0.0015 to 0.0195 over
  1000 training timesteps (``alphas_cumprod`` as diffusers computes it);
- classifier-free guidance from condition dropout during training (the empty prompt is the unconditional input).

What it replaces: AudioLDM2's VAE (8 channels over a mel image) and its CLAP/T5/GPT-2 conditioning. The "latent" is
the shared codec's standardised log-mel (64 bins x 320 frames = 5.12 s) folded 4 x 4 into channels
(``pixel_unshuffle``): a ``(16, 16, 80)`` image, lossless and free to train, whose 3 x 3 convolutions still see
local time-frequency neighbourhoods. Text is MiniLM's per-token states (the same encoder as mini-flux), one
cross-attention stream. Audio is decoded by the codec's decoder (the mini-vocoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.models.melmodel import MelModel
from musicprobe.models.text import MAX_TOKENS, TEXT_DIM, TextStates


@dataclass(frozen=True)
class MiniLDMConfig:
    """Architecture of mini-LDM (the arguments of ``UNet2DConditionModel``), its noise schedule and codec."""

    block_out_channels: tuple[int, ...] = (64, 128, 192)
    layers_per_block: int = 1
    attention_heads: int = 4
    fold: int = 4  # fold x fold (mel bins x frames) patches become channels
    num_train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    max_text_tokens: int = MAX_TOKENS
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if self.codec.n_mels % self.fold or self.codec.n_frames % self.fold:
            raise ConfigError(f"fold {self.fold} must divide (n_mels, n_frames)=({self.codec.n_mels}, "
                              f"{self.codec.n_frames})")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError("need 0 < beta_start < beta_end < 1")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.fold
        return (f * f, self.codec.n_mels // f, self.codec.n_frames // f)

    def unet_kwargs(self) -> dict[str, Any]:
        c, h, w = self.latent_shape
        n = len(self.block_out_channels)
        return dict(
            sample_size=(h, w),
            in_channels=c,
            out_channels=c,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            block_out_channels=tuple(self.block_out_channels),
            layers_per_block=self.layers_per_block,
            cross_attention_dim=TEXT_DIM,
            attention_head_dim=self.attention_heads,  # diffusers' legacy name: the number of heads
            norm_num_groups=16,
        )

    def alphas_cumprod(self) -> torch.Tensor:
        """AudioLDM2's ``scaled_linear`` schedule: betas linear in sqrt space."""
        betas = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, self.num_train_timesteps,
                               dtype=torch.float64) ** 2
        return torch.cumprod(1.0 - betas, dim=0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MiniLDMConfig:
        d = dict(d)
        d["codec"] = CodecConfig(**d.get("codec", {}))
        d["block_out_channels"] = tuple(d.get("block_out_channels", (64, 128, 192)))
        return cls(**d)


def build_unet(config: MiniLDMConfig, seed: int = 0) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**config.unet_kwargs())


class FoldedLatent:
    """What the UNet models on the shared codec share (mini-LDM, mini-InstructME): the latent, the standardised
    log-mel folded ``fold x fold`` into channels (``config.fold``, ``config.codec``), and the DDPM schedule
    (``config.alphas_cumprod()``, computed once)."""

    config: Any

    @cached_property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.config.alphas_cumprod()

    @property
    def num_train_timesteps(self) -> int:
        return self.config.num_train_timesteps

    @property
    def x0_range(self) -> tuple[float, float]:
        """The range of the standardised latent: the codec's log-mel floor to ``MEL_PEAK`` (a margin above the
        loudest corpus bin). DDIM sampling clips its clean estimates to it (see ``Sampler.x0_clip``): without it
        mini-LDM's first steps estimate 20-40 standard deviations and its generations peak at 140-600; mini-InstructME's
        edits peak at up to 15."""
        return self.codec.standard_range()

    def mel_to_latent(self, mel: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Standardised log-mel ``(..., n_mels, n_frames)`` -> latent ``(..., C, H, W)`` (4 x 4 fold)."""
        m = torch.as_tensor(np.asarray(mel, dtype=np.float32))
        x = torch.nn.functional.pixel_unshuffle(m.reshape(-1, 1, *m.shape[-2:]), self.config.fold)
        return x.reshape(*m.shape[:-2], *x.shape[-3:])

    def latent_to_mel(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(..., C, H, W)`` -> standardised log-mel ``(..., n_mels, n_frames)``."""
        x = torch.as_tensor(latent, dtype=torch.float32)
        m = torch.nn.functional.pixel_shuffle(x.reshape(-1, *x.shape[-3:]), self.config.fold)
        return m.reshape(*x.shape[:-3], *m.shape[-2:])

    def log_mel(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> un-standardised natural-log mel ``(n_mels, n_frames)``."""
        x = latent[0] if latent.ndim == 4 else latent
        return self.codec.unstandardise(self.latent_to_mel(x.detach().cpu()).numpy())


class MiniLDM(FoldedLatent, MelModel):
    """A loaded mini-LDM, an :class:`~musicprobe.models.protocols.EpsModel`: the UNet plus the codec, the text encoder
    and the noise schedule. ``denoiser`` (= ``unet``) is a stock ``UNet2DConditionModel``, so
    ``Probe(mldm.denoiser)`` uses the UNet adapter (names ``down.1.layer0.cross_attn`` ...)."""

    family = "unet"
    label = "mini-LDM"
    config_class = MiniLDMConfig
    build = staticmethod(build_unet)

    def __init__(self, unet: torch.nn.Module, config: MiniLDMConfig, meta: dict | None = None, vocoder=None):
        super().__init__(config, meta, vocoder)
        self.unet = unet.eval()

    # ---- protocol members ---------------------------------------------------------------------------------
    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    @property
    def weights_module(self) -> torch.nn.Module:
        return self.unet

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Audio at rate ``sr`` -> latent ``(1, 16, 16, 80)``."""
        return self.mel_to_latent(self.codec.mel(audio, sr))[None]

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> audio (the codec's decoder), ``n_samples`` long."""
        if not torch.isfinite(torch.as_tensor(latent)).all():
            from musicprobe.errors import AudioError

            raise AudioError("decode: the latent contains NaN or infinite values")
        return self.codec.decode_mel(self.log_mel(latent))

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(batch, *self.config.latent_shape, generator=g)

    # ---- the network ----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor | int, text: TextStates) -> torch.Tensor:
        """One UNet call: predicted noise for latents ``x`` (B, C, H, W) at timesteps ``t`` under ``text``."""
        b = x.shape[0]
        t = torch.as_tensor(t).reshape(-1).expand(b)
        return self.unet(
            x,
            t,
            encoder_hidden_states=text.tokens.to(x.dtype),
            encoder_attention_mask=text.mask.to(x.dtype),
            return_dict=False,
        )[0]

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: int, prompt: Any, guidance: float = 1.0, negative: str = "") -> torch.Tensor:
        """Noise prediction with classifier-free guidance ``e_u + guidance (e_c - e_u)``; one batched call."""
        return self.guided(self.forward, x, t, prompt, guidance, negative)
