"""mini-InstructME: an instruction-trained latent diffusion editor (InstructME's architecture class, small).

The latent is mini-LDM's: the shared codec's standardised log-mel folded 4 x 4 into channels, a ``(16, 16, W)``
image with ``W = frames / 4`` (any length whose frame count is a multiple of 16; :meth:`MiniInstructME.encode`
pads). The denoiser is a stock diffusers ``UNet2DConditionModel`` (epsilon prediction, AudioLDM2's
``scaled_linear`` DDPM schedule) that sees:

* the noisy **target** latent;
* the **source** latent through **multi-scale aggregation** (paper: "a multi-layer convolution encoder, yielding
  feature maps with varying resolutions for the corresponding U-Net layers"): a convolutional pyramid whose 1 x 1
  heads are added inside every down block (diffusers' T2I-adapter input ``down_intrablock_additional_residuals``,
  so the down path's self-attention sees the source, as in the paper) and to every skip connection and the
  bottleneck (the ControlNet inputs, so the full-resolution up path sees it too). ``multiscale=False`` is the
  paper's ablation, AUDIT's input concatenation (``[z_t ; z_s]`` as 32 input channels);
* the **instruction** (MiniLM token states) by cross-attention in the down and up blocks;
* the **chord progression matrix** of the source (:func:`~musicprobe.metrics.harmony.chord_matrix`, one column per
  bottleneck time column) by a time-banded cross-attention in the bottleneck only (``chord=False``: the ablation;
  the bottleneck then attends to the instruction like the other blocks). A chord matrix may be dropped
  (``chords=None``) during training: a learned null token stands in for it. ``chord_up=True`` (our extension, not
  the paper's) also lets every up block's cross-attention hear the chords through a time-banded attention of its
  own whose output projection starts at zero (:class:`~musicprobe.models.chunked.GatedChordCrossAttention`):
  measured on the bottleneck-only models, the up path discounts the bottleneck and the chord tokens moved the
  prediction by less than 1e-5. The shipped ``mini-instructme`` and ``-no-msa`` have it (their fine-tuning stage
  added it, see :mod:`musicprobe.zoo.train_instructme`); ``-no-chord`` hears no chords anywhere.

**Parameterisation** (our choice, measured): the paper's LDM predicts the noise. Trained from scratch on 2 CPU cores,
that network had not learned to use the source after 750 steps (noise error with the true source 0.071, with a
zero source 0.069 at t = 900) and DDIM from pure noise diverged (latent std 9): at AudioLDM2's schedule
(``a_T = 1.4e-4``) every noise error is multiplied by up to 80 in the clean estimate. ``source-x0`` (the default)
has the UNet predict the *target latent as the source plus a correction*, ``x0 = z_s + f(...)``, and converts it to
noise for the sampler: copying the source is the zero-correction default and the clean estimate stays bounded at
high noise. ``"eps"`` keeps the paper's parameterisation.

Self-attention is InstructME's **chunk transformer** (:mod:`musicprobe.models.chunked`): ``chunk_frames`` mel
frames per window (2.56 s by default) with 50 % overlap, at every resolution; a 20 s clip is edited in one pass.
Classifier-free guidance applies to the instruction (the empty instruction is the unconditional input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from musicprobe.errors import AudioError, ConfigError
from musicprobe.models.chunked import (
    ChordCrossAttention,
    ChunkedSelfAttention,
    GatedChordCrossAttention,
    TextCrossAttention,
    add_chord_inputs,
)
from musicprobe.models.melmodel import MelModel
from musicprobe.models.minildm import FoldedLatent, MiniLDMConfig
from musicprobe.models.text import TEXT_DIM, TextStates

CHORD_DIM = 37  # len(musicprobe.metrics.harmony.CHORD_CLASSES)


@dataclass(frozen=True)
class MiniInstructMEConfig(MiniLDMConfig):
    """mini-LDM's UNet, latent and schedule plus the chunking, the parameterisation and the two ablation switches."""

    chunk_frames: int = 160  # mel frames per chunk-transformer window (2.56 s), hop = half
    parameterization: str = "source-x0"  # or "eps" (the paper's LDM)
    multiscale: bool = True
    chord: bool = True
    chord_band: int = 1
    chord_up: bool = False  # also condition the up blocks on the chords (our extension; see the module doc)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.codec.n_frames % self.frame_multiple:  # (n_mels vs fold: checked by MiniLDMConfig)
            raise ConfigError(f"n_frames must be a multiple of {self.frame_multiple}, got {self.codec.n_frames}")
        if self.chunk_frames % self.frame_multiple or self.chunk_frames < 2 * self.frame_multiple:
            raise ConfigError(f"chunk_frames must be a multiple of {self.frame_multiple} and >= "
                              f"{2 * self.frame_multiple}, got {self.chunk_frames}")
        if self.chord_up and not self.chord:
            raise ConfigError("chord_up conditions the up blocks on the chords: it needs chord=True")
        if self.parameterization not in ("source-x0", "eps"):
            raise ConfigError(f"parameterization must be 'source-x0' or 'eps', got {self.parameterization!r}")

    @property
    def levels(self) -> int:
        return len(self.block_out_channels)

    @property
    def frame_multiple(self) -> int:
        """Mel frames must come in multiples of this (fold times every downsampling)."""
        return self.fold * 2 ** (self.levels - 1)

    @property
    def latent_channels(self) -> int:
        return self.fold * self.fold

    @property
    def chord_step(self) -> float:
        """Seconds per chord-matrix column = per bottleneck time column."""
        return self.frame_multiple * self.codec.hop_length / self.codec.sr

    def latent_shape_for(self, frames: int | None = None) -> tuple[int, int, int]:
        c, h, w = self.latent_shape
        return (c, h, (frames // self.fold) if frames else w)

    def unet_kwargs(self) -> dict[str, Any]:
        kw = super().unet_kwargs()
        if not self.multiscale:  # AUDIT's input concatenation: [z_t ; z_s]
            kw["in_channels"] = 2 * self.latent_channels
        return kw


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class SourcePyramid(nn.Module):
    """Multi-scale aggregation: the source latent -> one feature map per UNet resolution -> 1 x 1 heads for every
    place the UNet takes a residual (``skips`` + bottleneck, then the down blocks' intra-block inputs)."""

    def __init__(self, config: MiniInstructMEConfig):
        super().__init__()
        ch = config.block_out_channels
        self.stem = _conv(config.latent_channels, ch[0])
        self.levels = nn.ModuleList(
            nn.Sequential(nn.SiLU(), _conv(ch[max(i - 1, 0)], ch[i], 2 if i else 1), nn.SiLU(), _conv(ch[i], ch[i]))
            for i in range(len(ch))
        )
        # (channels, level) of the UNet's skip connections, in diffusers' order: conv_in, then per block its
        # resnets and its downsampler; then the bottleneck
        skips = [(ch[0], 0)]
        for i, c in enumerate(ch):
            skips += [(c, i)] * config.layers_per_block + ([(c, i + 1)] if i < len(ch) - 1 else [])
        skips.append((ch[-1], len(ch) - 1))
        # intra-block inputs: DownBlock2D adds after its downsampler, cross-attention blocks before theirs
        intra = [(ch[0], 1)] + [(c, i) for i, c in enumerate(ch) if i > 0]
        self.specs = skips + intra
        self.n_skips = len(skips)
        self.heads = nn.ModuleList(nn.Conv2d(ch[lvl], c, 1) for c, lvl in self.specs)

    def feature_maps(self, source: torch.Tensor) -> list[torch.Tensor]:
        """The source's feature map at every UNet resolution (full, 1/2, 1/4, ...)."""
        h, feats = self.stem(source), []
        for level in self.levels:
            h = level(h)
            feats.append(h)
        return feats

    def forward(self, source: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
        feats = self.feature_maps(source)
        out = [head(feats[lvl]) for head, (_, lvl) in zip(self.heads, self.specs)]
        return out[: self.n_skips - 1], out[self.n_skips - 1], out[self.n_skips :]


class InstructMENetwork(nn.Module):
    """The UNet with its chunked processors, the source pyramid and the chord projection (see the module)."""

    def __init__(self, config: MiniInstructMEConfig):
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.config = config
        self.unet = UNet2DConditionModel(**config.unet_kwargs())
        self.source = SourcePyramid(config) if config.multiscale else None
        if config.chord:
            self.chord_proj = nn.Linear(CHORD_DIM, TEXT_DIM)
            self.chord_null = nn.Parameter(torch.zeros(TEXT_DIM))
        if config.chord_up:
            for name, module in self.unet.named_modules():
                if name.startswith("up_blocks.") and name.endswith(".attn2"):
                    add_chord_inputs(module, TEXT_DIM)
        install_processors(self.unet, config)
        self.register_buffer("alphas", config.alphas_cumprod().float(), persistent=False)

    def chord_tokens(self, chords: torch.Tensor | None, batch: int, width: int,
                     drop: torch.Tensor | None = None) -> torch.Tensor:
        """Projected chord columns ``(batch, width, TEXT_DIM)``; the null token where ``chords`` is None or for the
        rows where ``drop`` is true (condition dropout in training)."""
        null = self.chord_null.expand(batch, width, -1)
        if chords is None:
            return null
        if chords.shape[-1] != width:
            raise ConfigError(f"the chord matrix has {chords.shape[-1]} columns; the latent needs {width}")
        tokens = self.chord_proj(chords.transpose(1, 2))
        return tokens if drop is None else torch.where(drop.view(-1, 1, 1), null, tokens)

    def forward(self, x: torch.Tensor, t: torch.Tensor, source: torch.Tensor, text: TextStates,
                chords: torch.Tensor | None = None, drop_chords: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise of ``x`` at timesteps ``t`` (what a sampler asks)."""
        out, a = self.unet_output(x, t, source, text, chords, drop_chords)
        if self.config.parameterization == "eps":
            return out
        return (x - a.sqrt() * (source + out)) / (1 - a).sqrt()

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor, source: torch.Tensor, text: TextStates,
                   chords: torch.Tensor | None = None, drop_chords: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted clean target latent (``source-x0``: the source plus the UNet's correction)."""
        out, a = self.unet_output(x, t, source, text, chords, drop_chords)
        if self.config.parameterization == "source-x0":
            return source + out
        return (x - (1 - a).sqrt() * out) / a.sqrt()

    def unet_output(self, x: torch.Tensor, t: torch.Tensor, source: torch.Tensor, text: TextStates,
                    chords: torch.Tensor | None, drop_chords: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The UNet's raw output and ``a_t`` per row (B, 1, 1, 1) for the parameterisation's conversion."""
        b = x.shape[0]
        t = torch.as_tensor(t).reshape(-1).expand(b)
        tokens, mask = text.tokens.to(x.dtype), text.mask.to(x.dtype)
        if self.config.chord:
            width = x.shape[-1] // 2 ** (self.config.levels - 1)
            chord = self.chord_tokens(chords, b, width, drop_chords).to(x.dtype)
            tokens = torch.cat([tokens, chord], 1)
            mask = torch.cat([mask, mask.new_ones(b, chord.shape[1])], 1)
        kw: dict[str, Any] = {}
        if self.source is not None:
            skips, mid, intra = self.source(source)
            kw = dict(down_block_additional_residuals=tuple(skips), mid_block_additional_residual=mid,
                      down_intrablock_additional_residuals=list(intra))
        else:
            x = torch.cat([x, source], 1)
        out = self.unet(x, t, encoder_hidden_states=tokens, encoder_attention_mask=mask, return_dict=False, **kw)[0]
        return out, self.alphas[t.long()].to(x.dtype).view(-1, 1, 1, 1)


def install_processors(unet: nn.Module, config: MiniInstructMEConfig) -> None:
    """Chunked self-attention everywhere, text cross-attention in the down/up blocks, chords in the bottleneck (and
    beside the text in the up blocks with ``chord_up``)."""
    h0 = config.codec.n_mels // config.fold
    n = config.levels
    procs = {}
    for name in unet.attn_processors:
        if name.startswith("down_blocks."):
            level = int(name.split(".")[1])
        elif name.startswith("up_blocks."):
            level = n - 1 - int(name.split(".")[1])
        else:
            level = n - 1
        height, chunk = h0 // 2**level, config.chunk_frames // config.fold // 2**level
        if ".attn1." in name:
            procs[name] = ChunkedSelfAttention(height, chunk)
        elif name.startswith("mid_block") and config.chord:
            procs[name] = ChordCrossAttention(height, config.max_text_tokens, config.chord_band)
        elif name.startswith("up_blocks.") and config.chord_up:
            procs[name] = GatedChordCrossAttention(height, config.max_text_tokens, config.chord_band)
        else:
            procs[name] = TextCrossAttention(config.max_text_tokens)
    unet.set_attn_processor(procs)


def build_network(config: MiniInstructMEConfig, seed: int = 0) -> InstructMENetwork:
    torch.manual_seed(seed)
    return InstructMENetwork(config).eval()


class SourceBound:
    """mini-InstructME with a source (and its chord matrix) fixed: an
    :class:`~musicprobe.models.protocols.EpsModel` whose prompt is the instruction, so the shared DDIM sampler,
    Probes and editors run on it unchanged."""

    def __init__(self, model: MiniInstructME, source: torch.Tensor, chords: torch.Tensor | None):
        self.model, self.source, self.chords = model, source, chords

    @property
    def sr(self) -> int:
        return self.model.sr

    @property
    def denoiser(self) -> nn.Module:
        return self.model.denoiser

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.model.alphas_cumprod

    @property
    def num_train_timesteps(self) -> int:
        return self.model.num_train_timesteps

    @property
    def x0_range(self) -> tuple[float, float]:
        return self.model.x0_range

    def encode_prompt(self, prompts: str | list[str]) -> TextStates:
        return self.model.encode_prompt(prompts)

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        return self.model.encode(audio, sr)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        return self.model.decode(latent)

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        """Initial latents the size of the bound source."""
        return self.model.noise(seed, batch, self.source.shape[-1] * self.model.config.fold)

    def _net(self, x: torch.Tensor, t: Any, text: TextStates) -> torch.Tensor:
        b = x.shape[0]
        src = self.source.expand(b, *self.source.shape[1:])
        chords = None if self.chords is None else self.chords.expand(b, *self.chords.shape[1:])
        return self.model.network(x, t, src, text, chords)

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: int, prompt: Any, guidance: float = 1.0) -> torch.Tensor:
        return self.model.guided(self._net, x, t, prompt, guidance)


class MiniInstructME(FoldedLatent, MelModel):
    """A loaded mini-InstructME: the network, the codec and the noise schedule; ``denoiser`` is the stock UNet (names
    ``down.1.layer0.self_attn`` ... through the UNet adapter). :meth:`bind` fixes a source for sampling."""

    family = "unet"
    label = "mini-InstructME"
    config_class = MiniInstructMEConfig
    build = staticmethod(build_network)

    def __init__(self, network: InstructMENetwork, config: MiniInstructMEConfig, meta: dict | None = None,
                 vocoder=None):
        super().__init__(config, meta, vocoder)
        self.network = network.eval()

    @property
    def denoiser(self) -> nn.Module:
        return self.network.unet

    @property
    def weights_module(self) -> nn.Module:
        return self.network

    def eps(self, x: torch.Tensor, t: int, prompt: Any, guidance: float = 1.0) -> torch.Tensor:
        """Refused: mini-InstructME predicts noise *given a source*; ``bind(latent, chords).eps`` is the epsilon
        model of one source (the InstructME editor does this)."""
        raise ConfigError("mini-InstructME edits a given source: use model.bind(source_latent, chords).eps(...) "
                          "or the InstructME editor")

    # ---- the latent ---------------------------------------------------------------------------------------
    def padded_frames(self, n_samples: int) -> int:
        """Mel frames of a clip of ``n_samples``, rounded up to the model's frame multiple."""
        m = self.config.frame_multiple
        frames = int(np.ceil(n_samples / self.config.codec.hop_length))
        return max(m, int(np.ceil(frames / m)) * m)

    def mel_of(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Standardised log-mel ``(n_mels, frames)`` of a clip of any length (padded with silence)."""
        from musicprobe.audio.features import log_mel
        from musicprobe.audio.io import resample, validate_audio

        c = self.config.codec
        y = resample(validate_audio(audio, sr, mono=True), sr, c.sr)
        frames = self.padded_frames(y.size)
        y = np.pad(y, (0, frames * c.hop_length - y.size))
        m = log_mel(y, c.mel)[:, :frames]
        return ((m - c.mel_mean) / c.mel_std).astype(np.float32)

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Audio of any length -> latent ``(1, 16, 16, W)``."""
        return self.mel_to_latent(self.mel_of(audio, sr))[None]

    def decode(self, latent: torch.Tensor, n_samples: int | None = None) -> np.ndarray:
        """Latent -> audio through the codec's decoder (cut to ``n_samples`` when given)."""
        if not torch.isfinite(torch.as_tensor(latent)).all():
            raise AudioError("decode: the latent contains NaN or infinite values")
        m = self.log_mel(latent)
        y = self.codec.decode_mel(m, n_samples=m.shape[-1] * self.config.codec.hop_length)
        return y[:n_samples] if n_samples else y

    def chords(self, audio: np.ndarray, sr: int, width: int | None = None) -> torch.Tensor:
        """The source's chord matrix ``(1, CHORD_DIM, width)``, one column per bottleneck time column."""
        from musicprobe.metrics.harmony import chord_matrix

        width = width or self.padded_frames(int(len(audio) * self.config.codec.sr / sr)) // self.config.frame_multiple
        return torch.from_numpy(chord_matrix(audio, sr, self.config.chord_step, width))[None]

    def noise(self, seed: int, batch: int = 1, frames: int | None = None) -> torch.Tensor:
        """Standard-normal latents ``(batch, 16, 16, frames / 4)`` (default: the training length)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(batch, *self.config.latent_shape_for(frames), generator=g)

    def bind(self, source: torch.Tensor, chords: torch.Tensor | None) -> SourceBound:
        """The epsilon model of this source (``chords=None``: the null chord token)."""
        return SourceBound(self, source, chords if self.config.chord else None)
