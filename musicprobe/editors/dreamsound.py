"""DreamSound's personalised editing (Plitsis et al., ICASSP 2024), the baseline of SteerMusic+ (its Table 2).

The source is DDIM-inverted with the **base** model under the source prompt to a shallow noise level
(``strength``), then denoised with a **personalised** model under the prompt that names the concept. With the
DreamBooth model (``PersonalConcept.model()``) this is DreamSound; with the base model reading the learned token
(``PersonalConcept.token_model()``) it is the textual-inversion baseline, which in the paper's words denoises with
"the DPM employed during DDIM inversion" because textual inversion changes no weights. The paper inverts to
"t = 30" without saying of how many steps; ``strength`` makes the level explicit (ours measured on mini-LDM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.ddim_edit import DDIMEditConfig
from musicprobe.editors.sources import RecordedSource, step_at_strength
from musicprobe.errors import ConfigError
from musicprobe.inversion import Sampler


@dataclass
class DreamSoundConfig(DDIMEditConfig):
    """DDIM-inversion editing's settings (inversion without guidance, denoising with ``target_guidance``) plus
    ``strength``: how deep the inversion goes, in (0, 1] (0.6 measured on mini-LDM: at 0.5 the edit barely moves
    towards the concept)."""

    strength: float = 0.6

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {self.strength}")


class DreamSoundEdit(Editor):
    """Invert with ``model`` (the base), denoise with ``personal`` (a DreamBooth or textual-inversion model)."""

    method = "dreamsound"
    config_class = DreamSoundConfig

    def __init__(self, model, personal, config: DreamSoundConfig | None = None, clap="mini-clap",
                 method: str = "dreamsound"):
        super().__init__(model, config, clap)
        self.personal, self.method = personal, method

    def record_source(self, audio: np.ndarray, source_prompt: str, *, sr: int, config: DreamSoundConfig | None = None,
                      progress=None) -> RecordedSource:
        c = config or self.config
        y = self.prepare(audio, sr)
        x0 = self.model.encode(y, self.model.sr)
        sampler = self.sampler(c)
        start = step_at_strength(sampler, c.strength)
        path = sampler.invert(x0, source_prompt, start=start, context=self.probe.at_step, progress=progress)
        return RecordedSource(path, None, [], source_prompt, sampler, "same_time", y, start=start, latent=x0)

    def run_edit(self, source: RecordedSource, target_prompt: str, c: DreamSoundConfig, progress=None):
        sampler = Sampler(self.personal, c.solver, c.steps, c.target_guidance, x0_clip=c.x0_clip)
        return sampler.sample(source.noise, target_prompt, start=source.start, progress=progress).final

    def label(self, c: DreamSoundConfig) -> str:
        name = "DreamSound" if self.method == "dreamsound" else "Textual inversion"
        return f"{name} (s={c.strength:g})"
