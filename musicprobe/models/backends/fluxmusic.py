"""FluxMusic checkpoints (``feizc/FluxMusic``: ``musicflow_{s,b,l,g}.pt``, weights under ``"ema"``) converted into
diffusers' ``FluxTransformer2DModel``, so MusRec's hooks and editors run on the paper's base model.

FluxMusic is a BFL-style Flux (``img_in``, ``time_in``, ``vector_in``, ``txt_in``, ``double_blocks``,
``single_blocks``, ``final_layer``) with the guidance embedding commented out, 32 input channels (8 VAE channels x
a 2 x 2 patch), CLAP's 768-d pooled text as the vector input and T5-XXL's 4096-d token states as the context.
:data:`FLUXMUSIC_VERSIONS` holds its ``constants.py`` table; :func:`convert_fluxmusic` maps the keys:

- fused ``qkv`` of the double blocks' image / text attention -> ``to_q/k/v`` / ``add_q/k/v_proj``; the single
  blocks' ``linear1`` -> ``to_q/k/v`` + ``proj_mlp``, ``linear2`` -> ``proj_out``;
- QK RMSNorm ``scale`` -> ``norm_q/k`` (``norm_added_q/k`` for text) ``weight``;
- modulation ``lin`` -> ``norm1`` / ``norm1_context`` / ``norm`` ``linear``;
- the final layer's adaLN: BFL splits its output ``(shift, scale)``, diffusers' ``AdaLayerNormContinuous``
  ``(scale, shift)``, so the two halves are swapped.

The converter checks what it is given: an unknown or leftover key and a shape that does not fit the version are
errors that name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from musicprobe.errors import ConfigError, MusicProbeError, check_known
from musicprobe.models.backends.audioldm2 import AudioLDM2Codec
from musicprobe.models.backends.base import PartsPipeline, PipelineBackend
from musicprobe.models.prompt_rows import PromptRows


@dataclass(frozen=True)
class FluxMusicVersion:
    """One row of FluxMusic's ``constants.build_model`` (all: ``in_channels`` 32, ``vec_in_dim`` 768,
    ``context_in_dim`` 4096, ``mlp_ratio`` 4, 16 heads, ``qkv_bias``, theta 10,000)."""

    hidden_size: int
    depth: int
    depth_single_blocks: int
    axes_dim: tuple[int, ...]
    num_heads: int = 16
    in_channels: int = 32
    vec_in_dim: int = 768
    context_in_dim: int = 4096
    mlp_ratio: float = 4.0

    def diffusers_config(self) -> dict[str, Any]:
        """``FluxTransformer2DModel`` arguments of this version (no guidance embedding, patch 1 over 32 channels)."""
        return dict(patch_size=1, in_channels=self.in_channels, num_layers=self.depth,
                    num_single_layers=self.depth_single_blocks, attention_head_dim=self.hidden_size // self.num_heads,
                    num_attention_heads=self.num_heads, joint_attention_dim=self.context_in_dim,
                    pooled_projection_dim=self.vec_in_dim, guidance_embeds=False, axes_dims_rope=self.axes_dim)


FLUXMUSIC_VERSIONS: dict[str, FluxMusicVersion] = {
    "small": FluxMusicVersion(512, 8, 16, (8, 12, 12)),
    "base": FluxMusicVersion(768, 12, 24, (16, 16, 16)),
    "large": FluxMusicVersion(1024, 12, 24, (16, 24, 24)),
    "giant": FluxMusicVersion(1408, 16, 32, (16, 36, 36)),
}
CHECKPOINTS = {"musicflow_s.pt": "small", "musicflow_b.pt": "base", "musicflow_l.pt": "large",
               "musicflow_g.pt": "giant"}

_DOUBLE = {  # BFL name inside double_blocks.{i} -> diffusers name inside transformer_blocks.{i}
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
}
_SINGLE = {
    "modulation.lin": "norm.linear",
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
    "linear2": "proj_out",
}
_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "final_layer.linear": "proj_out",
}


def _swap_halves(w: torch.Tensor) -> torch.Tensor:
    shift, scale = w.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


def _version(version: str | FluxMusicVersion) -> FluxMusicVersion:
    if isinstance(version, FluxMusicVersion):
        return version
    return FLUXMUSIC_VERSIONS[check_known("FluxMusic version", version, FLUXMUSIC_VERSIONS)]


def fluxmusic_shapes(version: str | FluxMusicVersion) -> dict[str, tuple[int, ...]]:
    """Every key of a FluxMusic state dict of ``version`` and its shape (its ``model.py`` / ``layers.py`` layout)."""
    v = _version(version)
    h, mlp, hd = v.hidden_size, int(v.hidden_size * v.mlp_ratio), v.hidden_size // v.num_heads
    shapes: dict[str, tuple[int, ...]] = {}

    def linear(name: str, n_out: int, n_in: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)

    linear("img_in", h, v.in_channels)
    linear("time_in.in_layer", h, 256)
    linear("time_in.out_layer", h, h)
    linear("vector_in.in_layer", h, v.vec_in_dim)
    linear("vector_in.out_layer", h, h)
    linear("txt_in", h, v.context_in_dim)
    linear("final_layer.linear", v.in_channels, h)
    linear("final_layer.adaLN_modulation.1", 2 * h, h)
    for i in range(v.depth):
        for side in ("img", "txt"):
            b = f"double_blocks.{i}.{side}"
            linear(f"{b}_mod.lin", 6 * h, h)
            linear(f"{b}_attn.qkv", 3 * h, h)
            linear(f"{b}_attn.proj", h, h)
            linear(f"{b}_mlp.0", mlp, h)
            linear(f"{b}_mlp.2", h, mlp)
            shapes[f"{b}_attn.norm.query_norm.scale"] = shapes[f"{b}_attn.norm.key_norm.scale"] = (hd,)
    for i in range(v.depth_single_blocks):
        b = f"single_blocks.{i}"
        linear(f"{b}.linear1", 3 * h + mlp, h)
        linear(f"{b}.linear2", h, h + mlp)
        linear(f"{b}.modulation.lin", 3 * h, h)
        shapes[f"{b}.norm.query_norm.scale"] = shapes[f"{b}.norm.key_norm.scale"] = (hd,)
    return shapes


def convert_fluxmusic(state: dict[str, torch.Tensor], version: str | FluxMusicVersion) -> dict[str, torch.Tensor]:
    """A FluxMusic state dict (the ``"ema"`` entry) -> ``FluxTransformer2DModel`` keys. Nothing in ``state`` is
    changed; every key must be used (leftovers are an error naming them)."""
    v = _version(version)
    name = version if isinstance(version, str) else "custom"
    src = {k.removeprefix("module."): t for k, t in state.items()}
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    version_name = name

    def take(name: str) -> torch.Tensor:
        if name not in src:
            raise MusicProbeError(f"FluxMusic checkpoint has no {name!r}: is it the {version_name} model?")
        used.add(name)
        return src[name]

    def move(old: str, new: str) -> None:
        if old.endswith(".scale"):  # RMSNorm scale -> norm weight
            out[new] = take(old)
            return
        out[f"{new}.weight"] = take(f"{old}.weight")
        out[f"{new}.bias"] = take(f"{old}.bias")

    def split(old: str, news: list[str], sizes: list[int]) -> None:
        for p in ("weight", "bias"):
            parts = torch.split(take(f"{old}.{p}"), sizes, dim=0)
            for new, part in zip(news, parts, strict=True):
                out[f"{new}.{p}"] = part

    h, mlp = v.hidden_size, int(v.hidden_size * v.mlp_ratio)
    for old, new in _TOP.items():
        move(old, new)
    for p in ("weight", "bias"):
        out[f"norm_out.linear.{p}"] = _swap_halves(take(f"final_layer.adaLN_modulation.1.{p}"))
    for i in range(v.depth):
        pre, new_pre = f"double_blocks.{i}", f"transformer_blocks.{i}"
        for old, new in _DOUBLE.items():
            move(f"{pre}.{old}", f"{new_pre}.{new}")
        split(f"{pre}.img_attn.qkv", [f"{new_pre}.attn.to_{x}" for x in "qkv"], [h] * 3)
        split(f"{pre}.txt_attn.qkv", [f"{new_pre}.attn.add_{x}_proj" for x in "qkv"], [h] * 3)
    for i in range(v.depth_single_blocks):
        pre, new_pre = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        for old, new in _SINGLE.items():
            move(f"{pre}.{old}", f"{new_pre}.{new}")
        split(f"{pre}.linear1", [f"{new_pre}.attn.to_{x}" for x in "qkv"] + [f"{new_pre}.proj_mlp"], [h, h, h, mlp])
    leftover = sorted(set(src) - used)
    if leftover:
        raise MusicProbeError(f"FluxMusic {version_name}: keys the converter does not know: {leftover[:6]}"
                              f"{' ...' if len(leftover) > 6 else ''}")
    return out


def fluxmusic_transformer(state: dict[str, torch.Tensor], version: str | FluxMusicVersion,
                          dtype: torch.dtype = torch.float32):
    """A ``FluxTransformer2DModel`` holding a FluxMusic state dict (converted; strict: every key and shape fits)."""
    from diffusers import FluxTransformer2DModel

    v = _version(version)
    with torch.device("meta"):
        model = FluxTransformer2DModel(**v.diffusers_config())
    converted = convert_fluxmusic(state, version)
    try:
        model.load_state_dict({k: t.to(dtype) for k, t in converted.items()}, strict=True, assign=True)
    except RuntimeError as exc:
        raise MusicProbeError(f"the FluxMusic weights do not fit FluxTransformer2DModel ({v}): {exc}") from exc
    return model.eval()


def load_fluxmusic_checkpoint(path: str | Path, version: str | None = None, dtype: torch.dtype = torch.float32):
    """``musicflow_*.pt`` -> ``FluxTransformer2DModel`` (``version`` from the file name when not given)."""
    path = Path(path)
    if not path.is_file():
        raise MusicProbeError(f"no FluxMusic checkpoint at {path} (download musicflow_*.pt from "
                              "feizhengcong/FluxMusic to a local folder first)")
    version = version or CHECKPOINTS.get(path.name)
    if version is None:
        raise ConfigError(f"cannot tell the FluxMusic version of {path.name}: pass version= (one of "
                          f"{', '.join(FLUXMUSIC_VERSIONS)})")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return fluxmusic_transformer(ckpt.get("ema", ckpt), version, dtype)


# ---- the backend --------------------------------------------------------------------------------------------
NEGATIVE_PROMPT = "low quality, gentle"  # FluxMusic's sample.py


class FluxMusicPipeline(PartsPipeline):
    """FluxMusic's parts as one unit (FluxMusic ships no diffusers pipeline): the converted transformer,
    AudioLDM2's mel VAE and HiFi-GAN, T5 (token states) and CLAP's text tower (pooled vector), with tokenizers.

    ``from_parts`` assembles the released model from a ``musicflow_*.pt`` and the three hub folders its code
    loads; ``save_pretrained`` / ``from_pretrained`` keep the assembled unit in one folder (one subfolder a part).
    """

    parts = ("transformer", "vae", "vocoder", "text_encoder", "tokenizer", "clap", "clap_tokenizer")

    def __init__(self, transformer, vae, vocoder, text_encoder, tokenizer, clap, clap_tokenizer):
        self.transformer, self.vae, self.vocoder = transformer, vae, vocoder
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.clap, self.clap_tokenizer = clap, clap_tokenizer

    @classmethod
    def from_parts(cls, checkpoint: str | Path, *, version: str | FluxMusicVersion | None = None,
                   audioldm2: str = "cvssp/audioldm2", t5: str = "google/t5-v1_1-xxl",
                   clap: str = "laion/larger_clap_music", torch_dtype: torch.dtype = torch.float32):
        """The released FluxMusic: ``musicflow_*.pt`` + AudioLDM2's ``vae`` / ``vocoder`` + T5 + CLAP (hub ids or
        local folders; offline only what is cached or on disk)."""
        from diffusers import AutoencoderKL
        from transformers import AutoTokenizer, ClapTextModel, SpeechT5HifiGan, T5EncoderModel

        try:
            return cls(
                load_fluxmusic_checkpoint(checkpoint, version if isinstance(version, str) else None, torch_dtype)
                if not isinstance(version, FluxMusicVersion)
                else fluxmusic_transformer(torch.load(checkpoint, map_location="cpu", weights_only=True)["ema"],
                                           version, torch_dtype),
                AutoencoderKL.from_pretrained(audioldm2, subfolder="vae", torch_dtype=torch_dtype),
                SpeechT5HifiGan.from_pretrained(audioldm2, subfolder="vocoder", dtype=torch_dtype),
                T5EncoderModel.from_pretrained(t5, dtype=torch_dtype),
                AutoTokenizer.from_pretrained(t5),
                ClapTextModel.from_pretrained(clap, dtype=torch_dtype),
                AutoTokenizer.from_pretrained(clap),
            )
        except OSError as exc:
            raise MusicProbeError(f"cannot assemble FluxMusic: {exc}. No hub is reachable offline: pass local "
                                  "folders for audioldm2=, t5= and clap=") from exc

    @staticmethod
    def part_classes() -> dict[str, type]:
        """The class of each part (what ``from_pretrained`` loads from each subfolder)."""
        from diffusers import AutoencoderKL, FluxTransformer2DModel
        from transformers import AutoTokenizer, ClapTextModel, SpeechT5HifiGan, T5EncoderModel

        return {"transformer": FluxTransformer2DModel, "vae": AutoencoderKL, "vocoder": SpeechT5HifiGan,
                "text_encoder": T5EncoderModel, "tokenizer": AutoTokenizer, "clap": ClapTextModel,
                "clap_tokenizer": AutoTokenizer}

    @classmethod
    def from_pretrained(cls, folder: str | Path, torch_dtype: torch.dtype | None = None) -> FluxMusicPipeline:
        from diffusers import ModelMixin

        f = Path(folder)
        if not (f / "transformer").is_dir():
            raise OSError(f"{f} holds no assembled FluxMusic (no transformer/ subfolder; see from_parts)")
        parts = []
        for name, klass in cls.part_classes().items():
            if torch_dtype is None or klass.__name__ == "AutoTokenizer":
                parts.append(klass.from_pretrained(f / name))
            else:
                key = "torch_dtype" if issubclass(klass, ModelMixin) else "dtype"
                parts.append(klass.from_pretrained(f / name, **{key: torch_dtype}))
        return cls(*parts)

    def save_pretrained(self, folder: str | Path) -> None:
        for p in self.parts:
            getattr(self, p).save_pretrained(Path(folder) / p)


@dataclass
class FluxMusicText(PromptRows):
    """T5 token states ``(B, L, 4096)`` and CLAP's pooled text ``(B, 768)``."""

    tokens: torch.Tensor
    pooled: torch.Tensor


