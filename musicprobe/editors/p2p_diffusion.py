"""Prompt-to-Prompt in a diffusion model: EditGen's baseline (the paper's and its reference code's Auffusion P2P).

EditGen's paper compares its autoregressive edits with Prompt-to-Prompt in a text-to-audio *diffusion* model
(Auffusion: a latent-diffusion UNet with cross-attention to text; the reference code's
``src/auffusion/prompt2prompt``). On the mini zoo that model class is mini-LDM. The source prompt and the edited
prompt run as two rows of one DDIM batch from **one** starting noise; the shared
:class:`~musicprobe.editors.p2p.PromptToPrompt` intervention controls the edited row, with Prompt-to-Prompt's
windows over the denoising steps instead of EditGen's depth blending:

- cross-attention (replace / refine / reweight, as in EditGen) during the first ``cross_steps`` of the steps
  (the reference notebooks' ``cross_replace_steps``, typically 0.8);
- self-attention copied from the source row during the first ``self_steps`` (``self_replace_steps``, 0.4);
- every attention module fully controlled (P2P has no depth blending; local blending is not implemented).

Two ways in, as EditGen: :meth:`DiffusionP2P.edit_prompts` edits the source prompt's own generation (the papers'
setting; ``mode="none"`` is the same-noise re-generation), :meth:`~musicprobe.editors.base.Editor.edit` a given
clip through DDIM inversion under the source prompt (what :class:`~musicprobe.editors.ddim_edit.DDIMEdit` does;
P2P's null-text inversion is not implemented, so the source row only approximates the clip). Results carry
EditGen's metrics, so the two methods share one table (``musicprobe bench editgen``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicprobe.editors.base import check_prompts
from musicprobe.editors.ddim_edit import DDIMEdit, DDIMEditConfig
from musicprobe.editors.editgen import editgen_metrics
from musicprobe.editors.p2p import MODES, check_reweight, prompt_to_prompt
from musicprobe.editors.result import EditResult
from musicprobe.editors.sources import RecordedSource
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks.rows import RowRoles


@dataclass
class DiffusionP2PConfig(DDIMEditConfig):
    """Prompt-to-Prompt settings on an epsilon model (shared fields: :class:`DDIMEditConfig`).

    Args:
        mode: ``replace`` | ``refine`` | ``reweight`` | ``none`` (the same-noise re-generation).
        cross_steps: fraction of the denoising steps, from the noisiest, with cross-attention control (P2P 0.8).
        self_steps: fraction with the source's self-attention copied (P2P 0.4; at most ``cross_steps``).
        cross_blend: ``b`` of replace / refine (1: the source's columns).
        word / weight: reweight's word and its factor in [-2, 2].
        seed: the starting noise of :meth:`DiffusionP2P.edit_prompts` (both rows).
        target_guidance: CFG of both rows (4: mini-LDM's generation guidance; the P2P notebooks use 7.5 on
            Stable Diffusion).
    """

    mode: str = "replace"
    cross_steps: float = 0.8
    self_steps: float = 0.4
    cross_blend: float = 1.0
    word: str = ""
    weight: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_known("mode", self.mode, MODES)
        for name in ("cross_steps", "self_steps", "cross_blend"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be a fraction in [0, 1], got {getattr(self, name)}")
        if self.self_steps > self.cross_steps:
            raise ConfigError(f"self_steps ({self.self_steps}) cannot exceed cross_steps ({self.cross_steps}): the "
                              "controller acts only inside the cross-attention window")
        check_reweight(self.weight)

    def windows(self) -> tuple[range, range]:
        """The denoising steps with cross-attention control and with self-attention copied."""
        return range(round(self.cross_steps * self.steps)), range(round(self.self_steps * self.steps))


@dataclass(frozen=True)
class GeneratedSource:
    """The source of a prompt edit: its prompt and the audio the model generated for it."""

    prompt: str
    audio: np.ndarray


class DiffusionP2P(DDIMEdit):
    """Prompt-to-Prompt on an :class:`~musicprobe.models.protocols.EpsModel` (mini-LDM, AudioLDM2)."""

    method = "p2p-diffusion"
    config_class = DiffusionP2PConfig  # type: ignore[assignment]

    def edit_prompts(self, source_prompt: str, target_prompt: str, *, config: DiffusionP2PConfig | None = None,
                     label: str = "") -> EditResult:
        """Generate ``source_prompt`` and its edit under ``target_prompt`` from one noise (see the module doc)."""
        c = config or self.config
        check_prompts(source_prompt, target_prompt)
        t0 = time.perf_counter()
        rows = self.denoise_rows(self.model.noise(c.seed), source_prompt, target_prompt, c)
        source = GeneratedSource(source_prompt, self.model.decode(rows[:1]))
        return self.finish(rows[1:], source, target_prompt, c, label=label, started=t0)

    def run_edit(self, source: RecordedSource, target_prompt: str, c: DiffusionP2PConfig,
                 progress=None) -> torch.Tensor:
        return self.denoise_rows(source.noise, source.prompt, target_prompt, c, progress)[1:]

    def denoise_rows(self, noise: torch.Tensor, source_prompt: str, target_prompt: str, c: DiffusionP2PConfig,
                     progress=None) -> torch.Tensor:
        """Both rows (source, edit) denoised from ``noise`` under ``c``'s control: latents ``(2, ...)``."""
        cross, self_steps = c.windows()
        ctrl = prompt_to_prompt(self.model, source_prompt, target_prompt, c.mode, word=c.word, weight=c.weight,
                                cross_blend=c.cross_blend, blending="none", steps=cross, self_steps=self_steps)
        sampler = self.sampler(c, c.target_guidance)
        with ExitStack() as stack:
            stack.enter_context(self.probe.with_roles(RowRoles(prompts=2, cfg=c.target_guidance != 1.0)))
            self.probe.reset_state()
            if ctrl is not None:
                stack.enter_context(self.probe.intervene(ctrl))
            path = sampler.sample(noise.expand(2, *noise.shape[1:]).clone(), [source_prompt, target_prompt],
                                  context=self.probe.at_step, progress=progress)
        return path.final

    def finish(self, latent: torch.Tensor, source: RecordedSource | GeneratedSource, target_prompt: str,
               config: DiffusionP2PConfig, **kw: Any) -> EditResult:
        """:meth:`Editor.finish` plus EditGen's metrics, so the two methods share one table."""
        res = super().finish(latent, source, target_prompt, config, **kw)
        res.metrics.update(editgen_metrics(res.source, res.edited, res.sr, self.clap))
        return res

    def label(self, c: DiffusionP2PConfig) -> str:
        return "no control (diffusion)" if c.mode == "none" else f"P2P {c.mode} (diffusion)"
