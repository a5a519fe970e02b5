"""MusicGen (``transformers.MusicgenForConditionalGeneration``; EditGen's base model) behind the token protocol.

What runs where:

- **Codec**: the model's own EnCodec (32 kHz mono for the real checkpoints, K codebooks at its frame rate):
  ``encode`` gives ``(1, K, frames)`` codes, ``decode`` audio. Another rate is an error naming both (editors
  resample for you).
- **Text**: the T5 encoder's states through ``enc_to_dec_proj`` (when the widths differ) and multiplied by the
  mask, exactly as ``MusicgenForConditionalGeneration.forward``; classifier-free guidance as its ``generate``:
  ``[cond ; uncond]`` rows, the unconditional states and mask all zeros, ``l_u + g (l_c - l_u)`` on the logits.
- **Decoding loop**: musicprobe's one token loop (:func:`~musicprobe.models.delay.sample_codes`: delay pattern, key /
  value cache, top-k with the Gumbel-max trick and one noise draw per step shared by every row, logits hook,
  teacher forcing), the loop mini-MusicGen and EditGen use. Its draws differ from ``generate``'s sampler (common
  random numbers are what make "same seed" meaningful across EditGen's rows); with ``top_k=1`` both are greedy and
  give the same codes (a test checks it).
- ``decoder`` (what the hook system instruments) is the stock ``MusicgenForCausalLM``, as on mini-MusicGen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.backends.base import PartsPipeline, PipelineBackend
from musicprobe.models.delay import Stepper, TokenLoop, TokenSampling
from musicprobe.models.prompt_rows import PromptRows


class MusicGenPipeline(PartsPipeline):
    """The model and its T5 tokenizer as one loadable unit (what a diffusers pipeline is to the other backends)."""

    parts = ("model", "tokenizer")

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, source: str, torch_dtype: torch.dtype | None = None, **kwargs: Any) -> MusicGenPipeline:
        from transformers import AutoTokenizer, MusicgenForConditionalGeneration

        model = MusicgenForConditionalGeneration.from_pretrained(source, dtype=torch_dtype, **kwargs)
        return cls(model, AutoTokenizer.from_pretrained(source))

    def save_pretrained(self, folder: str | Path) -> None:
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


@dataclass
class MusicGenText(PromptRows):
    """Decoder-ready text states ``(B, L, d)`` (projected and masked) and their mask ``(B, L)``."""

    states: torch.Tensor
    mask: torch.Tensor

    def null(self) -> MusicGenText:
        """MusicGen's unconditional rows: zero states, zero mask."""
        return MusicGenText(torch.zeros_like(self.states), torch.zeros_like(self.mask))


class MusicGenBackend(TokenLoop, PipelineBackend):
    """A ``MusicgenForConditionalGeneration`` as a :class:`~musicprobe.models.protocols.TokenModel` (see the
    module docstring). ``seconds``: the default length of a generation (frames = seconds x frame rate)."""

    kind = "musicgen"
    label = "MusicGen"
    family = "musicgen"
    pipeline_class = "musicprobe.models.backends.musicgen:MusicGenPipeline"
    default_source = "facebook/musicgen-small"

    def __init__(self, pipe, *, source: str = "built in memory", device=None, dtype=None, seconds: float = 10.0):
        super().__init__(pipe, source=source, device=device, dtype=dtype)
        if seconds <= 0:
            raise ConfigError(f"seconds must be positive, got {seconds}")
        self.seconds = float(seconds)
        self.sampling = TokenSampling()

    @property
    def model(self) -> Any:
        return self.pipe.model

    # ---- codec --------------------------------------------------------------------------------------------
    @property
    def sr(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.model.config.audio_encoder.frame_rate)

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.frame_rate))

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.sr))

    @property
    def n_codebooks(self) -> int:
        return int(self.model.decoder.num_codebooks)

    @property
    def pad_id(self) -> int:
        return int(self.model.generation_config.pad_token_id)

    @property
    def decoder(self) -> torch.nn.Module:
        return self.model.decoder

    @property
    def tokenizer(self) -> Any:
        """The text tokenizer (EditGen maps words to tokens with it)."""
        return self.pipe.tokenizer

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Mono audio at ``sr`` (= EnCodec's rate) -> codes ``(1, K, frames)``."""
        self.check_rate(sr)
        y = np.asarray(audio, dtype=np.float32)
        y = y.mean(axis=0) if y.ndim == 2 else y
        x = torch.from_numpy(y)[None, None].to(self.device, self.dtype)
        codes = self.model.audio_encoder.encode(x).audio_codes  # (chunks=1, 1, K, frames)
        return codes[0].long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        c = torch.as_tensor(codes)
        c = c[None] if c.ndim == 2 else c
        out = self.model.audio_encoder.decode(c[None].to(self.device), [None]).audio_values
        return out[0, 0].float().cpu().numpy()

    # ---- text ---------------------------------------------------------------------------------------------
    def encode_one(self, prompt: str) -> MusicGenText:
        """T5 states of one prompt, projected and masked as the stock forward."""
        tok = self.tokenizer(prompt, return_tensors="pt", truncation=True,
                             max_length=self.max_text_tokens or None)
        ids, mask = tok.input_ids.to(self.device), tok.attention_mask.to(self.device)
        h = self.model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if (self.model.text_encoder.config.hidden_size != self.model.decoder.config.hidden_size
                and self.model.decoder.config.cross_attention_hidden_size is None):
            h = self.model.enc_to_dec_proj(h)
        return MusicGenText(h * mask[..., None].to(h.dtype), mask)

    def rows_text(self, prompt, guidance: float) -> MusicGenText:
        cond = self.encode_prompt(prompt)
        return cond if guidance == 1.0 else MusicGenText.cat([cond, cond.null()])

    # ---- decoding -----------------------------------------------------------------------------------------
    def stepper(self, text: MusicGenText) -> Stepper:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

        def step(tokens: torch.Tensor) -> torch.Tensor:
            b, k, s = tokens.shape
            with torch.no_grad():
                out = self.model.decoder(input_ids=tokens.reshape(b * k, s).to(self.device),
                                         encoder_hidden_states=text.states, encoder_attention_mask=text.mask,
                                         past_key_values=cache, use_cache=True, return_dict=True)
            return out.logits.reshape(b, k, s, -1)[:, :, -1].float().cpu()

        return step
