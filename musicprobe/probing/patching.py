"""Per-layer patching scores: inject the source's K/V into one layer at a time and measure what it carries.

Bypass probing (:func:`musicprobe.probing.probe_layers`, the Stable Flow / MusicKV recipe) asks "which layers
change the output most when removed". For an editor that *injects* K/V, the question that matters is a causal
one, as in activation patching (Meng et al.'s causal tracing; Stable Flow's vital-layer injection itself):
"which layers, when given the source's keys and values, carry the source's musical structure into the edit".
This module answers it on the generated-audio path (our design, documented here):

- for each (source prompt, target prompt) pair and seed, generate the source from the seed's noise under the
  source prompt while recording K/V at every probed layer, and the plain edit (no injection) from the same noise
  under the target prompt;
- for each layer, generate the edit again with only that layer injected (``kind``, ``tokens`` and a window of
  the first ``window`` steps at full weight) and measure, against the plain edit:

  - structure carried toward the source (larger = more vital): ``chroma`` and ``cqt1`` (gain in chroma
    similarity and CQT-1 PCC to the source audio), ``mel`` (drop of the latent MSE to the source, divided by
    the latent variance);
  - the price in editability: ``edit_cost`` (drop of the mini-CLAP score of the target prompt).

``LayerScores.score`` (with ``settings["cost_views"] = ["edit_cost"]``) is the mean of the normalised structure
views minus ``cost_weight`` times the normalised cost, so the top layers carry structure without carrying the
source's timbre and text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicprobe.errors import ConfigError
from musicprobe.probing.layers import LayerScores, probe_points

DEFAULT_PAIRS = (
    ("a happy pop piece with piano playing the melody", "a happy pop piece with flute playing the melody"),
    ("a dark rock piece with guitar playing the melody", "a dark rock piece with violin playing the melody"),
    ("a calm jazz piece with trumpet playing the melody", "a calm jazz piece with piano playing the melody"),
    ("a sad classical piece with violin playing the melody", "a sad classical piece with trumpet playing the melody"),
)
STRUCTURE_VIEWS = ("chroma", "cqt1", "mel")


def patch_layers(
    model: Any,
    clap: Any = None,
    *,
    pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]] = DEFAULT_PAIRS,
    seeds: tuple[int, ...] | list[int] = (0,),
    target: str = "attention",
    points: list[str] | None = None,
    kind: str = "kv",
    tokens: str = "audio",
    steps: int = 12,
    window: int | None = None,
    guidance: float = 4.0,
    cost_weight: float = 0.5,
    progress: bool = False,
) -> LayerScores:
    """Inject each point of ``model`` (mini-flux) alone and score structure carried vs editability lost."""
    from tqdm.auto import tqdm

    from musicprobe.editors.base import resolve_clap
    from musicprobe.editors.sources import denoise_injecting, generate_and_record
    from musicprobe.hooks import InjectionSchedule, Probe
    from musicprobe.inversion import Sampler

    clap = resolve_clap(clap or "mini-clap")
    window = steps // 2 if window is None else window
    if not 1 <= window <= steps:
        raise ConfigError(f"patch_layers: window must be within 1..steps={steps}, got {window}")
    if not pairs:
        raise ConfigError("patch_layers: give at least one (source prompt, target prompt) pair")
    probe = Probe.for_model(model)
    sampler = Sampler(model, "euler", steps, guidance)
    points = points or probe_points(probe, target)
    for p in points:
        probe.resolve(p)
    jobs = [(pair, s) for s in seeds for pair in pairs]
    views = (*STRUCTURE_VIEWS, "edit_cost")
    changes = {v: np.zeros((len(points), len(jobs))) for v in views}
    bar = tqdm(total=len(jobs) * (len(points) + 2), desc="patching layers", disable=not progress)
    for j, ((src_prompt, tgt_prompt), seed) in enumerate(jobs):
        src, src_lat = generate_and_record(sampler, probe, model.noise(seed), src_prompt, points)
        ref = _Reference(model, clap, src_lat, tgt_prompt)
        plain, _ = denoise_injecting(probe, src, tgt_prompt, guidance=guidance)
        base = ref.measure(plain.final)
        bar.update(2)
        for i, point in enumerate(points):
            sched = InjectionSchedule(
                layers=[point], kind=kind, tokens=tokens, curve="window", end=window, n_steps=steps
            )
            path, _ = denoise_injecting(probe, src, tgt_prompt, schedule=sched, guidance=guidance)
            chroma, cqt, mse, clap_t = ref.measure(path.final)
            changes["chroma"][i, j] = chroma - base[0]
            changes["cqt1"][i, j] = cqt - base[1]
            changes["mel"][i, j] = base[2] - mse
            changes["edit_cost"][i, j] = base[3] - clap_t
            bar.update(1)
    bar.close()
    settings = {
        "method": "patching",
        "target": target,
        "kind": kind,
        "tokens": tokens,
        "steps": steps,
        "window": window,
        "guidance": guidance,
        "cost_views": ["edit_cost"],
        "cost_weight": cost_weight,
        "pairs": [list(p) for p in pairs],
    }
    prompts = [f"{a} -> {b}" for (a, b), _ in jobs]
    return LayerScores(points, changes, prompts, [s for _, s in jobs], settings)


class _Reference:
    """The generated source of one job, against which an edit's latent is measured."""

    def __init__(self, model: Any, clap: Any, src_latent, target_prompt: str):
        self.model, self.clap, self.latent, self.prompt = model, clap, src_latent, target_prompt
        self.audio = model.decode(src_latent)
        self.var = float(src_latent.var())

    def measure(self, latent) -> tuple[float, float, float, float]:
        """Chroma similarity, CQT-1 PCC and latent MSE / variance to the source; mini-CLAP to the target prompt."""
        from musicprobe.metrics import chroma_similarity, cqt1_pcc
        from musicprobe.metrics.clap import clap_score

        sr = self.model.sr
        audio = self.model.decode(latent)
        mse = float(((latent - self.latent) ** 2).mean()) / self.var
        return (
            chroma_similarity(self.audio, audio, sr),
            cqt1_pcc(self.audio, audio, sr),
            mse,
            float(clap_score(self.clap, audio, sr, self.prompt)),
        )
