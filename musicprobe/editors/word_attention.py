"""DAAM-style word heat maps for token models: each prompt word's cross-attention over generated time, per layer.

:class:`RecordWordAttention` is an observe-only intervention: at every decoder call (one generated step) it keeps,
per cross-attention layer, the conditional rows' attention over the text tokens averaged over heads, ``(rows,
text_tokens)``, on the CPU (a 320-step clip of 6 layers keeps ~50 KB per prompt). :class:`WordAttentionMaps` sums
token columns into words (a word split into several tokens gets their total attention), plots itself and
round-trips through JSON (an ``EditResult`` keeps it as its ``trace``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks.interventions import AttnCall, AttnTensors, Intervention


class RecordWordAttention(Intervention):
    """Record cross-attention ``(rows, text_tokens)`` per step and layer (heads mean, conditional half)."""

    def __init__(self, cfg: bool):
        super().__init__()
        self.cfg = cfg
        self.maps: dict[str, list[torch.Tensor]] = {}

    def bind(self, probe) -> None:
        self.attention_points = frozenset(probe.points(kind="cross_attn"))
        self._order = probe.points(kind="cross_attn")

    def wants_probs(self, point: str) -> bool:
        return True

    def observe(self, call: AttnCall, t: AttnTensors) -> None:
        p = t.probs
        if self.cfg:
            p = p[call.rows(p.shape[0], branch="cond")]
        self.maps.setdefault(call.point, []).append(p[:, :, -1].mean(1).detach().float().cpu())

    def stacked(self) -> np.ndarray:
        """What was recorded: ``(layers, rows, steps, text_tokens)``."""
        return np.stack([torch.stack(self.maps[n], 1).numpy() for n in self._order if n in self.maps])


@dataclass
class WordAttentionMaps:
    """Per prompt: ``maps[prompt]`` is ``(layers, words, steps)`` (token columns summed per word)."""

    prompts: list[str]
    words: list[list[str]]
    maps: list[np.ndarray]
    layers: list[str]
    frame_rate: float  # generated steps per second

    def __post_init__(self) -> None:
        self.maps = [np.asarray(m, dtype=np.float32) for m in self.maps]

    @classmethod
    def from_record(cls, raw: np.ndarray, prompts: list[str], word_tokens: list[list[tuple[str, list[int]]]],
                    layers: list[str], frame_rate: float) -> WordAttentionMaps:
        maps, words = [], []
        for r, wt in enumerate(word_tokens):
            words.append([w for w, _ in wt])
            maps.append(np.stack([raw[:, r][..., idx].sum(-1) if idx else np.zeros(raw.shape[:1] + raw.shape[2:3])
                                  for _, idx in wt], 1).astype(np.float32))
        return cls(list(prompts), words, maps, list(layers), float(frame_rate))

    def word_curve(self, word: str, prompt: int = 0, layer: int | str = "mean") -> np.ndarray:
        """One word's attention over generated steps (a layer index, or the mean over layers)."""
        if word not in self.words[prompt]:
            check_known("word", word, self.words[prompt])
        m = self._layer(prompt, layer)
        return m[self.words[prompt].index(word)]

    def _layer(self, prompt: int, layer: int | str) -> np.ndarray:
        m = self.maps[prompt]
        if layer == "mean":
            return m.mean(0)
        if not isinstance(layer, int) or not 0 <= layer < len(self.layers):
            raise ConfigError(f"layer must be 'mean' or an index in 0..{len(self.layers) - 1}, got {layer!r}")
        return m[layer]

    def plot(self, prompt: int = 0, layer: int | str = "mean"):
        """Heat map: the prompt's words (rows) over generated time (seconds), one layer or the layer mean."""
        import plotly.graph_objects as go

        m = self._layer(prompt, layer)
        t = np.arange(m.shape[1]) / self.frame_rate
        name = "mean over layers" if layer == "mean" else self.layers[int(layer)]
        fig = go.Figure(go.Heatmap(z=m, x=t, y=[f"{i}:{w}" for i, w in enumerate(self.words[prompt])],
                                   colorscale="Viridis", colorbar={"title": "attention"}))
        fig.update_layout(title=f"{self.prompts[prompt]!r}: cross-attention per word ({name})",
                          xaxis_title="generated time (s)", yaxis={"autorange": "reversed"},
                          template="plotly_white", height=120 + 26 * len(self.words[prompt]))
        return fig

    def to_dict(self) -> dict:
        return {"prompts": self.prompts, "words": self.words, "maps": [np.round(m, 5).tolist() for m in self.maps],
                "layers": self.layers, "frame_rate": self.frame_rate}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> WordAttentionMaps:
        return cls(**json.loads(Path(path).read_text()))
