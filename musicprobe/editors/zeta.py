"""ZETA (Manor & Michaeli, 2024): zero-shot editing with edit-friendly DDPM inversion.

1. draw every noisy latent of the source independently, and store the noise maps ``z_t`` that make each stochastic
   DDPM step land exactly on the next one (:func:`musicprobe.inversion.ddpm_invert`), under the *source* prompt
   with guidance ``source_guidance`` (the reference's ``cfg_src``);
2. regenerate from the step whose timestep is at most ``t_start`` under the *target* prompt with guidance
   ``target_guidance`` (``cfg_tar``), adding the stored noise maps at every step.

Reference defaults (``HilaManor/AudioEditingCode``, AudioLDM2-music): 200 steps, ``tstart = 100`` of them (here:
the training timestep ``t_start = 500``), ``cfg_src = 3``, ``cfg_tar = 12`` (``ZETAConfig.reference()``). On
mini-LDM a target guidance of 12 loses the melody (CQT-1 PCC 0.02 on 3 held-out pairs) for no adherence gain, so
ours is 6 (CQT-1 PCC 0.18, the same mini-CLAP score), with 50 steps. Under the source prompt with its own guidance
the regeneration is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.editors.base import Editor
from musicprobe.editors.config import EditConfig
from musicprobe.editors.sources import RecordedSource
from musicprobe.errors import ConfigError
from musicprobe.inversion import SamplerPath


@dataclass
class ZETAConfig(EditConfig):
    """ZETA settings: ``t_start`` is the training timestep regeneration starts from (0..T); ``eta`` the DDPM
    noise scale (1 = DDPM); ``seed`` draws the noisy latents."""

    steps: int = 50
    solver: str = "ddpm"
    t_start: int = 500
    source_guidance: float = 3.0
    target_guidance: float = 6.0
    eta: float = 1.0
    seed: int = 0

    @classmethod
    def reference(cls, **kw) -> ZETAConfig:
        """The defaults of ``HilaManor/AudioEditingCode`` (AudioLDM2-music): 200 steps, cfg 3 / 12."""
        return cls(**{"steps": 200, "target_guidance": 12.0, **kw})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.solver != "ddpm":
            raise ConfigError(f"ZETA inverts with edit-friendly DDPM; solver must be 'ddpm', got {self.solver!r}")
        if not 0 <= self.t_start <= 1000:
            raise ConfigError(f"t_start is a training timestep in 0..1000, got {self.t_start}")
        if not 0 < self.eta <= 1:
            raise ConfigError(f"eta must be in (0, 1], got {self.eta}")


class ZETA(Editor):
    """Edit-friendly DDPM inversion editing on an :class:`~musicprobe.models.protocols.EpsModel`."""

    method = "zeta"
    config_class = ZETAConfig

    def record_source(
        self, audio: np.ndarray, source_prompt: str, *, sr: int, config: ZETAConfig | None = None, progress=None
    ) -> RecordedSource:
        c = config or self.config
        y = self.prepare(audio, sr)
        x0 = self.model.encode(y, self.model.sr)
        sampler = self.sampler(c)
        maps = sampler.invert_ddpm(x0, source_prompt, eta=c.eta, seed=c.seed, context=self.probe.at_step)
        start = maps.start_index(c.t_start)
        path = SamplerPath(np.asarray(maps.timesteps[start:] / self.model.num_train_timesteps), [x0, maps.xts[start]],
                           [], "ddpm", len(maps.timesteps))
        return RecordedSource(path, None, [], source_prompt, sampler, "same_time", y, start=start, maps=maps,
                              latent=x0)

    def run_edit(self, source: RecordedSource, target_prompt: str, c: ZETAConfig, progress=None):
        if source.maps is None:
            raise ConfigError("ZETA edits a source recorded by ZETA.record_source (it needs the noise maps)")
        return source.sampler.sample_ddpm(source.maps, target_prompt, start=source.start, guidance=c.target_guidance,
                                          context=self.probe.at_step).final

    def label(self, c: ZETAConfig) -> str:
        return f"ZETA t_start={c.t_start}"
