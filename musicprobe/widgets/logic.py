"""The pure functions behind the widgets (tested without a browser)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import plotly.graph_objects as go

from musicprobe.editors.config import check_keys
from musicprobe.errors import ConfigError, check_known
from musicprobe.hooks import InjectionSchedule, ScheduleSpec

SELECT_MODES = ("top_k", "threshold", "manual")


def select_layers(
    scores,
    mode: str = "top_k",
    *,
    k: int = 3,
    threshold: float = 0.5,
    manual: Sequence[str] = (),
    view: str | None = None,
) -> list[str]:
    """Vital layers from ``LayerScores`` by the top ``k``, a score ``threshold``, or a ``manual`` choice."""
    check_known("selection mode", mode, SELECT_MODES)
    if mode == "top_k":
        return scores.top_k(k, view)
    if mode == "threshold":
        return scores.above(threshold, view)
    unknown = [m for m in manual if m not in scores.points]
    if unknown:
        check_known("layer", unknown[0], scores.points)
    return [p for p in scores.points if p in set(manual)]


def parse_weights(text: str, n_steps: int) -> list[float]:
    """``"0, 0.5, 1"`` -> per-step weights, linearly resampled to ``n_steps`` values."""
    import numpy as np

    try:
        vals = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as e:
        raise ConfigError(f"custom weights must be numbers separated by commas, got {text!r}") from e
    if not vals:
        raise ConfigError("custom weights: give at least one number")
    if len(vals) == 1:
        vals = vals * 2
    xs = np.linspace(0, 1, len(vals))
    return [float(v) for v in np.interp(np.linspace(0, 1, n_steps), xs, vals)]


def schedule_from_controls(
    layers: Sequence[str],
    *,
    n_steps: int = 25,
    window: tuple[int, int] | None = None,
    custom: str = "",
    base: ScheduleSpec | None = None,
    **controls,
) -> InjectionSchedule:
    """An :class:`InjectionSchedule` from the schedule editor's control values (validated).

    Controls not given (``curve``, ``strength``, ``kind``, ``tokens``) keep ``base``'s values, MusicKV's reference
    schedule by default; ``window`` is ``(start, end)``; ``custom`` the weights of a custom curve.
    """
    from musicprobe.editors.musickv import musickv_schedule

    check_keys(ScheduleSpec, controls)
    spec = asdict(base or musickv_schedule())
    spec.update(controls)
    start, end = window if window is not None else (0, n_steps)
    weights = parse_weights(custom, n_steps) if spec["curve"] == "custom" else None
    spec.update(start=start, end=end, weights=weights)
    return ScheduleSpec(**spec).for_layers(list(layers), n_steps)


def schedule_figure(schedules: dict[str, InjectionSchedule] | InjectionSchedule, title: str = "") -> go.Figure:
    """Source weight ``w(step)`` of one or several schedules."""
    if isinstance(schedules, InjectionSchedule):
        schedules = {"schedule": schedules}
    fig = go.Figure()
    for name, s in schedules.items():
        fig.add_trace(
            go.Scatter(x=list(range(s.n_steps)), y=s.curve_values(), mode="lines+markers", name=name, line_shape="hv")
        )
    fig.update_layout(
        title=title or "source weight w(t) per denoising step",
        xaxis_title="denoising step",
        yaxis_title="w (source share of K/V)",
        yaxis_range=[-0.05, 1.05],
        template="plotly_white",
        height=300,
    )
    return fig


def comparison_rows(results: Sequence, keys: Sequence[str] = ("chroma", "cqt1_pcc", "clap_target")) -> dict:
    """``{label: {metric: value}}`` for a metrics table of several edit results."""
    return {r.label: {k: round(r.metrics[k], 3) for k in keys if k in r.metrics} for r in results}


def blending_profile(n_modules: int, blending: str, depth: str = "paper", cutoff: float = 0.75) -> list[float]:
    """The share of *controlled* attention ``1 - a`` at each attention module (call order, self and cross
    counted apart) under EditGen's depth blending."""
    from musicprobe.editors.p2p import BLENDINGS, DEPTHS, depth_alpha

    check_known("blending", blending, BLENDINGS)
    check_known("depth", depth, DEPTHS)
    return [1.0 - depth_alpha(j, n_modules, blending, depth, cutoff) for j in range(n_modules)]


def blending_figure(profiles: dict[str, list[float]], title: str = "how much of each attention module is controlled"
                    ) -> go.Figure:
    """Bars of :func:`blending_profile` per setting (x: attention module index in call order)."""
    fig = go.Figure()
    for name, prof in profiles.items():
        fig.add_bar(x=list(range(len(prof))), y=prof, name=name)
    fig.update_layout(title=title, xaxis_title="attention module (self, cross, self, cross, ...)",
                      yaxis_title="controlled share 1 - a", yaxis_range=[0, 1.05], template="plotly_white",
                      height=300, barmode="group")
    return fig


def editgen_config_from_controls(base, *, mode: str, blending: str, cutoff: float, weight: float, word: str):
    """The EditGen config the controls describe (validated: a clear error for a bad combination)."""
    return base.replace(mode=mode, blending=blending, cutoff=cutoff, weight=weight, word=word)


def describe_instruction(text: str) -> str:
    """What an instruction asks, in words (``"replace: piano -> flute"``), or the ConfigError naming what exists:
    the InstructME widget's live message."""
    from musicprobe.editors.instructions import parse_instruction

    p = parse_instruction(text)
    what = p.genre if p.op == "remix" else " -> ".join(p.instruments)
    return f"{p.op}: {what}"


def steermusic_plus_config_from_controls(base, *, lam: float, pcon_weight: float, reference: str):
    """The SteerMusic+ config the controls describe (validated: a clear error for a bad value)."""
    return base.replace(lam=lam, pcon_weight=pcon_weight, pcon_reference=reference)


def tradeoff_figure(points: dict[str, tuple[float, float]], title: str = "structure kept vs nearness to the concept",
                    x_label: str = "CQT-1 PCC to the source (higher = more structure kept)",
                    y_label: str = "concept distance (CDPAM stand-in, lower = more like the concept)") -> go.Figure:
    """One labelled point per method: ``{label: (structure, concept distance)}`` (SteerMusic+'s Figure 10 axes)."""
    fig = go.Figure()
    for label, (x, y) in points.items():
        fig.add_scatter(x=[x], y=[y], mode="markers+text", text=[label], textposition="top center", name=label)
    fig.update_layout(title=title, xaxis_title=x_label, yaxis_title=y_label, template="plotly_white",
                      showlegend=False, height=420)
    return fig
