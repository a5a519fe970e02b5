"""Tiny random-init models of each supported architecture, built from config in memory (no hub, no weights).

They have the real diffusers/transformers classes, so shapes, names and hooks are those of the full-size
models; tests, notebooks and users use them to see the plumbing without weights. Each builder returns a
:class:`TinyModel` with the denoiser in ``eval()`` mode and a function producing example inputs (two prompts'
worth of conditioning, A and B, so that swaps can be tried).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from musicprobe.errors import check_known


@dataclass
class TinyModel:
    name: str
    model: nn.Module
    make_inputs: Callable[..., dict[str, Any]]  # (prompt="A"|"B", batch=1, seed=0) -> forward kwargs
    batch_keys: tuple[str, ...] = ()  # inputs with a leading batch axis (the others are shared by all rows)

    def __call__(self, **inputs: Any) -> torch.Tensor:
        with torch.no_grad():
            out = self.model(**inputs)
        return _first_tensor(out)

    def make_batch(self, prompts: list[str], seed: int = 0, **kw: Any) -> dict[str, Any]:
        """One call's inputs with one row per prompt, in order (every row starts from the same latent)."""
        parts = [self.make_inputs(p, batch=1, seed=seed, **kw) for p in prompts]
        out = dict(parts[0])
        for key in self.batch_keys:
            out[key] = torch.cat([p[key] for p in parts])
        return out


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    for attr in ("sample", "logits"):
        if hasattr(out, attr):
            return getattr(out, attr)
    return out[0]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _per_prompt(batch: int, *shape: int, generator: torch.Generator) -> torch.Tensor:
    """One prompt's conditioning of ``shape``, repeated over the batch (as pipelines do for CFG halves)."""
    return torch.randn(1, *shape, generator=generator).expand(batch, *shape).clone()


# the shared shape of both tiny UNets (they differ only in their conditioning streams)
_TINY_UNET = dict(
    block_out_channels=(8, 16),
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    attention_head_dim=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
)


def tiny_flux() -> TinyModel:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    model = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    ).eval()

    def inputs(prompt: str = "A", batch: int = 1, seed: int = 0, n_audio: int = 16, n_text: int = 6) -> dict:
        g_x, g_t = _gen(seed), _gen(100 + ord(prompt[0]))
        return {
            "hidden_states": torch.randn(batch, n_audio, 4, generator=g_x),
            "encoder_hidden_states": _per_prompt(batch, n_text, 32, generator=g_t),
            "pooled_projections": _per_prompt(batch, 32, generator=_gen(7)),
            "timestep": torch.full((batch,), 0.5),
            "img_ids": torch.stack([torch.zeros(n_audio), torch.arange(n_audio).float(), torch.zeros(n_audio)], 1),
            "txt_ids": torch.zeros(n_text, 3),
        }

    return TinyModel(
        "flux", model, inputs, ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep")
    )


def tiny_stable_audio() -> TinyModel:
    from diffusers import StableAudioDiTModel

    torch.manual_seed(0)
    model = StableAudioDiTModel(
        sample_size=8,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_attention_heads=4,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    ).eval()

    def inputs(prompt: str = "A", batch: int = 1, seed: int = 0, n_frames: int = 8, n_text: int = 5) -> dict:
        return {
            "hidden_states": torch.randn(batch, 3, n_frames, generator=_gen(seed)),
            "timestep": torch.full((batch,), 0.7),
            "encoder_hidden_states": _per_prompt(batch, n_text, 4, generator=_gen(100 + ord(prompt[0]))),
            "global_hidden_states": _per_prompt(batch, 1, 8, generator=_gen(7)),
            "rotary_embedding": _stable_audio_rope(n_frames + 1, 4),
        }

    keys = ("hidden_states", "timestep", "encoder_hidden_states", "global_hidden_states")
    return TinyModel("stable_audio", model, inputs, keys)


