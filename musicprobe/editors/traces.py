"""Per-iteration instrumentation that iterative editors attach to an ``EditResult`` (``result.trace``).

A trace is a small dataclass with ``to_dict`` / ``plot``; ``EditResult.save`` writes it as ``trace.json`` with its
type name, and ``load_trace`` turns it back into the same type. A new iterative editor adds its trace class here
and to ``_trace_types``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DDSTrace:
    """Per-iteration instrumentation of a DDS run: the timestep drawn, the gradient norm and the latent's MSE
    distance to the source (it starts at 0 and grows as the edit moves away)."""

    t: list[int] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)

    def plot(self, title: str = "DDS: gradient norm and distance to the source per iteration"):
        from plotly.subplots import make_subplots

        fig = make_subplots(specs=[[{"secondary_y": True}]])
        it = list(range(1, len(self.t) + 1))
        fig.add_scatter(x=it, y=self.grad_norm, name="|g| (DDS gradient norm)", mode="lines")
        fig.add_scatter(x=it, y=self.distance, name="MSE(z, z_src)", mode="lines", secondary_y=True)
        fig.update_layout(title=title, xaxis_title="iteration", template="plotly_white", height=340)
        fig.update_yaxes(title_text="gradient norm", secondary_y=False)
        fig.update_yaxes(title_text="distance to source", secondary_y=True)
        return fig

    def to_dict(self) -> dict:
        return {"t": self.t, "grad_norm": self.grad_norm, "distance": self.distance}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> DDSTrace:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class PDSTrace(DDSTrace):
    """SteerMusic+'s per-iteration terms besides DDS's: the norms of the personalised delta score, of the
    regulariser and of PCon's gradient, the PCon loss, and the bytes PCon's autograd graph kept (its memory)."""

    pds_norm: list[float] = field(default_factory=list)
    reg_norm: list[float] = field(default_factory=list)
    pcon: list[float] = field(default_factory=list)
    pcon_norm: list[float] = field(default_factory=list)
    graph_bytes: list[int] = field(default_factory=list)

    def plot(self, title: str = "SteerMusic+: the terms of the gradient per iteration"):
        fig = super().plot(title)
        it = list(range(1, len(self.t) + 1))
        for name, ys in (("|PDS|", self.pds_norm), ("|regulariser|", self.reg_norm), ("|PCon grad|", self.pcon_norm)):
            if any(ys):
                fig.add_scatter(x=it, y=ys, name=name, mode="lines")
        return fig

    def to_dict(self) -> dict:
        return {**super().to_dict(), "pds_norm": self.pds_norm, "reg_norm": self.reg_norm, "pcon": self.pcon,
                "pcon_norm": self.pcon_norm, "graph_bytes": self.graph_bytes}

    @classmethod
    def load(cls, path: str | Path) -> PDSTrace:
        return cls(**json.loads(Path(path).read_text()))


def _trace_types() -> dict:
    from musicprobe.editors.word_attention import WordAttentionMaps

    return {"DDSTrace": DDSTrace, "PDSTrace": PDSTrace, "WordAttentionMaps": WordAttentionMaps}


def load_trace(path: Path):
    """The trace saved at ``path`` (``None`` if there is none; the raw dict for an unknown type)."""
    if not path.exists():
        return None
    blob = json.loads(path.read_text())
    cls = _trace_types().get(blob["type"])
    return cls(**blob["data"]) if cls else blob["data"]
