"""Per-layer probing scores: bypass one layer at a time and measure how much the generated music changes.

Stable Flow (whose scoring code was never released) bypasses each DiT block and compares the image with and
without it (DINOv2 similarity); the layers whose removal changes the output most are *vital*. MusicKV does the
same for the self-attention of a music DiT. Our scoring, documented here:

- for every probed point (a whole block, or only its attention sub-layer: ``Probe.bypass``), generate each
  (prompt, seed) of a probe set with the point bypassed, from the same noise as the reference generation;
- measure the change against the reference generation with four views, each ``1 - similarity`` so that larger
  means more vital: ``clap`` (mini-CLAP audio-embedding cosine; the perceptual view, like DINO for images),
  ``chroma`` (chroma similarity; harmony/melody), ``cqt1`` (CQT-1 PCC; the melody line), and ``mel``
  (log-mel MSE in latent space, divided by the latent variance; the spectral view);
- the combined ``score`` is the mean over views of each view's change divided by its largest value over the
  points (so every view weighs the same); spread is the standard deviation over the probe set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError

VIEWS = ("clap", "chroma", "cqt1", "mel")
DEFAULT_PROMPTS = (
    "a happy pop piece with piano playing the melody",
    "a dark rock piece with guitar playing the melody",
    "a calm jazz piece with trumpet playing the melody",
    "a sad classical piece with violin playing the melody",
)


@dataclass
class LayerScores:
    """Change per probed point (rows) and probe sample (columns) for each view; rank and select vital layers."""

    points: list[str]
    changes: dict[str, np.ndarray]  # view -> (n_points, n_samples)
    prompts: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def cost_views(self) -> list[str]:
        """Views that count against a point (patching's ``edit_cost``); none for bypass scores."""
        return list(self.settings.get("cost_views", []))

    @property
    def method(self) -> str:
        return self.settings.get("method", "bypass")

    @property
    def score(self) -> np.ndarray:
        """Combined score per point.

        The mean over views of the view's mean change, each divided by its largest magnitude over the points;
        cost views (if any) are subtracted, weighted by ``settings["cost_weight"]``.
        """
        gains, costs = [], []
        for name, v in self.changes.items():
            m = v.mean(1)
            top = np.abs(m).max()
            (costs if name in self.cost_views else gains).append(m / top if top > 0 else m)
        score = np.mean(gains, axis=0)
        if costs:
            score = score - float(self.settings.get("cost_weight", 1.0)) * np.mean(costs, axis=0)
        return score

    def spread(self, view: str | None = None) -> np.ndarray:
        if view is None:
            per = [v / max(np.abs(v.mean(1)).max(), 1e-12) for v in self.changes.values()]
            return np.mean(per, axis=0).std(1)
        return self.changes[view].std(1)

    def ranking(self, view: str | None = None) -> list[tuple[str, float]]:
        s = self.score if view is None else self.changes[view].mean(1)
        order = np.argsort(-s, kind="stable")
        return [(self.points[i], float(s[i])) for i in order]

    def _ranked_names(self, name: str, k: int, view: str | None, attention_only: bool) -> list[str]:
        if k < 1:
            raise ConfigError(f"{name}: k must be >= 1, got {k}")
        return [p for p, _ in self.ranking(view) if not attention_only or not _is_block(p)]

    def top_k(self, k: int, view: str | None = None, attention_only: bool = False) -> list[str]:
        return self._ranked_names("top_k", k, view, attention_only)[:k]

    def bottom_k(self, k: int, view: str | None = None, attention_only: bool = False) -> list[str]:
        """The ``k`` least vital points, least first (the control for a vital set: same count, lowest scores)."""
        return self._ranked_names("bottom_k", k, view, attention_only)[::-1][:k]

    def above(self, threshold: float, view: str | None = None) -> list[str]:
        """Points whose (combined or per-view) score is at least ``threshold``."""
        return [p for p, s in self.ranking(view) if s >= threshold]

    def plot(self, view: str | None = None, selected: list[str] | None = None, title: str | None = None):
        import plotly.graph_objects as go

        s = self.score if view is None else self.changes[view].mean(1)
        err = self.spread(view)
        sel = set(selected or [])
        colors = ["#d62728" if p in sel else "#1f77b4" for p in self.points]
        fig = go.Figure(go.Bar(x=self.points, y=s, error_y=dict(type="data", array=err), marker_color=colors))
        fig.update_layout(
            title=title or f"layer probing: {self._what()} ({view or 'combined'})",
            yaxis_title="score (higher = more vital)",
            template="plotly_white",
            height=360,
            xaxis_tickangle=-45,
        )
        return fig

    def _what(self) -> str:
        if self.method == "patching":
            return "structure carried when injected alone"
        return "change when bypassed"

    def to_dict(self) -> dict:
        return {
            "points": self.points,
            "changes": {k: v.tolist() for k, v in self.changes.items()},
            "prompts": self.prompts,
            "seeds": self.seeds,
            "settings": self.settings,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LayerScores:
        d = json.loads(Path(path).read_text())
        return cls(
            d["points"],
            {k: np.asarray(v) for k, v in d["changes"].items()},
            d["prompts"],
            d["seeds"],
            d.get("settings", {}),
        )


def _is_block(name: str) -> bool:
    return not name.endswith("attn")


def probe_points(probe, target: str = "attention") -> list[str]:
    """The points to probe: ``"attention"`` sub-layers, whole ``"blocks"``, or ``"both"``."""
    if target not in ("attention", "blocks", "both"):
        raise ConfigError(f"target must be 'attention', 'blocks' or 'both', got {target!r}")
    attn = [p for p in probe.points(kind="attention") if not p.endswith("cross_attn")]
    blocks = probe.points(kind="block")
    return {"attention": attn, "blocks": blocks, "both": blocks + attn}[target]


def probe_layers(
    model: Any,
    clap: Any = None,
    *,
    prompts: tuple[str, ...] | list[str] = DEFAULT_PROMPTS,
    seeds: tuple[int, ...] | list[int] = (0,),
    target: str = "attention",
    points: list[str] | None = None,
    steps: int = 12,
    guidance: float = 4.0,
    progress: bool = False,
) -> LayerScores:
    """Bypass each point of ``model`` (mini-flux) in turn and score the change (see module docstring)."""
    from tqdm.auto import tqdm

    from musicprobe.editors.base import resolve_clap
    from musicprobe.hooks import Probe
    from musicprobe.inversion import generate_latents
    from musicprobe.metrics import chroma_similarity, cqt1_pcc

    clap = resolve_clap(clap or "mini-clap")
    probe = Probe.for_model(model)
    points = points or probe_points(probe, target)
    for p in points:
        probe.resolve(p)
    jobs = [(p, s) for s in seeds for p in prompts]
    ps, ss = [j[0] for j in jobs], [j[1] for j in jobs]

    def run() -> tuple[torch.Tensor, list[np.ndarray], torch.Tensor]:
        lat = generate_latents(model, ps, ss, steps=steps, guidance=guidance)
        audio = [model.decode(x[None]) for x in lat]
        return lat, audio, clap.embed_audio(audio, model.sr)

    ref_lat, ref_audio, ref_emb = run()
    var = float(ref_lat.var())
    changes = {v: np.zeros((len(points), len(jobs))) for v in VIEWS}
    for i, point in enumerate(tqdm(points, desc="probing layers", disable=not progress)):
        with probe.bypass(point):
            lat, audio, emb = run()
        changes["clap"][i] = 1 - (emb * ref_emb).sum(-1).numpy()
        changes["mel"][i] = ((lat - ref_lat) ** 2).flatten(1).mean(1).numpy() / var
        changes["chroma"][i] = [1 - chroma_similarity(a, b, model.sr) for a, b in zip(ref_audio, audio)]
        changes["cqt1"][i] = [1 - cqt1_pcc(a, b, model.sr) for a, b in zip(ref_audio, audio)]
    settings = {"target": target, "steps": steps, "guidance": guidance}
    return LayerScores(points, changes, list(ps), list(ss), settings)
