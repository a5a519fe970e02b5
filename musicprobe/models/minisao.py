"""mini-SAO: a small Stable-Audio-Open-class DiT (diffusers ``StableAudioDiTModel``) on log-mel tokens.

What it keeps of Stable Audio Open (``stabilityai/stable-audio-open-1.0``, MusicKV's base model):

- the DiT itself, stock: self-attention with **partial RoPE** (the pipeline's rotary table covers half of each head),
  a separate **cross-attention** to the conditioning tokens with **GQA** (6 query heads over 3 key/value heads;
  ``num_key_value_attention_heads`` — diffusers' ``StableAudioDiTBlock`` gives GQA to the cross-attention only, its
  self-attention has as many K/V heads as query heads, so the processor's head repeat is a no-op there); no adaLN:
  the **timestep** enters only through the **prepended global token**, which also carries the **duration**
  conditioning (``StableAudioProjectionModel``: seconds_start / seconds_end number embeddings, appended to the
  text tokens for cross-attention and concatenated into the global token, as ``StableAudioPipeline`` builds them);
- **v-prediction** in the cosine ("trig-flow") parameterisation of ``CosineDPMSolverMultistepScheduler`` with
  ``sigma_data = 1``: a noise level ``sigma`` gives the network input ``x0 cos(a) + eps sin(a)`` with
  ``a = atan(sigma)``, the time input ``2 a / pi`` (the scheduler's ``precondition_noise``), and the target
  ``v = eps cos(a) - x0 sin(a)``;
- the sampling grid of that scheduler: ``sigma`` exponential from ``sigma_max = 500`` to ``sigma_min = 0.3``, then
  0 (:meth:`MiniSAO.flow_times`), walked by the deterministic DPM-Solver++(2M) of :mod:`musicprobe.inversion.flow`.

What it replaces: the Oobleck VAE (the shared codec's standardised log-mel tokens, 80 tokens x 256 channels, as
mini-flux) and T5 (MiniLM token states). Every clip of the corpus lasts the codec's 5.12 s, so the duration
conditioning is constant (start 0 s, end 5.12 s): the global token carries it as in SAO, but it cannot be varied.

Protocol: mini-SAO is a :class:`~musicprobe.models.protocols.FlowModel`. The trig-flow latent at angle ``a`` is the
rectified-flow latent at ``t = sin a / (sin a + cos a)`` divided by its norm factor, so ``velocity(x, t)`` converts
exactly (``dx/dt = eps_hat - x0_hat`` from one v-prediction) and every flow solver, editor and probe runs on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.models.melmodel import MelTokenModel
from musicprobe.models.text import MAX_TOKENS, TEXT_DIM, TextStates
from musicprobe.models.trigflow import velocity_from_v


@dataclass(frozen=True)
class MiniSAOConfig:
    """Architecture of mini-SAO (the arguments of ``StableAudioDiTModel`` and ``StableAudioProjectionModel``), its
    noise grid and codec."""

    num_layers: int = 10
    num_attention_heads: int = 6
    num_key_value_attention_heads: int = 3
    attention_head_dim: int = 32
    cross_attention_dim: int = 192
    time_proj_dim: int = 64
    max_seconds: float = 30.0  # range of the duration number embeddings
    sigma_min: float = 0.3
    sigma_max: float = 500.0
    max_text_tokens: int = MAX_TOKENS
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if self.num_attention_heads % self.num_key_value_attention_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_attention_heads (GQA)")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ConfigError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")

    def transformer_kwargs(self) -> dict[str, Any]:
        return dict(
            sample_size=self.codec.n_tokens,
            in_channels=self.codec.token_dim,
            num_layers=self.num_layers,
            attention_head_dim=self.attention_head_dim,
            num_attention_heads=self.num_attention_heads,
            num_key_value_attention_heads=self.num_key_value_attention_heads,
            out_channels=self.codec.token_dim,
            cross_attention_dim=self.cross_attention_dim,
            time_proj_dim=self.time_proj_dim,
            global_states_input_dim=2 * TEXT_DIM,
            cross_attention_input_dim=TEXT_DIM,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MiniSAOConfig:
        d = dict(d)
        d["codec"] = CodecConfig(**d.get("codec", {}))
        return cls(**d)


def build_network(config: MiniSAOConfig, seed: int = 0) -> nn.ModuleDict:
    """The trainable parts: ``transformer`` (the DiT) and ``projection`` (text + duration conditioning)."""
    from diffusers import StableAudioDiTModel
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel

    torch.manual_seed(seed)
    return nn.ModuleDict(
        {
            "transformer": StableAudioDiTModel(**config.transformer_kwargs()),
            "projection": StableAudioProjectionModel(
                text_encoder_dim=TEXT_DIM, conditioning_dim=TEXT_DIM, min_value=0.0, max_value=config.max_seconds
            ),
        }
    )


class MiniSAO(MelTokenModel):
    """A loaded mini-SAO (see the module docstring), a :class:`~musicprobe.models.protocols.FlowModel`.

    ``denoiser`` (= ``transformer``) is a stock ``StableAudioDiTModel``, so ``Probe(m.denoiser)`` uses the Stable
    Audio adapter (``blocks.{i}.self_attn`` / ``cross_attn``; self-attention keys are ``[global ; audio]``).
    """

    family = "stable_audio"
    label = "mini-SAO"
    config_class = MiniSAOConfig
    build = staticmethod(build_network)
    default_solver = "dpmpp-2m"  # the deterministic DPM-Solver++ MusicKV's reference samples Stable Audio with

    def __init__(self, network: nn.ModuleDict, config: MiniSAOConfig, meta: dict | None = None, vocoder=None):
        from diffusers.models.embeddings import get_1d_rotary_pos_embed

        super().__init__(config, meta, vocoder)
        self.network = network.eval()
        # the pipeline's rotary table: half of each head (partial RoPE), over the global token and the audio
        self.rotary = get_1d_rotary_pos_embed(
            config.attention_head_dim // 2, config.codec.n_tokens + 1, use_real=True, repeat_interleave_real=False
        )

    @property
    def denoiser(self) -> nn.Module:
        return self.network["transformer"]

    @property
    def transformer(self) -> nn.Module:
        return self.network["transformer"]

    @property
    def weights_module(self) -> nn.Module:
        return self.network  # the DiT and the text/duration projection

    @property
    def text_layer(self) -> nn.Module:
        """Where the prompt enters (token attribution integrates here): the projection's text layer."""
        return self.network["projection"].text_projection

    def conditioning(self, text: TextStates) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention tokens ``[text ; start ; end]`` and the global states ``[start | end]`` (as
        ``StableAudioPipeline.encode_prompt`` / ``encode_duration`` build them)."""
        b = text.tokens.shape[0]
        start = torch.zeros(b)
        end = torch.full((b,), float(self.config.codec.seconds))
        proj = self.network["projection"](text.tokens.float(), start, end)
        s, e = proj.seconds_start_hidden_states, proj.seconds_end_hidden_states
        return torch.cat([proj.text_hidden_states, s, e], dim=1), torch.cat([s, e], dim=2)

    # ---- the network ---------------------------------------------------------------------------------------
    def forward_v(self, x_in: torch.Tensor, angle: torch.Tensor | float, text: TextStates) -> torch.Tensor:
        """The DiT's v-prediction for trig-flow inputs ``x_in`` (B, N, C) at angle ``angle`` (radians)."""
        b = x_in.shape[0]
        t_in = (torch.as_tensor(angle, dtype=torch.float32) * (2 / math.pi)).reshape(-1).expand(b)
        ehs, global_states = self.conditioning(text)
        out = self.transformer(
            hidden_states=x_in.transpose(1, 2),
            timestep=t_in,
            encoder_hidden_states=ehs,
            global_hidden_states=global_states,
            rotary_embedding=self.rotary,
            return_dict=False,
        )[0]
        return out.transpose(1, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, text: TextStates) -> torch.Tensor:
        """Rectified-flow velocity ``eps_hat - x0_hat`` for RF latents ``x`` at flow time ``t`` (one DiT call)."""
        return velocity_from_v(lambda x_in, a: self.forward_v(x_in, a, text), x, t)

    @torch.no_grad()
    def velocity(
        self, x: torch.Tensor, t: float, prompt: str | TextStates, guidance: float = 1.0, negative: str = ""
    ) -> torch.Tensor:
        """Velocity with classifier-free guidance (on v, which is the same: the conversion is affine in v)."""
        return self.guided(self.forward, x, t, prompt, guidance, negative)

    def flow_times(self, steps: int) -> np.ndarray:
        """``steps + 1`` flow times of SAO's grid: sigma exponential from ``sigma_max`` to ``sigma_min`` (``steps``
        levels), then 0 — ``CosineDPMSolverMultistepScheduler``'s ``exponential`` schedule with a zero final sigma.
        ``t = sigma / (1 + sigma)``."""
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        c = self.config
        if steps == 1:
            sig = np.array([c.sigma_max])
        else:
            sig = np.exp(np.linspace(math.log(c.sigma_max), math.log(c.sigma_min), steps))
        return np.append(sig / (1 + sig), 0.0)