def _stable_audio_rope(seq: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(head_dim // 2, seq, use_real=True, repeat_interleave_real=False)


def tiny_audioldm2_unet() -> TinyModel:
    from diffusers.pipelines.audioldm2.modeling_audioldm2 import AudioLDM2UNet2DConditionModel

    torch.manual_seed(0)
    model = AudioLDM2UNet2DConditionModel(**_TINY_UNET, cross_attention_dim=([None, 16, 32], [None, 16, 32])).eval()

    def inputs(prompt: str = "A", batch: int = 1, seed: int = 0, n_text: int = 6) -> dict:
        g = _gen(100 + ord(prompt[0]))
        return {
            "sample": torch.randn(batch, 4, 8, 8, generator=_gen(seed)),
            "timestep": torch.tensor(500),
            "encoder_hidden_states": _per_prompt(batch, n_text, 16, generator=g),
            "encoder_hidden_states_1": _per_prompt(batch, n_text + 2, 32, generator=g),
        }

    return TinyModel("audioldm2_unet", model, inputs, ("sample", "encoder_hidden_states", "encoder_hidden_states_1"))


def tiny_unet2d() -> TinyModel:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    model = UNet2DConditionModel(**_TINY_UNET, cross_attention_dim=16).eval()

    def inputs(prompt: str = "A", batch: int = 1, seed: int = 0, n_text: int = 6) -> dict:
        return {
            "sample": torch.randn(batch, 4, 8, 8, generator=_gen(seed)),
            "timestep": torch.tensor(500),
            "encoder_hidden_states": _per_prompt(batch, n_text, 16, generator=_gen(100 + ord(prompt[0]))),
        }

    return TinyModel("unet2d", model, inputs, ("sample", "encoder_hidden_states"))


def tiny_musicgen() -> TinyModel:
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    torch.manual_seed(0)
    cfg = MusicgenConfig(
        text_encoder=T5Config(vocab_size=128, d_model=16, d_ff=4, num_layers=2, num_heads=4).to_dict(),
        audio_encoder=EncodecConfig(
            hidden_size=99, compress=1, num_filters=4, codebook_size=128, codebook_dim=99
        ).to_dict(),
        decoder=MusicgenDecoderConfig(
            vocab_size=99,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=4,
            ffn_dim=4,
            pad_token_id=99,
            decoder_start_token_id=99,
            bos_token_id=99,
            num_codebooks=4,
            tie_word_embeddings=False,
        ).to_dict(),
    )
    model = MusicgenForConditionalGeneration._from_config(
        cfg, attn_implementation={"text_encoder": "sdpa", "decoder": "sdpa", "audio_encoder": "eager"}
    ).eval()

    def inputs(prompt: str = "A", batch: int = 1, seed: int = 0, n_text: int = 6, n_tokens: int = 5) -> dict:
        ids = torch.randint(1, 128, (1, n_text), generator=_gen(100 + ord(prompt[0]))).expand(batch, -1).clone()
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "decoder_input_ids": torch.randint(0, 99, (batch * 4, n_tokens), generator=_gen(seed)),
        }

    return TinyModel("musicgen", model, inputs, ("input_ids", "attention_mask", "decoder_input_ids"))


_TOKEN_WORDS = [
    "a",
    "an",
    "the",
    "with",
    "and",
    "of",
    "in",
    "at",
    "by",
    "playing",
    "plays",
    "melody",
    "chords",
    "bass",
    "drums",
    "track",
    "piece",
    "tune",
    "song",
    "music",
    "style",
    "piano",
    "guitar",
    "flute",
    "violin",
    "trumpet",
    "organ",
    "synth",
    "lead",
    "happy",
    "sad",
    "calm",
    "dark",
    "pop",
    "rock",
    "jazz",
    "reggae",
    "waltz",
    "electronic",
    "classical",
    "fast",
    "slow",
]


def tiny_t5_tokenizer(max_vocab: int = 128):
    """A T5 (SentencePiece-Unigram) tokenizer built in memory from a small music vocabulary, plus letters as a
    fallback, so every prompt tokenizes offline. Ids stay below ``max_vocab`` (the tiny MusicGen's text vocab)."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, 0.0) for w in _TOKEN_WORDS]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"] + [("▁", -8.0)]
    if len(pieces) > max_vocab:
        raise ValueError(f"vocabulary of {len(pieces)} pieces exceeds max_vocab={max_vocab}")
    return T5Tokenizer(vocab=pieces, extra_ids=0)


TINY_MODELS: dict[str, Callable[[], TinyModel]] = {
    "flux": tiny_flux,
    "stable_audio": tiny_stable_audio,
    "audioldm2_unet": tiny_audioldm2_unet,
    "unet2d": tiny_unet2d,
    "musicgen": tiny_musicgen,
}


def tiny_model(name: str) -> TinyModel:
    """Build a tiny random-init model by name (see ``TINY_MODELS``)."""
    return TINY_MODELS[check_known("tiny model", name, TINY_MODELS)]()
