"""Notebook widgets: vital-layer selection and injection-schedule editing (logic in :mod:`.logic`)."""

from musicprobe.widgets.logic import (
    comparison_rows,
    parse_weights,
    schedule_figure,
    schedule_from_controls,
    select_layers,
)

__all__ = [
    "ScheduleEditor",
    "VitalLayerSelector",
    "comparison_rows",
    "parse_weights",
    "schedule_figure",
    "schedule_from_controls",
    "select_layers",
]


def __getattr__(name: str):  # the ipywidgets front ends load lazily (ipywidgets is a notebook extra)
    if name in ("ScheduleEditor", "VitalLayerSelector"):
        from musicprobe.widgets import controls

        return getattr(controls, name)
    raise AttributeError(name)
