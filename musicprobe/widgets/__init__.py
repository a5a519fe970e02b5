"""Notebook widgets: vital-layer selection, injection-schedule editing, EditGen's and InstructME's controls (logic
in :mod:`.logic`)."""

from musicprobe.widgets.logic import (
    blending_figure,
    blending_profile,
    comparison_rows,
    describe_instruction,
    editgen_config_from_controls,
    parse_weights,
    schedule_figure,
    schedule_from_controls,
    select_layers,
    steermusic_plus_config_from_controls,
    tradeoff_figure,
)

__all__ = [
    "EditGenControls",
    "InstructMEControls",
    "ScheduleEditor",
    "SteerMusicPlusControls",
    "VitalLayerSelector",
    "blending_figure",
    "blending_profile",
    "comparison_rows",
    "describe_instruction",
    "editgen_config_from_controls",
    "parse_weights",
    "schedule_figure",
    "schedule_from_controls",
    "select_layers",
    "steermusic_plus_config_from_controls",
    "tradeoff_figure",
]


def __getattr__(name: str):  # the ipywidgets front ends load lazily (ipywidgets is a notebook extra)
    if name in ("EditGenControls", "InstructMEControls", "ScheduleEditor", "SteerMusicPlusControls",
                "VitalLayerSelector"):
        from musicprobe.widgets import controls

        return getattr(controls, name)
    raise AttributeError(name)
