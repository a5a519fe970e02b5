"""mini-flux: a small FluxMusic-style rectified-flow MM-DiT (diffusers ``FluxTransformer2DModel``) on log-mel tokens.

Conventions (the same as FluxMusic / diffusers' Flux pipelines):

- rectified flow ``x_t = (1 - t) x0 + t * eps`` with ``t`` in [0, 1]; the network predicts the velocity
  ``v = eps - x0``; sampling integrates ``dx/dt = v`` from ``t = 1`` (noise) down to ``t = 0``;
- text: MiniLM per-token states enter the double-stream blocks as joint-attention tokens, the pooled sentence
  vector enters through the adaLN conditioning; the unconditional prompt is the empty string;
- classifier-free guidance stacks ``[uncond ; cond]`` (diffusers' order, which the hook adapters assume).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.models.melmodel import MelTokenModel
from musicprobe.models.text import MAX_TOKENS, TEXT_DIM, TextStates


@dataclass(frozen=True)
class MiniFluxConfig:
    """Architecture of mini-flux (the arguments of ``FluxTransformer2DModel``) and its codec."""

    num_layers: int = 2  # double-stream blocks
    num_single_layers: int = 6  # single-stream blocks
    num_attention_heads: int = 6
    attention_head_dim: int = 32
    axes_dims_rope: tuple[int, int, int] = (8, 12, 12)
    max_text_tokens: int = MAX_TOKENS
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if sum(self.axes_dims_rope) != self.attention_head_dim:
            raise ConfigError(f"axes_dims_rope must sum to attention_head_dim={self.attention_head_dim}")

    def transformer_kwargs(self) -> dict[str, Any]:
        return dict(
            patch_size=1,
            in_channels=self.codec.token_dim,
            num_layers=self.num_layers,
            num_single_layers=self.num_single_layers,
            attention_head_dim=self.attention_head_dim,
            num_attention_heads=self.num_attention_heads,
            joint_attention_dim=TEXT_DIM,
            pooled_projection_dim=TEXT_DIM,
            guidance_embeds=False,
            axes_dims_rope=list(self.axes_dims_rope),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["axes_dims_rope"] = list(self.axes_dims_rope)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MiniFluxConfig:
        d = dict(d)
        d["codec"] = CodecConfig(**d.get("codec", {}))
        d["axes_dims_rope"] = tuple(d.get("axes_dims_rope", (8, 12, 12)))
        return cls(**d)


def build_transformer(config: MiniFluxConfig, seed: int = 0) -> torch.nn.Module:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(**config.transformer_kwargs())


class MiniFlux(MelTokenModel):
    """A loaded mini-flux, a :class:`~musicprobe.models.protocols.FlowModel`: the diffusers transformer plus the
    codec and the text encoder.

    ``denoiser`` (= ``transformer``) is a stock ``FluxTransformer2DModel``, so ``Probe(mf.denoiser)`` uses the Flux
    adapter.
    """

    family = "flux"
    label = "mini-flux"
    config_class = MiniFluxConfig
    build = staticmethod(build_transformer)
    weights_dtype = torch.float32

    def __init__(
        self, transformer: torch.nn.Module, config: MiniFluxConfig, meta: dict | None = None, vocoder=None
    ):
        super().__init__(config, meta, vocoder)
        self.transformer = transformer.eval()
        n = config.codec.n_tokens
        ids = torch.zeros(n, 3)
        ids[:, 1] = torch.arange(n, dtype=torch.float32)  # RoPE over time; the other axes stay at 0
        self.img_ids = ids
        self.txt_ids = torch.zeros(config.max_text_tokens, 3)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.transformer

    @property
    def weights_module(self) -> torch.nn.Module:
        return self.transformer

    # ---- the network ---------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor | float, text: TextStates) -> torch.Tensor:
        """One transformer call: velocity for latents ``x`` (B, N, C) at flow time ``t`` under ``text`` (B rows)."""
        b = x.shape[0]
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1).expand(b)
        out = self.transformer(
            hidden_states=x,
            encoder_hidden_states=text.tokens.to(x.dtype),
            pooled_projections=text.pooled.to(x.dtype),
            timestep=t,
            img_ids=self.img_ids,
            txt_ids=self.txt_ids,
            return_dict=False,
        )
        return out[0]

    @torch.no_grad()
    def velocity(
        self,
        x: torch.Tensor,
        t: float,
        prompt: str | TextStates,
        guidance: float = 1.0,
        negative: str = "",
    ) -> torch.Tensor:
        """Velocity with classifier-free guidance: ``v_u + guidance * (v_c - v_u)``; one batched call.

        ``guidance == 1`` runs the conditional branch alone (no CFG batch).
        """
        return self.guided(self.forward, x, t, prompt, guidance, negative)
