"""Inversion traces and sweeps: reconstruction error and the drift between the inversion and regeneration paths.

- :class:`InversionTrace` — one inversion + regeneration: the latents of both paths on the shared time grid,
  reconstruction errors (latent MSE, log-mel MSE, and on decoded audio chroma similarity and CQT-1 PCC against
  the source), and the per-time *drift* ``MSE(z_inv(t), z_regen(t))``: zero for an exact inverse, growing where
  the solver's local errors accumulate.
- :class:`InversionSweep` — reconstruction error against the model-evaluation budget for several solvers
  (equal-NFE comparison: RF-Solver does 2 evaluations per step, Euler 1).

Both plot themselves (plotly), save to / load from a folder (``trace.json`` + ``latents.npz``) or a JSON file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.float() - b.float()) ** 2).mean())


@dataclass
class InversionTrace:
    """Result of inverting a source latent and regenerating it (see module docstring)."""

    solver: str
    steps: int
    nfe: int
    times: np.ndarray  # ascending: inversion grid, t = 0 (data) ... 1 (noise)
    inversion: list[torch.Tensor]  # latents at ``times`` along the inversion
    regeneration: list[torch.Tensor]  # latents at ``times`` along the regeneration (same order as ``times``)
    prompt: str = ""
    guidance: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def source(self) -> torch.Tensor:
        return self.inversion[0]

    @property
    def reconstruction(self) -> torch.Tensor:
        return self.regeneration[0]

    @property
    def inverted_noise(self) -> torch.Tensor:
        return self.inversion[-1]

    @classmethod
    def from_paths(cls, inversion, regeneration, *, prompt: str = "", guidance: float = 1.0) -> InversionTrace:
        """The trace of an inversion path and the regeneration path that walked its grid back (SamplerPaths)."""
        times = np.asarray(inversion.times, dtype=np.float64)
        if times[0] > times[-1]:
            raise ValueError("an inversion path must walk from data (low time) to noise (high time)")
        return cls(
            inversion.solver,
            len(times) - 1,
            inversion.nfe + regeneration.nfe,
            times,
            list(inversion.latents),
            list(regeneration.latents[::-1]),
            prompt,
            guidance,
        )

    def drift(self) -> np.ndarray:
        """``MSE(z_inv(t), z_regen(t))`` for each time in ``times`` (0 at t = 1, where regeneration starts)."""
        return np.array([_mse(a, b) for a, b in zip(self.inversion, self.regeneration)])

    def latent_mse(self) -> float:
        return _mse(self.source, self.reconstruction)

    def summary(self, digits: int = 4) -> dict:
        out = {"solver": self.solver, "steps": self.steps, "nfe": self.nfe, "latent_mse": self.latent_mse()}
        out.update(self.metrics)
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in out.items()}

    def plot(self, title: str | None = None):
        import plotly.graph_objects as go

        fig = go.Figure(go.Scatter(x=self.times, y=self.drift(), mode="lines+markers", name="drift"))
        fig.update_layout(
            title=title or f"{self.solver}, {self.steps} steps ({self.nfe} NFE): inversion vs regeneration drift",
            xaxis_title="flow time t (0 = data, 1 = noise)",
            yaxis_title="MSE(z_inv(t), z_regen(t))",
            template="plotly_white",
            height=340,
        )
        return fig

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {k: getattr(self, k) for k in ("solver", "steps", "nfe", "prompt", "guidance", "metrics")}
        meta["times"] = self.times.tolist()
        (folder / "trace.json").write_text(json.dumps(meta, indent=2))
        np.savez_compressed(
            folder / "latents.npz",
            inversion=torch.stack(self.inversion).numpy(),
            regeneration=torch.stack(self.regeneration).numpy(),
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> InversionTrace:
        folder = Path(folder)
        meta = json.loads((folder / "trace.json").read_text())
        z = np.load(folder / "latents.npz")
        return cls(
            meta["solver"],
            meta["steps"],
            meta["nfe"],
            np.asarray(meta["times"]),
            list(torch.from_numpy(z["inversion"])),
            list(torch.from_numpy(z["regeneration"])),
            meta["prompt"],
            meta["guidance"],
            meta["metrics"],
        )


@dataclass
class InversionSweep:
    """Rows of ``{solver, steps, nfe, <errors>}`` for a set of budgets; ``.plot(metric)`` draws error vs NFE."""

    rows: list[dict]
    source: str = ""

    def table(self, metric: str = "mel_mse") -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for r in self.rows:
            out.setdefault(r["solver"], {})[int(r["nfe"])] = float(r[metric])
        return out

    def ratio(self, metric: str = "mel_mse", a: str = "rf-solver", b: str = "euler") -> dict[int, float]:
        """``metric(a) / metric(b)`` at each budget both solvers ran."""
        t = self.table(metric)
        return {n: t[a][n] / t[b][n] for n in sorted(set(t.get(a, {})) & set(t.get(b, {}))) if t[b][n] > 0}

    def plot(self, metric: str = "mel_mse", log_y: bool = True):
        import plotly.graph_objects as go

        fig = go.Figure()
        for solver, pts in self.table(metric).items():
            xs = sorted(pts)
            fig.add_trace(go.Scatter(x=xs, y=[pts[x] for x in xs], mode="lines+markers", name=solver))
        fig.update_layout(
            title=f"reconstruction {metric} vs model evaluations",
            xaxis_title="model evaluations (NFE)",
            yaxis_title=metric,
            template="plotly_white",
            height=360,
        )
        if log_y:
            fig.update_yaxes(type="log")
        return fig

    def to_dict(self) -> dict:
        return {"source": self.source, "rows": self.rows}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> InversionSweep:
        d = json.loads(Path(path).read_text())
        return cls(d["rows"], d.get("source", ""))
