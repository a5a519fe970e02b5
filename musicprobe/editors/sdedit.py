"""SDEdit (Meng et al., 2022): noise the source to strength ``s``, then denoise it under the target prompt.

On an epsilon model: the source latent is noised to the training timestep ``s * T`` (one draw from ``seed``) and
DDIM denoises it from there under the target prompt with classifier-free guidance. ``strength`` trades structure
(low) for adherence (high): at 1 the source is forgotten, at 0 nothing changes. It inverts nothing and injects
nothing, which makes it the baseline every inversion-based editor is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.sources import RecordedSource, noised, step_at_strength
from musicprobe.errors import ConfigError
from musicprobe.inversion import SamplerPath


@dataclass
class SDEditConfig(EditConfig):
    """SDEdit settings: ``strength`` in (0, 1], DDIM ``steps`` over the whole range (``strength * steps`` run)."""

    strength: float = 0.5
    steps: int = 50
    solver: str = "ddim"
    target_guidance: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {self.strength}")
        if self.solver != "ddim":
            raise ConfigError(f"SDEdit denoises with DDIM (an epsilon model): solver must be ddim, got {self.solver!r}")


class SDEdit(Editor):
    """SDEdit on an :class:`~musicprobe.models.protocols.EpsModel` (mini-LDM, AudioLDM2)."""

    method = "sdedit"
    config_class = SDEditConfig

    def start_step(self, c: SDEditConfig) -> int:
        """The first DDIM step whose timestep is at or below ``strength * T``."""
        return step_at_strength(self.sampler(c), c.strength)

    def record_source(
        self, audio: np.ndarray, source_prompt: str, *, sr: int, config: SDEditConfig | None = None, progress=None
    ) -> RecordedSource:
        c = config or self.config
        y = self.prepare(audio, sr)
        x0 = self.model.encode(y, self.model.sr)
        sampler = self.sampler(c, guidance=c.target_guidance)
        start = self.start_step(c)
        t = int(sampler.times()[start])
        xt = noised(self.model, x0, t, c.seed)
        path = SamplerPath(np.array([0.0, t / self.model.num_train_timesteps]), [x0, xt], [], "sdedit", 0)
        return RecordedSource(path, None, [], source_prompt, sampler, "same_time", y, start=start, latent=x0)

    def run_edit(self, source: RecordedSource, target_prompt: str, c: SDEditConfig, progress=None):
        return source.sampler.sample(source.noise, target_prompt, guidance=c.target_guidance, start=source.start,
                                     context=self.probe.at_step, progress=progress).final

    def label(self, c: SDEditConfig) -> str:
        return f"SDEdit s={c.strength:g}"
