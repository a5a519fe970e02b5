"""Attention statistics per layer and step: a second view of which layers carry musical form.

From captured attention probabilities (heads averaged, conditional branch) of a generation, for audio queries:

- ``entropy``: mean row entropy of the attention over all keys, divided by ``log(n_keys)`` (1 = uniform);
- ``locality``: mean attention-weighted temporal distance ``|i - j|`` between audio query and audio key tokens,
  divided by the number of audio tokens (small = attends to its temporal neighbourhood: local, "diagonal");
- ``text_mass``: the share of attention audio queries give to the leading non-audio tokens: the text in Flux's
  joint attention (how much the layer listens to the prompt), the global (timestep + duration) token in Stable
  Audio's self-attention (the prompt reaches those layers only through their cross-attention).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STATS = ("entropy", "locality", "text_mass")


def attention_stats_of(probs: np.ndarray, n_text: int) -> dict[str, float]:
    """Statistics of one attention map ``(queries, keys)`` whose first ``n_text`` tokens are text."""
    p = np.asarray(probs, dtype=np.float64)
    audio_q = p[n_text:]
    n_keys = p.shape[-1]
    ent = -(audio_q * np.log(np.clip(audio_q, 1e-12, None))).sum(-1).mean() / np.log(n_keys)
    aa = audio_q[:, n_text:]
    n_audio = aa.shape[0]
    idx = np.arange(n_audio)
    dist = np.abs(idx[:, None] - idx[None, :])
    mass = aa.sum(-1, keepdims=True)
    loc = float(((aa / np.clip(mass, 1e-12, None)) * dist).sum(-1).mean() / max(n_audio, 1))
    return {"entropy": float(ent), "locality": loc, "text_mass": float(audio_q[:, :n_text].sum(-1).mean())}


@dataclass
class AttentionStats:
    """``values[stat]`` is ``(n_layers, n_steps)``."""

    layers: list[str]
    steps: list[int]
    values: dict[str, np.ndarray]
    settings: dict = field(default_factory=dict)

    def plot(self, stat: str = "locality"):
        from musicprobe.errors import check_known
        from musicprobe.viz import heatmap

        check_known("statistic", stat, STATS)
        fig = heatmap(
            self.values[stat],
            title=f"attention {stat} per layer and step",
            x=self.steps,
            x_label="denoising step",
            y_label="layer",
            y_ticks=self.layers,
        )
        return fig

    def mean(self, stat: str) -> dict[str, float]:
        return {layer: float(v) for layer, v in zip(self.layers, self.values[stat].mean(1))}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        d = {
            "layers": self.layers,
            "steps": self.steps,
            "settings": self.settings,
            "values": {k: v.tolist() for k, v in self.values.items()},
        }
        path.write_text(json.dumps(d, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> AttentionStats:
        d = json.loads(Path(path).read_text())
        return cls(d["layers"], d["steps"], {k: np.asarray(v) for k, v in d["values"].items()}, d["settings"])


def attention_statistics(
    model: Any, prompt: str, *, seed: int = 0, steps: int = 12, guidance: float = 4.0, layers: list[str] | None = None
) -> AttentionStats:
    """Generate ``prompt`` with a flow model (mini-flux, mini-SAO) while capturing every self/joint attention layer;
    summarise each map (the leading non-audio keys of each layer, as its adapter declares them, are its prefix)."""
    from musicprobe.hooks import Probe
    from musicprobe.inversion import generate_latent
    from musicprobe.probing.layers import probe_points

    probe = Probe.for_model(model)
    layers = layers or probe_points(probe, "attention")
    names = [f"{p}.hook_pattern" for p in layers]
    branch = "cond" if guidance != 1.0 else "all"
    with probe.capture(names, heads="mean", branch=branch) as cache:
        generate_latent(model, prompt, steps=steps, guidance=guidance, seed=seed)
    prefix = {"text": model.config.max_text_tokens, "global": 1}
    step_ids = sorted(cache.steps(names[0]))
    vals = {s: np.zeros((len(layers), len(step_ids))) for s in STATS}
    for i, name in enumerate(names):
        for j, st in enumerate(step_ids):
            m = cache.get(name, step=st).float().numpy()
            while m.ndim > 2:
                m = m[0]
            for k, v in attention_stats_of(m, prefix.get(probe.resolve(layers[i]).prefix, 0)).items():
                vals[k][i, j] = v
    return AttentionStats(layers, step_ids, vals, {"prompt": prompt, "seed": seed, "steps": steps})
