"""Stable Audio Open (``diffusers.StableAudioPipeline``; MusicKV's base model) behind the flow protocol.

What runs where:

- **Audio**: the Oobleck VAE at the pipeline's rate (44.1 kHz for the real model), stereo. The protocol's audio is
  mono: :meth:`StableAudioBackend.encode` copies a mono clip into both channels (a stereo ``(2, samples)`` array
  is taken as it is) and :meth:`~StableAudioBackend.decode` averages the two channels (``decode_channels`` keeps
  them). Another rate is an error naming both; the editors resample for you. The latent is the VAE posterior's
  mean (MusicKV's real-audio path), laid out as the pipeline's ``(1, 64, frames)``.
- **Text and timing**: T5 token states through the projection model, masked as the pipeline masks them, then the
  ``seconds_start`` / ``seconds_end`` number embeddings appended to the cross-attention tokens and concatenated into
  the prepended global token, as ``StableAudioPipeline.encode_prompt`` / ``encode_duration`` build them. The
  duration is ``seconds`` (default: the whole window; set it to the clip's length for shorter clips).
  Classifier-free guidance follows the pipeline: with no negative prompt the unconditional cross-attention tokens
  are zeros and the global token is kept.
- **Network and sampler**: one DiT call per model evaluation, v-prediction in the cosine parameterisation,
  converted exactly to a rectified-flow velocity (:mod:`musicprobe.models.trigflow`), so every flow solver,
  editor and probe runs on it. The grid is the pipeline scheduler's own sigmas (``flow_times``). **Which sampler:**
  musicprobe walks it with the deterministic DPM-Solver++(2M) (``solver="dpmpp-2m"``), as MusicKV's reference code
  does; the stock ``CosineDPMSolverMultistepScheduler`` is the SDE variant and adds Brownian noise at every step.
  :class:`DeterministicCosineDPMSolver` is the stock scheduler with that noise removed: put it in the stock
  pipeline and its ``__call__`` gives what musicprobe's sampler gives (a test checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import CosineDPMSolverMultistepScheduler

from musicprobe.errors import ConfigError
from musicprobe.models.backends.base import PipelineBackend
from musicprobe.models.prompt_rows import PromptRows
from musicprobe.models.trigflow import sigma_to_time, velocity_from_v


class _NoNoise:
    """Stands in for the scheduler's Brownian-tree noise sampler (no ``torchsde`` call, no noise)."""

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.zeros(())


class DeterministicCosineDPMSolver(CosineDPMSolverMultistepScheduler):
    """``CosineDPMSolverMultistepScheduler`` without its SDE noise: the ODE DPM-Solver++ (first order, then 2M
    midpoint), as MusicKV's vendored scheduler. Same grid, same preconditioning, same order schedule."""

    def set_timesteps(self, num_inference_steps: int | None = None, device=None) -> None:
        super().set_timesteps(num_inference_steps, device)
        self.noise_sampler = _NoNoise()

    def dpm_solver_first_order_update(self, model_output, sample=None, noise=None):
        ratio = self.sigmas[self.step_index + 1] / self.sigmas[self.step_index]
        return ratio * sample + (1 - ratio) * model_output

    def multistep_dpm_solver_second_order_update(self, model_output_list, sample=None, noise=None):
        s_next, s0, s1 = (self.sigmas[self.step_index + k] for k in (1, 0, -1))
        h = torch.log(s0) - torch.log(s_next)  # lambda = -log(sigma)
        r0 = (torch.log(s1) - torch.log(s0)) / h
        m0, m1 = model_output_list[-1], model_output_list[-2]
        d = m0 + 0.5 * (m0 - m1) / r0
        ratio = s_next / s0
        return ratio * sample + (1 - ratio) * d


@dataclass
class SAOConditioning(PromptRows):
    """Prompt states of Stable Audio: cross-attention tokens ``[text ; start ; end]`` (B, n, d) and the global
    states ``[start | end]`` (B, 1, 2d)."""

    cross: torch.Tensor
    global_states: torch.Tensor

    def unconditional(self) -> SAOConditioning:
        """The pipeline's unconditional branch without a negative prompt: zero tokens, the same global token."""
        return SAOConditioning(torch.zeros_like(self.cross), self.global_states)