class FluxMusicBackend(AudioLDM2Codec, PipelineBackend):
    """FluxMusic as a :class:`~musicprobe.models.protocols.FlowModel` (MusRec's base).

    - **Audio**: AudioLDM2's path (16 kHz mono, the reference log-mel, the VAE, HiFi-GAN), window ``seconds``
      (default 10.24 s, FluxMusic's training length); the VAE latent ``(1, 8, frames / 4, 16)`` is cut into 2 x 2
      patches, ``(1, tokens, 32)``, time-major as FluxMusic's ``rearrange`` (ids: 0, row, column).
    - **Text**: T5 states padded to the tokenizer's length, CLAP's pooled text (``ClapTextModel.pooler_output``).
    - **Flow**: FluxMusic's convention is ours (``x_t = (1 - t) x0 + t eps``, velocity ``eps - x0``, uniform time
      grid, no shift); true classifier-free guidance against ``negative`` (FluxMusic's "low quality, gentle").
    """

    kind = "fluxmusic"
    label = "FluxMusic"
    family = "flux"
    pipeline_class = "musicprobe.models.backends.fluxmusic:FluxMusicPipeline"
    default_source = ""
    no_source = "assemble one with FluxMusicPipeline.from_parts('musicflow_s.pt', ...) and save_pretrained it"

    def __init__(self, pipe, *, source: str = "built in memory", device=None, dtype=None, seconds: float = 10.24,
                 negative: str = NEGATIVE_PROMPT):
        super().__init__(pipe, source=source, device=device, dtype=dtype)
        if seconds < 0.5:
            raise ConfigError(f"seconds must be at least 0.5, got {seconds}")
        self.seconds = float(seconds)
        self.negative = negative

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.pipe.transformer

    @property
    def channels(self) -> int:
        return int(self.pipe.vae.config.latent_channels)

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along time and frequency."""
        f = self.vae_scale
        return self.frames // f // 2, self.n_mels // f // 2

    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        return z.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.grid
        b = x.shape[0]
        return x.reshape(b, h, w, self.channels, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, self.channels, h * 2,
                                                                                          w * 2)

    def encode(self, audio, sr: int) -> torch.Tensor:
        return self.patchify(self.vae_latent(audio, sr))

    def decode(self, latent: torch.Tensor):
        x = latent if latent.ndim == 3 else latent[None]
        return self.vae_audio(self.unpatchify(x))

    def log_mel(self, latent: torch.Tensor):
        """Latent tokens -> natural-log mel ``(n_mels, frames)`` (the VAE's)."""
        x = latent if latent.ndim == 3 else latent[None]
        return self.vae_mel(self.unpatchify(x))[0].T.float().cpu().numpy()

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        h, w = self.grid
        return torch.randn(batch, h * w, self.channels * 4, generator=self.generator(seed)).to(self.device)

    def encode_one(self, prompt: str) -> FluxMusicText:
        """T5 states (padded to the tokenizer's length) and CLAP's pooled text of one prompt."""
        t5 = self.pipe.tokenizer(prompt, padding="max_length", truncation=True, return_tensors="pt",
                                 max_length=self.pipe.tokenizer.model_max_length)
        tokens = self.pipe.text_encoder(t5.input_ids.to(self.device)).last_hidden_state
        ct = self.pipe.clap_tokenizer(prompt, padding="max_length", truncation=True, return_tensors="pt",
                                      max_length=self.pipe.clap_tokenizer.model_max_length)
        return FluxMusicText(tokens, self.pipe.clap(ct.input_ids.to(self.device)).pooler_output)

    def ids(self, n_text: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.grid
        img = torch.zeros(h, w, 3)
        img[..., 1] = torch.arange(h)[:, None]
        img[..., 2] = torch.arange(w)[None, :]
        return img.reshape(h * w, 3).to(self.device), torch.zeros(n_text, 3, device=self.device)

    def forward(self, x: torch.Tensor, t: float, text: FluxMusicText) -> torch.Tensor:
        img_ids, txt_ids = self.ids(text.tokens.shape[1])
        out = self.pipe.transformer(
            hidden_states=x.to(self.device, self.dtype), encoder_hidden_states=text.tokens,
            pooled_projections=text.pooled, timestep=torch.full((x.shape[0],), float(t), device=self.device,
                                                                dtype=self.dtype),
            img_ids=img_ids, txt_ids=txt_ids, return_dict=False,
        )[0]
        return out.float()

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: float, prompt, guidance: float = 1.0, negative: str | None = None):
        b = x.shape[0]
        cond = self.encode_prompt(prompt).rows(b)
        if guidance == 1.0:
            return self.forward(x, t, cond)
        uncond = self.encode_prompt(self.negative if negative is None else negative).rows(b)
        out_u, out_c = self.forward(torch.cat([x, x]), t, FluxMusicText.cat([uncond, cond])).chunk(2)
        return out_u + guidance * (out_c - out_u)
