"""DDIM-inversion editing: invert the source with DDIM under its prompt, regenerate under the target prompt.

The inversion runs without guidance by default (``source_guidance = 1``: classifier-free guidance breaks DDIM's
invertibility; null-text inversion exists to repair exactly that), the regeneration with the target prompt's
guidance. Its reconstruction error grows with the step size and is what ZETA's edit-friendly inversion removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.sources import RecordedSource
from musicprobe.errors import ConfigError


@dataclass
class DDIMEditConfig(EditConfig):
    """DDIM inversion editing settings (shared fields: see :class:`~musicprobe.editors.config.EditConfig`)."""

    steps: int = 50
    solver: str = "ddim"
    source_guidance: float = 1.0
    target_guidance: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.solver != "ddim":
            raise ConfigError(f"DDIM editing inverts with DDIM; solver must be 'ddim', got {self.solver!r}")


class DDIMEdit(Editor):
    """DDIM inversion + regeneration on an :class:`~musicprobe.models.protocols.EpsModel`."""

    method = "ddim"
    config_class = DDIMEditConfig

    def record_source(
        self, audio: np.ndarray, source_prompt: str, *, sr: int, config: DDIMEditConfig | None = None, progress=None
    ) -> RecordedSource:
        c = config or self.config
        y = self.prepare(audio, sr)
        x0 = self.model.encode(y, self.model.sr)
        sampler = self.sampler(c)
        path = sampler.invert(x0, source_prompt, context=self.probe.at_step, progress=progress)
        return RecordedSource(path, None, [], source_prompt, sampler, "same_time", y, latent=x0)

    def run_edit(self, source: RecordedSource, target_prompt: str, c: DDIMEditConfig, progress=None):
        return source.sampler.sample(source.noise, target_prompt, guidance=c.target_guidance,
                                     context=self.probe.at_step, progress=progress).final

    def label(self, c: DDIMEditConfig) -> str:
        return f"DDIM inversion ({c.steps} steps)"
