"""mini-MusicGen: a small MusicGen-class autoregressive decoder (transformers ``MusicgenForCausalLM``) over RVQ codes.

What it keeps of MusicGen (``facebook/musicgen-small``, EditGen's base model):

- the decoder itself, stock: K parallel codebooks whose embeddings are summed per step, one LM head per codebook,
  sinusoidal positions, causal self-attention and cross-attention to the text states in every layer
  (``layers.{i}.self_attn`` / ``layers.{i}.cross_attn`` for the hook system's MusicGen adapter);
- the **delay pattern** (codebook ``k`` runs ``k`` frames behind, :mod:`musicprobe.models.delay`), the pad id
  ``codebook_size`` that starts the sequence, top-k 250 sampling, classifier-free guidance 3 on the logits with the
  ``[cond ; uncond]`` batch order;
- a linear projection of the text states into the decoder width (``enc_to_dec_proj`` of
  ``MusicgenForConditionalGeneration``).

What it replaces: EnCodec (a residual vector quantiser over the shared codec's standardised log-mel frames,
:mod:`musicprobe.models.rvq`, fitted on the training corpus: K=4 codebooks at 62.5 frames per second, decoded to
audio through the mini-vocoder like every other mini model) and T5 (MiniLM token states, the text encoder of the
whole zoo, so EditGen's word <-> token mapping works on the same tokenizer as the other editors). The
unconditional branch is the empty prompt's states (as the other mini models; MusicGen zeroes the text states).

Protocol: a :class:`~musicprobe.models.protocols.TokenModel`; ``decoder`` is the stock ``MusicgenForCausalLM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicprobe.audio.features import LOG_FLOOR
from musicprobe.errors import ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.models.delay import Stepper, TokenLoop, TokenSampling
from musicprobe.models.melmodel import MelModel
from musicprobe.models.rvq import ResidualVQ
from musicprobe.models.text import MAX_TOKENS, TEXT_DIM, TextStates


@dataclass(frozen=True)
class MiniMusicGenConfig:
    """Architecture of mini-MusicGen (the arguments of ``MusicgenDecoderConfig``), its codes and codec."""

    num_codebooks: int = 4
    codebook_size: int = 512
    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    ffn_dim: int = 1024
    dropout: float = 0.1
    max_position_embeddings: int = 512
    max_text_tokens: int = MAX_TOKENS
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("hidden_size must be a multiple of num_attention_heads")
        if self.max_position_embeddings < self.codec.n_frames + self.num_codebooks:
            raise ConfigError("max_position_embeddings must cover n_frames + num_codebooks steps")

    @property
    def pad_id(self) -> int:
        return self.codebook_size

    def decoder_config(self):
        from transformers import MusicgenDecoderConfig

        return MusicgenDecoderConfig(
            vocab_size=self.codebook_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            ffn_dim=self.ffn_dim,
            dropout=self.dropout,
            attention_dropout=0.0,
            activation_dropout=0.0,
            max_position_embeddings=self.max_position_embeddings,
            num_codebooks=self.num_codebooks,
            pad_token_id=self.pad_id,
            bos_token_id=self.pad_id,
            decoder_start_token_id=self.pad_id,
            tie_word_embeddings=False,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MiniMusicGenConfig:
        d = dict(d)
        d["codec"] = CodecConfig(**d.get("codec", {}))
        return cls(**d)


class MusicGenNetwork(nn.Module):
    """The trainable part: the stock ``MusicgenForCausalLM`` (``lm``) and the text projection (``text_proj``)."""

    def __init__(self, config: MiniMusicGenConfig):
        super().__init__()
        from transformers import MusicgenForCausalLM

        self.config = config
        self.lm = MusicgenForCausalLM._from_config(config.decoder_config(), attn_implementation="sdpa")
        self.text_proj = nn.Linear(TEXT_DIM, config.hidden_size)

    def forward(self, tokens: torch.Tensor, text: TextStates, cache=None) -> torch.Tensor:
        """Decoder input ``(B, K, S)`` under ``text`` (B rows) -> logits ``(B, K, S, V)`` (``cache`` grows)."""
        b, k, s = tokens.shape
        out = self.lm(
            input_ids=tokens.reshape(b * k, s),
            encoder_hidden_states=self.text_proj(text.tokens),
            encoder_attention_mask=text.mask,
            past_key_values=cache,
            use_cache=cache is not None,
            return_dict=True,
        )
        return out.logits.reshape(b, k, s, -1)


def build_network(config: MiniMusicGenConfig, seed: int = 0) -> MusicGenNetwork:
    torch.manual_seed(seed)
    return MusicGenNetwork(config).eval()


class MiniMusicGen(TokenLoop, MelModel):
    """A loaded mini-MusicGen, a :class:`~musicprobe.models.protocols.TokenModel`: the decoder, the text
    projection, the RVQ codebooks, the codec and the text encoder. ``Probe(mg.decoder)`` uses the MusicGen adapter.
    """

    family = "musicgen"
    label = "mini-musicgen"
    config_class = MiniMusicGenConfig
    build = staticmethod(build_network)
    weights_dtype = torch.float16

    def __init__(self, network: MusicGenNetwork, config: MiniMusicGenConfig, rvq: ResidualVQ | None = None,
                 meta: dict | None = None, vocoder=None):
        super().__init__(config, meta, vocoder)
        self.network = network.eval()
        if rvq is not None and (rvq.n_codebooks, rvq.codebook_size, rvq.dim) != (
            config.num_codebooks, config.codebook_size, config.codec.n_mels
        ):
            raise ConfigError(f"RVQ codebooks {tuple(rvq.codebooks.shape)} do not match the model config "
                              f"({config.num_codebooks}, {config.codebook_size}, {config.codec.n_mels})")
        self.rvq = rvq
        self.sampling = TokenSampling()

    # ---- protocol ----------------------------------------------------------------------------------------
    @property
    def decoder(self) -> nn.Module:
        return self.network.lm

    @property
    def weights_module(self) -> nn.Module:
        return self.network

    @property
    def n_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def pad_id(self) -> int:
        return self.config.pad_id

    @property
    def frames(self) -> int:
        """Frames of one clip (the codec's 320 at 62.5 per second)."""
        return self.config.codec.n_frames

    @property
    def frame_rate(self) -> float:
        """Code frames per second (62.5: the codec's hop)."""
        return self.sr / self.config.codec.hop_length

    def _quantiser(self) -> ResidualVQ:
        if self.rvq is None:
            raise ConfigError("this mini-MusicGen has no RVQ codebooks (load it from the zoo or pass rvq=)")
        return self.rvq

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Audio at rate ``sr`` -> codes ``(1, K, frames)`` (RVQ of the standardised log-mel frames)."""
        return self.codes_of_mel(self.codec.mel(audio, sr))[None]

    def codes_of_mel(self, mel: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Standardised log-mel ``(..., n_mels, frames)`` -> codes ``(..., K, frames)``."""
        m = torch.as_tensor(mel, dtype=torch.float32)
        return self._quantiser().encode(m.transpose(-1, -2)).transpose(-1, -2)

    def mel_of_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., K, frames)`` -> standardised log-mel ``(..., n_mels, frames)``."""
        return self._quantiser().decode(torch.as_tensor(codes).transpose(-1, -2)).transpose(-1, -2)

    def _clip_tokens(self, codes: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Codes ``(1, K, T)`` / ``(K, T)`` with ``T <= frames`` -> the codec's tokens of one clip (frames past ``T``
        filled with silence) and ``T``."""
        c = torch.as_tensor(codes)
        c = c[0] if c.ndim == 3 else c
        if c.ndim != 2 or c.shape[0] != self.n_codebooks or not 0 < c.shape[1] <= self.frames:
            raise ConfigError(f"codes must be (1, {self.n_codebooks}, frames <= {self.frames}), got "
                              f"{tuple(torch.as_tensor(codes).shape)}")
        mel = self.mel_of_codes(c)
        if c.shape[1] < self.frames:
            cc = self.config.codec
            silence = (np.log(LOG_FLOOR) - cc.mel_mean) / cc.mel_std
            mel = torch.nn.functional.pad(mel, (0, self.frames - c.shape[1]), value=float(silence))
        return self.codec.mel_to_tokens(mel), c.shape[1]

    def log_mel(self, codes: torch.Tensor) -> np.ndarray:
        """Codes ``(1, K, T)`` or ``(K, T)`` -> un-standardised log-mel ``(n_mels, T)`` (what the vocoder decodes)."""
        tokens, t = self._clip_tokens(codes)
        return self.codec.log_mel(tokens)[:, :t]

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes ``(1, K, T)`` -> audio (``T`` frames long) through the shared codec's decoder (the mini-vocoder)."""
        tokens, t = self._clip_tokens(codes)
        return self.codec.decode(tokens[None])[: t * self.config.codec.hop_length]

    def _text(self, prompt: str | Sequence[str] | TextStates) -> TextStates:
        return prompt if isinstance(prompt, TextStates) else self.encode_prompt(prompt)

    def rows_text(self, prompt, guidance: float, negative: str = "") -> TextStates:
        """The text rows of a batch: the prompts, then (under CFG) as many empty prompts: ``[cond ; uncond]``."""
        cond = self._text(prompt)
        if guidance == 1.0:
            return cond
        return TextStates.cat([cond, self.encode_prompt(negative).rows(len(cond))])

    def stepper(self, text: TextStates) -> Stepper:
        """A decoder fed one step at a time (rows = ``len(text)``), with its own key/value cache."""
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

        def step(tokens: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.network(tokens, text, cache)[:, :, -1]

        return step

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        folder = super().save(folder, dtype)
        self._quantiser().save(folder)
        return folder

    @classmethod
    def assemble(cls, network: nn.Module, config: MiniMusicGenConfig, folder: Path, *, meta: dict,
                 vocoder=None) -> MiniMusicGen:
        """The model around its loaded network, with the RVQ codebooks saved beside it."""
        return cls(network, config, rvq=ResidualVQ.load(folder), meta=meta, vocoder=vocoder)