class StableAudioBackend(PipelineBackend):
    """A ``StableAudioPipeline`` as a :class:`~musicprobe.models.protocols.FlowModel` (see the module docstring)."""

    kind = "stable-audio"
    label = "Stable Audio Open"
    family = "stable_audio"  # the hook adapter and MusicKV's token choice key on it
    pipeline_class = "diffusers:StableAudioPipeline"
    default_source = "stabilityai/stable-audio-open-1.0"
    default_solver = "dpmpp-2m"

    def __init__(self, pipe, *, source: str = "built in memory", device=None, dtype=None,
                 seconds: float | None = None):
        super().__init__(pipe, source=source, device=device, dtype=dtype)
        self.seconds = self.window_seconds if seconds is None else float(seconds)
        if not 0 < self.seconds <= self.window_seconds + 1e-6:
            raise ConfigError(f"seconds must be in (0, {self.window_seconds:.2f}], got {seconds}")
        self._rotary: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # ---- the audio window -----------------------------------------------------------------------------------
    @property
    def sr(self) -> int:
        return int(self.pipe.vae.config.sampling_rate)

    @property
    def channels(self) -> int:
        return int(self.pipe.vae.config.audio_channels)

    @property
    def frames(self) -> int:
        return int(self.pipe.transformer.config.sample_size)

    @property
    def n_samples(self) -> int:
        return self.frames * int(self.pipe.vae.hop_length)

    @property
    def window_seconds(self) -> float:
        return self.n_samples / self.sr

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.pipe.transformer

    # ---- protocol -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, audio: np.ndarray, sr: int) -> torch.Tensor:
        """Audio at ``sr`` (= the VAE's rate) -> the VAE posterior mean ``(1, latent_channels, frames)``."""
        self.check_rate(sr)
        wave = self.window(audio, self.n_samples, self.channels).to(self.device, self.dtype)
        return self.pipe.vae.encode(wave).latent_dist.mean.float()

    @torch.no_grad()
    def decode_channels(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> ``(channels, samples)`` float32 audio."""
        z = latent if latent.ndim == 3 else latent[None]
        return self.pipe.vae.decode(z.to(self.device, self.dtype)).sample[0].float().cpu().numpy()

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> mono audio (the channels averaged)."""
        return self.decode_channels(latent).mean(axis=0).astype(np.float32)

    def log_mel(self, latent: torch.Tensor) -> np.ndarray:
        """Latent -> natural-log mel ``(64, frames)`` of the decoded mono audio (Stable Audio has no mel; the
        inversion error curves compare these)."""
        from musicprobe.audio.features import MelConfig, log_mel

        return log_mel(self.decode(latent), MelConfig(sr=self.sr, n_fft=2048, hop_length=512, fmax=self.sr / 2))

    def noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        shape = (batch, int(self.pipe.transformer.config.in_channels), self.frames)
        return torch.randn(shape, generator=self.generator(seed)).to(self.device)

    def prompt_key(self, prompt: str) -> tuple[str, float]:
        return prompt, self.seconds

    def encode_one(self, prompt: str) -> SAOConditioning:
        """Text and timing states of one prompt (``seconds``: the duration conditioning)."""
        pipe = self.pipe
        tok = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        ids, mask = tok.input_ids.to(self.device), tok.attention_mask.to(self.device)
        text = pipe.text_encoder(ids, attention_mask=mask)[0]
        text = pipe.projection_model(text_hidden_states=text).text_hidden_states
        text = text * mask.unsqueeze(-1).to(text.dtype)
        dur = pipe.projection_model(start_seconds=torch.tensor([0.0], device=self.device),
                                    end_seconds=torch.tensor([self.seconds], device=self.device))
        s, e = dur.seconds_start_hidden_states, dur.seconds_end_hidden_states
        return SAOConditioning(torch.cat([text, s, e], dim=1), torch.cat([s, e], dim=2))

    def rotary(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pipeline's partial-RoPE table over the global token and ``frames`` audio frames (built once)."""
        if frames not in self._rotary:
            from diffusers.models.embeddings import get_1d_rotary_pos_embed

            table = get_1d_rotary_pos_embed(self.pipe.rotary_embed_dim, frames + 1, use_real=True,
                                            repeat_interleave_real=False)
            self._rotary[frames] = tuple(r.to(self.device) for r in table)
        return self._rotary[frames]

    def predict_v(self, x_in: torch.Tensor, angle: torch.Tensor, states: SAOConditioning) -> torch.Tensor:
        """The DiT's v-prediction for scaled inputs ``x_in`` (B, C, frames) at trig angle ``angle`` (one call)."""
        b = x_in.shape[0]
        t_in = (angle.reshape(-1) * (2 / math.pi)).expand(b).to(self.device, self.dtype)
        out = self.pipe.transformer(
            x_in.to(self.device, self.dtype),
            t_in,
            encoder_hidden_states=states.cross,
            global_hidden_states=states.global_states,
            rotary_embedding=self.rotary(x_in.shape[2]),
            return_dict=False,
        )[0]
        return out.float()

    def forward(self, x: torch.Tensor, t: float, states: SAOConditioning) -> torch.Tensor:
        """Rectified-flow velocity at ``x`` (B, C, frames), flow time ``t`` (one DiT call, no guidance)."""
        return velocity_from_v(lambda x_in, a: self.predict_v(x_in, a, states), x.float(), t)

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: float, prompt, guidance: float = 1.0, negative: str | None = None):
        """Velocity with the pipeline's classifier-free guidance (``[uncond ; cond]`` in one call; on v, which is
        the same: the conversion is affine in v). ``negative=None``: the pipeline's zero unconditional tokens."""
        b = x.shape[0]
        cond = self.encode_prompt(prompt).rows(b)
        if guidance == 1.0:
            return self.forward(x, t, cond)
        uncond = cond.unconditional() if negative is None else self.encode_prompt(negative).rows(b)
        out_u, out_c = self.forward(torch.cat([x, x]), t, SAOConditioning.cat([uncond, cond])).chunk(2)
        return out_u + guidance * (out_c - out_u)

    def flow_times(self, steps: int) -> np.ndarray:
        """``steps + 1`` flow times from the pipeline scheduler's own sigmas (``t = sigma / (1 + sigma)``)."""
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        sched = type(self.pipe.scheduler).from_config(self.pipe.scheduler.config)
        sched.set_timesteps(steps)
        return sigma_to_time(sched.sigmas.double()).numpy()
