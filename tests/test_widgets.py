"""The widgets' logic and their ipywidgets front ends, driven from Python (no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from musicprobe.editors import EditResult
from musicprobe.errors import ConfigError, UnknownNameError
from musicprobe.probing import LayerScores
from musicprobe.widgets import (
    ScheduleEditor,
    VitalLayerSelector,
    parse_weights,
    schedule_figure,
    schedule_from_controls,
    select_layers,
)

POINTS = ["double_blocks.0.attn", "single_blocks.0.attn", "single_blocks.1.attn", "single_blocks.2.attn"]


@pytest.fixture()
def scores() -> LayerScores:
    # one view, two probe samples; combined score = mean change / max = [0.25, 1, 0.5, 0.125]
    ch = np.array([[0.1, 0.1], [0.4, 0.4], [0.2, 0.2], [0.05, 0.05]])
    return LayerScores(POINTS, {"mel": ch})


def _result(label: str, chroma: float) -> EditResult:
    return EditResult("musickv", 16000, np.zeros(160), np.zeros(160), "a", "b", {}, {"chroma": chroma}, label=label)


def test_select_layers_modes(scores):
    assert select_layers(scores, "top_k", k=2) == ["single_blocks.0.attn", "single_blocks.1.attn"]
    assert select_layers(scores, "threshold", threshold=0.25) == POINTS[1:3] + POINTS[:1]
    assert select_layers(scores, "manual", manual=["single_blocks.2.attn", "double_blocks.0.attn"]) == [
        "double_blocks.0.attn",
        "single_blocks.2.attn",
    ]
    with pytest.raises(UnknownNameError, match="single_blocks.2.attn"):
        select_layers(scores, "manual", manual=["single_blocks.2.atn"])
    with pytest.raises(UnknownNameError, match="top_k"):
        select_layers(scores, "top-k")


def test_schedule_from_controls_and_weights():
    s = schedule_from_controls(["x"], curve="window", window=(1, 3), strength=0.5, n_steps=5)
    assert s.curve_values() == [0, 0.5, 0.5, 0, 0]
    assert parse_weights("0, 1", 5) == [0, 0.25, 0.5, 0.75, 1.0]
    custom = schedule_from_controls(["x"], curve="custom", custom="1, 0", n_steps=3)
    assert custom.curve_values() == [1.0, 0.5, 0.0]
    with pytest.raises(ConfigError, match="numbers separated by commas"):
        parse_weights("0, high", 4)
    with pytest.raises(ConfigError, match="strength"):
        schedule_from_controls(["x"], strength=1.5)
    fig = schedule_figure({"a": s, "b": custom})
    assert [len(t.y) for t in fig.data] == [5, 3]


def test_vital_layer_selector_follows_its_controls_and_runs(scores):
    calls = []

    def run(layers):
        calls.append(layers)
        return _result("", 0.9)

    sel = VitalLayerSelector(scores, run=run, k=1)
    assert sel.selected == ["single_blocks.0.attn"]
    sel.k.value = 3
    assert sel.selected == ["single_blocks.0.attn", "single_blocks.1.attn", "double_blocks.0.attn"]
    colors = list(sel.figure.data[0].marker.color)
    assert colors.count("#d62728") == 3 and colors[3] != "#d62728"
    sel.mode.value = "manual"
    sel.manual.value = ("single_blocks.2.attn",)
    assert sel.selected == ["single_blocks.2.attn"]
    res = sel.run_edit()
    assert calls == [["single_blocks.2.attn"]] and res.label == "single_blocks.2.attn"
    assert len(sel.panel.results) == 1 and len(sel.panel.out.outputs) == 2  # audio + comparison table


def test_schedule_editor_updates_live_and_keeps_the_last_valid_schedule():
    runs = []
    ed = ScheduleEditor(["single_blocks.1.attn"], n_steps=4, run=lambda s: runs.append(s) or _result("", 0.8))
    assert ed.schedule.curve == "ramp" and list(ed.figure.data[0].y) == [0, 0.25, 0.5, 0.75]
    ed.curve.value = "constant"
    ed.strength.value = 0.5
    assert list(ed.figure.data[0].y) == [0.5] * 4
    ed.curve.value = "custom"  # the default weights "0, 0.5, 1" resampled to 4 steps
    assert ed.schedule.curve_values() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    ed.custom.value = "0, oops"
    assert "numbers separated by commas" in ed.message.value
    assert ed.schedule.curve_values() == pytest.approx([0, 1 / 3, 2 / 3, 1])  # the last valid one is kept
    ed.custom.value = "1, 0"
    assert ed.message.value == "" and ed.schedule.curve_values() == pytest.approx([1, 2 / 3, 1 / 3, 0])
    res = ed.run_edit()
    assert runs[0] is ed.schedule and res.label.startswith("kv custom")


def test_schedule_editor_opens_on_the_musickv_config_defaults():
    from dataclasses import replace

    from musicprobe.editors import MusicKVConfig

    spec = MusicKVConfig(layers=["x"]).schedule
    ed = ScheduleEditor(["single_blocks.1.attn"], n_steps=6)
    assert (ed.curve.value, ed.kind.value, ed.tokens.value, ed.strength.value) == (
        spec.curve, spec.kind, spec.tokens, spec.strength)
    assert ed.schedule.spec == replace(spec, end=6)  # the window control spans all 6 steps


def test_blending_profiles_follow_editgens_depth_rules():
    from musicprobe.widgets import blending_figure, blending_profile

    assert blending_profile(4, "soft") == [1.0, 0.75, 0.5, 0.25]
    assert blending_profile(4, "hard", cutoff=0.5) == [1.0, 1.0, 0.0, 0.0]
    assert blending_profile(4, "soft", depth="reference") == [0.75, 0.5, 0.25, 1.0]
    assert list(blending_figure({"soft": [1.0, 0.5]}).data[0].y) == [1.0, 0.5]
    with pytest.raises(UnknownNameError, match="Did you mean 'soft'"):
        blending_profile(4, "sofT")


def test_editgen_controls_describe_a_valid_config_and_run_it():
    from musicprobe.editors.editgen import EditGenConfig
    from musicprobe.widgets import EditGenControls

    runs = []
    ctl = EditGenControls(EditGenConfig(mode="reweight", word="piano"), words=["a", "piano", "piece"], n_modules=4,
                          run=lambda c: runs.append(c) or _result("", 0.5))
    assert ctl.config.word == "piano" and list(ctl.figure.data[0].y) == [1.0, 0.75, 0.5, 0.25]
    ctl.blending.value = "hard"
    ctl.cutoff.value = 0.5
    assert list(ctl.figure.data[0].y) == [1.0, 1.0, 0.0, 0.0]
    ctl.weight.value = -1.5
    res = ctl.run_edit()
    assert runs[0].weight == -1.5 and runs[0].blending == "hard" and res.label == "reweight hard piano x-1.5"


def test_instructme_controls_describe_the_instruction_and_refuse_unknown_ones():
    from musicprobe.editors.instructme import InstructMEConfig
    from musicprobe.widgets import InstructMEControls, describe_instruction

    assert describe_instruction("swap the piano for a flute") == "replace: piano -> flute"
    assert describe_instruction("turn it into jazz") == "remix: jazz"
    runs = []
    ctl = InstructMEControls(InstructMEConfig(), run=lambda text, c: runs.append((text, c)) or _result("", 0.5))
    assert ctl.message.value == "add: drums" and ctl.ok
    ctl.text.value = "make it louder"
    assert not ctl.ok and "remix" in ctl.message.value and ctl.run_edit() is None and runs == []
    ctl.example.value = "remove the bass"
    ctl.guidance.value = 3.0
    ctl.chords.value = False
    res = ctl.run_edit()
    assert runs[0][0] == "remove the bass" and runs[0][1].target_guidance == 3.0 and runs[0][1].chords is False
    assert res.label == "remove the bass (g=3, null chord)"


def test_steermusic_plus_controls_build_the_config_and_the_tradeoff_figure():
    from musicprobe.editors.steermusic_plus import SteerMusicPlusConfig
    from musicprobe.widgets import SteerMusicPlusControls, tradeoff_figure

    runs = []
    ctl = SteerMusicPlusControls(SteerMusicPlusConfig(), run=lambda c: runs.append(c) or _result("", 0.5))
    assert "towards the concept" in ctl.message.value and "PCon x30000 (source)" in ctl.message.value
    ctl.lam.value = -0.5
    ctl.use_pcon.value = False
    ctl.reference.value = "last"
    assert "towards the source" in ctl.message.value and "PCon" not in ctl.message.value
    ctl.run_edit()
    assert (runs[0].lam, runs[0].pcon_weight, runs[0].pcon_reference) == (-0.5, 0.0, "last")
    fig = tradeoff_figure({"a": (0.5, 0.3), "b": (0.2, 0.9)})
    assert [d.text[0] for d in fig.data] == ["a", "b"] and fig.data[1].x[0] == 0.2
