"""What the mini diffusion models share: the log-mel codec, the prompt cache, provenance and CFG batching.

:class:`MelModel` is the base of mini-flux, mini-SAO and mini-LDM (the protocol members ``sr``,
``encode_prompt`` and the classifier-free-guidance batch); :class:`MelTokenModel` adds the token layout of the two
transformers (a latent is ``(1, n_tokens, token_dim)``: the standardised log-mel cut into tokens of
``frames_per_token`` frames).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from musicprobe.models.codec import MelCodec
from musicprobe.models.text import PromptCache, TextStates
from musicprobe.models.weights import read_weights, save_weights

Network = Callable[[torch.Tensor, Any, TextStates], torch.Tensor]


class MelModel:
    """Codec, prompts and provenance of a mini model; ``config`` has ``codec`` and ``max_text_tokens``.

    Persistence is shared too: a subclass names its ``config_class``, its network builder ``build(config)``, the
    module holding its weights (``weights_module``), their on-disk ``weights_dtype`` and a ``label`` for errors;
    its constructor takes ``(network, config, meta=, vocoder=)``.
    """

    family = "base"
    label: ClassVar[str] = "mini model"
    config_class: ClassVar[Any]
    build: ClassVar[Callable[..., torch.nn.Module]]
    weights_dtype: ClassVar[torch.dtype] = torch.float16

    def __init__(self, config: Any, meta: dict | None = None, vocoder=None):
        self.config = config
        self.codec = MelCodec(config.codec, vocoder=vocoder)
        self.meta = dict(meta or {})
        self.prompts = PromptCache(config.max_text_tokens)

    @property
    def sr(self) -> int:
        return self.config.codec.sr

    @property
    def n_samples(self) -> int:
        """The window the model generates and edits at once (samples at ``sr``)."""
        return self.config.codec.n_samples

    def encode_prompt(self, prompts: str | list[str]) -> TextStates:
        """MiniLM states of ``prompts`` (cached; warns when a prompt is cut or has unknown words)."""
        return self.prompts.encode(prompts)

    @property
    def weights_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Weights (``weights_dtype`` unless ``dtype``), config and provenance into ``folder``."""
        return save_weights(folder, self.weights_module, self.config.to_dict(), self.meta, dtype or self.weights_dtype)

    @classmethod
    def load(cls, folder: str | Path, vocoder=None):
        """A model saved by :meth:`save` (a clear error when ``folder`` holds no weights)."""
        config, meta, state = read_weights(folder, cls.label)
        cfg = cls.config_class.from_dict(config)
        network = cls.build(cfg)
        network.load_state_dict(state)
        return cls.assemble(network, cfg, Path(folder), meta=meta, vocoder=vocoder)

    @classmethod
    def assemble(cls, network: torch.nn.Module, config: Any, folder: Path, *, meta: dict, vocoder=None):
        """The model around its loaded network (a subclass that keeps more files in ``folder`` reads them here)."""
        return cls(network, config, meta=meta, vocoder=vocoder)

    def guided(
        self, net: Network, x: torch.Tensor, t: Any, prompt: Any, guidance: float = 1.0, negative: str = ""
    ) -> torch.Tensor:
        """``net(x, t, text)`` with classifier-free guidance ``o_u + guidance (o_c - o_u)`` in one batched call
        (``[uncond ; cond]``, diffusers' order); ``guidance == 1`` runs the conditional branch alone."""
        cond = prompt if isinstance(prompt, TextStates) else self.encode_prompt(prompt)
        b = x.shape[0]
        cond = cond.rows(b)
        if guidance == 1.0:
            return net(x, t, cond)
        uncond = self.encode_prompt(negative).rows(b)
        out_u, out_c = net(torch.cat([x, x]), t, TextStates.cat([uncond, cond])).chunk(2)
        return out_u + guidance * (out_c - out_u)


class MelTokenModel(MelModel):
    """A mini model whose latent is the codec's token sequence ``(1, n_tokens, token_dim)`` (mini-flux, mini-SAO)."""

    @property
    def n_tokens(self) -> int:
        return self.config.codec.n_tokens

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Audio at rate ``sr`` -> latent tokens ``(1, n_tokens, token_dim)`` (standardised log-mel)."""
        return self.codec.encode(audio, sr)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Latent tokens -> audio (the codec's decoder)."""
        return self.codec.decode(latent)

    def log_mel(self, latent: torch.Tensor) -> np.ndarray:
        """Latent tokens -> un-standardised natural-log mel ``(n_mels, n_frames)``."""
        return self.codec.log_mel(latent)

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(batch, self.n_tokens, self.config.codec.token_dim, generator=g)
