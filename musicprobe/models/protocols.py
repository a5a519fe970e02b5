"""The model protocols editors, inverters, probes and notebooks program against.

Three families, one shape of contract. A mini model of the zoo and a real pipeline's backend implement the same
protocol, so a method written once runs on both. The protocols are ``runtime_checkable``:
``isinstance(model, FlowModel)`` checks that the members exist (not their signatures; the tests do that).

Shapes and units shared by every family:

- ``sr`` (int, Hz): the rate of the audio ``encode`` takes and ``decode`` returns; mono float32 in [-1, 1].
- ``encode(audio, sr)``: ``(samples,)`` audio at rate ``sr`` -> latent ``(1, ...)`` (the family's model space).
  A rate other than ``self.sr`` is an :class:`~musicprobe.errors.AudioError` naming both rates.
- ``decode(latent)``: latent ``(1, ...)`` or ``(...)`` -> ``(samples,)`` float32 audio at ``sr``.
- ``encode_prompt(prompts)``: a prompt or a list of prompts -> the family's prompt states (one row per prompt),
  accepted wherever a prompt is.
- ``noise(seed, batch)``: the initial latent (standard normal) of ``batch`` generations, reproducible per seed.
- ``denoiser``: the ``nn.Module`` a :class:`~musicprobe.hooks.Probe` instruments (called once per model
  evaluation). Token models call it ``decoder`` (called once per generated token).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

Prompt = Any  # a string, a list of strings, or the family's encoded prompt states


@runtime_checkable
class AudioModel(Protocol):
    """What every family shares (see the module docstring for shapes and units)."""

    @property
    def sr(self) -> int: ...

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor: ...

    def decode(self, latent: torch.Tensor) -> np.ndarray: ...

    def encode_prompt(self, prompts: str | Sequence[str]) -> Any: ...

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor: ...


@runtime_checkable
class FlowModel(AudioModel, Protocol):
    """A rectified-flow model (mini-flux, FluxMusic): ``x_t = (1 - t) x0 + t eps``, ``t`` in [0, 1].

    ``velocity(x, t, prompt, guidance)``: latents ``x`` (B, ...) at flow time ``t`` (float; 1 = noise) ->
    ``dx/dt = eps - x0`` of the same shape, with classifier-free guidance ``v_u + g (v_c - v_u)`` (``g = 1``: the
    conditional branch alone). ``prompt`` has one row or B rows.
    """

    @property
    def denoiser(self) -> nn.Module: ...

    def velocity(self, x: torch.Tensor, t: float, prompt: Prompt, guidance: float = 1.0) -> torch.Tensor: ...


@runtime_checkable
class EpsModel(AudioModel, Protocol):
    """A DDPM-family epsilon-prediction model (mini-LDM, AudioLDM2): ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps``.

    ``alphas_cumprod``: ``(num_train_timesteps,)`` float tensor ``a_t``, decreasing in ``t``.
    ``eps(x, t, prompt, guidance)``: latents ``x`` (B, ...) at integer training timestep ``t`` -> predicted
    noise of the same shape, with classifier-free guidance as in :class:`FlowModel`.
    """

    @property
    def denoiser(self) -> nn.Module: ...

    @property
    def alphas_cumprod(self) -> torch.Tensor: ...

    @property
    def num_train_timesteps(self) -> int: ...

    def eps(self, x: torch.Tensor, t: int, prompt: Prompt, guidance: float = 1.0) -> torch.Tensor: ...


LogitsHook = Callable[[int, torch.Tensor], torch.Tensor | None]


@runtime_checkable
class TokenModel(Protocol):
    """An autoregressive codec-token model (mini-MusicGen, MusicGen).

    - ``encode(audio, sr)`` -> codes ``(1, n_codebooks, frames)`` (int64); ``decode(codes)`` -> audio.
    - ``step(codes, prompt, guidance)`` -> logits ``(B, n_codebooks, vocab)`` of the next frame (one decoder call
      per generated token, with the delay pattern applied by the model).
    - ``generate(prompt, seed, frames, guidance, logits_hook)`` -> codes; ``logits_hook(i, logits)`` may return
      replaced logits at generated token ``i``.
    - ``decoder``: the ``nn.Module`` a Probe instruments (called once per generated token).
    """

    @property
    def sr(self) -> int: ...

    @property
    def decoder(self) -> nn.Module: ...

    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor: ...

    def decode(self, codes: torch.Tensor) -> np.ndarray: ...

    def encode_prompt(self, prompts: str | Sequence[str]) -> Any: ...

    def step(self, codes: torch.Tensor, prompt: Prompt, guidance: float = 3.0) -> torch.Tensor: ...

    def generate(
        self,
        prompt: Prompt,
        *,
        seed: int = 0,
        frames: int | None = None,
        guidance: float = 3.0,
        logits_hook: LogitsHook | None = None,
    ) -> torch.Tensor: ...


def family_of(model: Any) -> str:
    """``"flow"``, ``"eps"`` or ``"token"``: which protocol ``model`` implements (a clear error otherwise)."""
    from musicprobe.errors import ConfigError

    for name, proto in (("flow", FlowModel), ("eps", EpsModel), ("token", TokenModel)):
        if isinstance(model, proto):
            return name
    raise ConfigError(
        f"{type(model).__name__} implements none of the model protocols (FlowModel, EpsModel, TokenModel) of "
        "musicprobe.models.protocols"
    )


def hooked_module(model: Any) -> nn.Module:
    """The module a Probe instruments: ``model.denoiser`` (diffusion) or ``model.decoder`` (token models)."""
    return model.decoder if family_of(model) == "token" else model.denoiser
