"""Plotly figure builders. Pure data in, ``plotly.graph_objects.Figure`` out (no widgets, no JS required)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from musicprobe.audio.features import MelConfig, chroma, cqt, log_mel
from musicprobe.synth.theory import PITCH_CLASSES


def heatmap(
    matrix: np.ndarray,
    *,
    title: str,
    x: Sequence[float] | None = None,
    y_label: str = "bin",
    x_label: str = "time (s)",
    y_ticks: Sequence[str] | None = None,
    colorscale: str = "Viridis",
    height: int = 260,
) -> go.Figure:
    z = np.asarray(matrix, dtype=np.float32)
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y_ticks, colorscale=colorscale, colorbar={"thickness": 10}))
    fig.update_layout(
        title=title,
        xaxis_title=x_label,
        yaxis_title=y_label,
        height=height,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    return fig


def mel_figure(y: np.ndarray, sr: int = 16000, cfg: MelConfig | None = None, title: str = "log-mel") -> go.Figure:
    cfg = cfg or MelConfig(sr=sr)
    M = log_mel(y, cfg)
    return heatmap(M, title=title, x=np.arange(M.shape[1]) * cfg.hop_length / cfg.sr, y_label="mel bin")


def cqt_figure(y: np.ndarray, sr: int = 16000, title: str = "CQT (dB)") -> go.Figure:
    C = 20 * np.log10(cqt(y, sr, hop_length=512) + 1e-6)
    return heatmap(C, title=title, x=np.arange(C.shape[1]) * 512 / sr, y_label="CQT bin (24/oct from 65 Hz)")


def chroma_figure(y: np.ndarray, sr: int = 22050, title: str = "chroma") -> go.Figure:
    Ch = chroma(y, sr)
    return heatmap(
        Ch,
        title=title,
        x=np.arange(Ch.shape[1]) * 512 / sr,
        y_label="pitch class",
        y_ticks=list(PITCH_CLASSES),
        colorscale="Blues",
        height=220,
    )


def metrics_bar(scores: Mapping[str, Mapping[str, float]], title: str = "metrics") -> go.Figure:
    """Grouped bars: one group per metric, one bar per compared condition."""
    fig = go.Figure()
    for name, vals in scores.items():
        fig.add_bar(name=name, x=list(vals), y=[float(v) for v in vals.values()])
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis_range=[-0.2, 1.05],
        height=320,
        margin={"l": 40, "r": 10, "t": 40, "b": 80},
    )
    return fig


def chord_matrix_figure(matrix: np.ndarray, step: float, title: str = "chord progression matrix") -> go.Figure:
    """A chord matrix (:func:`~musicprobe.metrics.harmony.chord_matrix`) as a heat map: chord class x time."""
    from musicprobe.metrics.harmony import CHORD_CLASSES

    m = np.asarray(matrix, dtype=np.float32)
    times = np.arange(m.shape[1]) * step
    return heatmap(m, title=title, x=times, y_label="chord", y_ticks=list(CHORD_CLASSES), height=520)
