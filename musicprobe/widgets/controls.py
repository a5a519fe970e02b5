"""ipywidgets front ends: a vital-layer selector, an injection-schedule editor and EditGen's controls (thin over
:mod:`.logic`)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W
from IPython.display import HTML, Audio, display

from musicprobe.hooks import CURVES, InjectionSchedule, ScheduleSpec
from musicprobe.widgets.logic import (
    SELECT_MODES,
    blending_figure,
    blending_profile,
    comparison_rows,
    editgen_config_from_controls,
    schedule_figure,
    schedule_from_controls,
    select_layers,
    steermusic_plus_config_from_controls,
)


def _table_html(rows: dict) -> str:
    if not rows:
        return ""
    cols = list(next(iter(rows.values())))
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(f"<tr><td>{k}</td>{''.join(f'<td>{v[c]}</td>' for c in cols)}</tr>" for k, v in rows.items())
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _bundle(obj) -> dict:
    """A display-data output for ``obj``. Plotly figures go in as their mime bundle: formatting them through
    IPython would *display* them (plotly's ``_ipython_display_``) instead of returning data."""
    import json

    import plotly.graph_objects as go
    from IPython.core.formatters import format_display_data

    if isinstance(obj, go.Figure):
        data = {"application/vnd.plotly.v1+json": json.loads(obj.to_json()), "text/plain": repr(obj.layout.title.text)}
        return {"output_type": "display_data", "data": data, "metadata": {}}
    data, metadata = format_display_data(obj)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _show(out: W.Output, *objs) -> None:
    """Replace ``out``'s content with ``objs`` in one trait update. This works in JupyterLab, under nbclient
    (whose handling of ``with out:`` + ``clear_output`` waits for a full cell timeout) and without a kernel."""
    out.outputs = tuple(_bundle(o) for o in objs)


class _RunPanel:
    """Shared 'run and compare' part: a button, the last audio, and a table of every run so far."""

    def __init__(self, label: str, keys: tuple[str, ...] = ("chroma", "cqt1_pcc", "clap_target")):
        self.button = W.Button(description=label, button_style="primary")
        self.out = W.Output()
        self.results: list = []
        self.keys = keys

    def show(self, result) -> None:
        self.results.append(result)
        table = comparison_rows(self.results, self.keys)
        _show(self.out, Audio(result.edited, rate=result.sr), HTML(_table_html(table)))


class VitalLayerSelector:
    """Bar chart of probing scores; choose layers by top-k, threshold or by hand; run an edit with them.

    ``run(layers) -> EditResult`` is called by the button (or :meth:`run_edit`); results accumulate for comparison.
    """

    def __init__(self, scores, run: Callable[[list[str]], object] | None = None, k: int = 3):
        self.scores = scores
        self.run_fn = run
        n = len(scores.points)
        self.mode = W.ToggleButtons(options=list(SELECT_MODES), value="top_k", description="select")
        self.k = W.IntSlider(value=min(k, n), min=1, max=n, description="k")
        top = float(scores.score.max())
        self.threshold = W.FloatSlider(
            value=round(top / 2, 3), min=0.0, max=round(top, 3), step=0.01, description="threshold"
        )
        self.manual = W.SelectMultiple(
            options=scores.points, value=tuple(scores.top_k(min(k, n))), rows=min(n, 8), description="layers"
        )
        self.fig_out = W.Output()
        self.panel = _RunPanel("run edit")
        self.panel.button.on_click(lambda _b: self.run_edit())
        self.selected: list[str] = []
        self.figure = None
        for w in (self.mode, self.k, self.threshold, self.manual):
            w.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> list[str]:
        self.selected = select_layers(
            self.scores, self.mode.value, k=self.k.value, threshold=self.threshold.value, manual=self.manual.value
        )
        self.figure = self.scores.plot(
            selected=self.selected, title=f"vital layers ({len(self.selected)} selected, red)"
        )
        _show(self.fig_out, self.figure)
        return self.selected

    def run_edit(self):
        if self.run_fn is None or not self.selected:
            return None
        result = self.run_fn(list(self.selected))
        if not getattr(result, "label", ""):
            result.label = ", ".join(self.selected)
        self.panel.show(result)
        return result

    @property
    def widget(self) -> W.Widget:
        return W.VBox(
            [W.HBox([self.mode, self.k, self.threshold]), self.manual, self.fig_out, self.panel.button, self.panel.out]
        )

    def _ipython_display_(self) -> None:
        display(self.widget)


class ScheduleEditor:
    """Shape an injection schedule (curve, window, strength, kind, custom weights), see w(t) live, run and compare.

    ``run(schedule) -> EditResult`` is called by the button (or :meth:`run_edit`).
    """

    def __init__(
        self,
        layers: list[str],
        n_steps: int = 25,
        run: Callable[[InjectionSchedule], object] | None = None,
        spec: ScheduleSpec | None = None,
    ):
        from musicprobe.editors.musickv import musickv_schedule

        start = spec or musickv_schedule()  # the controls open on MusicKV's reference schedule
        self.layers = list(layers)
        self.n_steps = n_steps
        self.run_fn = run
        self.curve = W.Dropdown(options=list(CURVES), value=start.curve, description="curve")
        end = n_steps if start.end is None else start.end
        self.window = W.IntRangeSlider(value=(start.start, end), min=0, max=n_steps, description="steps")
        self.strength = W.FloatSlider(value=start.strength, min=0.0, max=1.0, step=0.05, description="strength")
        self.kind = W.Dropdown(options=["k", "v", "kv"], value=start.kind, description="inject")
        self.tokens = W.Dropdown(options=["audio", "all"], value=start.tokens, description="tokens")
        self.custom = W.Text(value="0, 0.5, 1", description="weights", placeholder="comma-separated, resampled")
        self.message = W.HTML()
        self.fig_out = W.Output()
        self.panel = _RunPanel("run edit")
        self.panel.button.on_click(lambda _b: self.run_edit())
        self.schedule: InjectionSchedule | None = None
        self.figure = None
        for w in (self.curve, self.window, self.strength, self.kind, self.tokens, self.custom):
            w.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> InjectionSchedule | None:
        from musicprobe.errors import MusicProbeError

        try:
            self.schedule = schedule_from_controls(
                self.layers,
                curve=self.curve.value,
                window=self.window.value,
                strength=self.strength.value,
                n_steps=self.n_steps,
                kind=self.kind.value,
                tokens=self.tokens.value,
                custom=self.custom.value,
            )
            self.message.value = ""
        except MusicProbeError as e:  # keep the last valid schedule and say why this one is not
            self.message.value = f"<span style='color:#b00'>{e}</span>"
            return self.schedule
        self.figure = schedule_figure(self.schedule)
        _show(self.fig_out, self.figure)
        return self.schedule

    def run_edit(self):
        if self.run_fn is None or self.schedule is None:
            return None
        result = self.run_fn(self.schedule)
        if not getattr(result, "label", ""):
            s = self.schedule
            result.label = f"{s.kind} {s.curve} {s.start}-{s.end} x{s.strength}"
        self.panel.show(result)
        return result

    @property
    def widget(self) -> W.Widget:
        return W.VBox(
            [
                W.HBox([self.curve, self.kind, self.tokens]),
                W.HBox([self.window, self.strength]),
                self.custom,
                self.message,
                self.fig_out,
                self.panel.button,
                self.panel.out,
            ]
        )

    def _ipython_display_(self) -> None:
        display(self.widget)


EDITGEN_KEYS = ("clap_target", "clap_audio", "melody_acc", "dynamics_onset", "rhythm_f1")


class EditGenControls:
    """EditGen's knobs: mode, soft / hard blending with a depth cut-off, the reweighted word and its factor; the
    figure shows how much of each attention module is controlled; the button runs ``run(config) -> EditResult``.
    """

    def __init__(self, base, words: list[str], n_modules: int, run: Callable[[object], object] | None = None):
        from musicprobe.editors.p2p import BLENDINGS, MODES

        self.base, self.n_modules, self.run_fn = base, n_modules, run
        self.mode = W.Dropdown(options=list(MODES), value=base.mode, description="mode")
        self.blending = W.ToggleButtons(options=list(BLENDINGS), value=base.blending, description="blending")
        self.cutoff = W.FloatSlider(value=base.cutoff, min=0.05, max=1.0, step=0.05, description="hard cut-off")
        self.weight = W.FloatSlider(value=base.weight, min=-2.0, max=2.0, step=0.25, description="reweight c")
        self.word = W.Dropdown(options=list(words), value=base.word if base.word in words else words[0],
                               description="word")
        self.message = W.HTML()
        self.fig_out = W.Output()
        self.panel = _RunPanel("run edit", EDITGEN_KEYS)
        self.panel.button.on_click(lambda _b: self.run_edit())
        self.config = base
        self.figure = None
        for w in (self.mode, self.blending, self.cutoff, self.weight, self.word):
            w.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self):
        from musicprobe.errors import MusicProbeError

        try:
            self.config = editgen_config_from_controls(
                self.base, mode=self.mode.value, blending=self.blending.value, cutoff=self.cutoff.value,
                weight=self.weight.value, word=self.word.value,
            )
            self.message.value = ""
        except MusicProbeError as e:
            self.message.value = f"<span style='color:#b00'>{e}</span>"
            return self.config
        c = self.config
        self.figure = blending_figure({c.blending: blending_profile(self.n_modules, c.blending, c.depth, c.cutoff)})
        _show(self.fig_out, self.figure)
        return self.config

    def run_edit(self):
        if self.run_fn is None:
            return None
        result = self.run_fn(self.config)
        c = self.config
        result.label = f"{c.mode} {c.blending}" + (f" {c.word} x{c.weight:g}" if c.mode == "reweight" else "")
        self.panel.show(result)
        return result

    @property
    def widget(self) -> W.Widget:
        return W.VBox([W.HBox([self.mode, self.blending]), W.HBox([self.cutoff, self.word, self.weight]),
                       self.message, self.fig_out, self.panel.button, self.panel.out])

    def _ipython_display_(self) -> None:
        display(self.widget)


INSTRUCTME_KEYS = ("cra_source", "cra", "pch", "ioi", "chroma")


class InstructMEControls:
    """Type an instruction (or pick an example), choose the guidance and whether the source's chord matrix is used;
    the message says what the instruction asks, before anything runs; the button runs
    ``run(instruction, config) -> EditResult``."""

    def __init__(self, base, run: Callable[[str, object], object] | None = None, examples: tuple[str, ...] = ()):
        from musicprobe.editors.instructions import EXAMPLES
        from musicprobe.widgets.logic import describe_instruction

        self._describe = describe_instruction
        self.base, self.run_fn = base, run
        options = list(dict.fromkeys((*examples, *EXAMPLES)))
        self.example = W.Dropdown(options=options, value=options[0], description="example")
        self.text = W.Text(value=options[0], description="instruction")
        self.guidance = W.FloatSlider(value=base.target_guidance, min=1.0, max=6.0, step=0.5, description="guidance")
        self.chords = W.Checkbox(value=base.chords, description="chord matrix")
        self.message = W.HTML()
        self.panel = _RunPanel("run edit", INSTRUCTME_KEYS)
        self.panel.button.on_click(lambda _b: self.run_edit())
        self.example.observe(lambda change: setattr(self.text, "value", change["new"]), names="value")
        for w in (self.text, self.guidance, self.chords):
            w.observe(lambda _change: self.refresh(), names="value")
        self.config = base
        self.ok = True
        self.refresh()

    def refresh(self):
        from musicprobe.errors import MusicProbeError

        try:
            self.message.value = self._describe(self.text.value)
            self.config = self.base.replace(target_guidance=self.guidance.value, chords=self.chords.value)
            self.ok = True
        except MusicProbeError as e:
            self.message.value = f"<span style='color:#b00'>{e}</span>"
            self.ok = False
        return self.config

    def run_edit(self):
        if self.run_fn is None or not self.ok:
            return None
        result = self.run_fn(self.text.value, self.config)
        result.label = f"{self.text.value} (g={self.config.target_guidance:g}" + (
            ")" if self.config.chords else ", null chord)")
        self.panel.show(result)
        return result

    @property
    def widget(self) -> W.Widget:
        return W.VBox([W.HBox([self.example, self.text]), W.HBox([self.guidance, self.chords]), self.message,
                       self.panel.button, self.panel.out])

    def _ipython_display_(self) -> None:
        display(self.widget)


STEERMUSIC_PLUS_KEYS = ("cqt1_pcc", "chroma", "concept_distance")


class SteerMusicPlusControls:
    """SteerMusic+'s knobs: the regulariser's lam (the paper's slider: lam < 0 keeps the source, lam > 0 the
    concept), PCon's weight and where its reference features come from; the button runs
    ``run(config) -> EditResult``."""

    def __init__(self, base, run: Callable[[object], object] | None = None):
        from musicprobe.editors.steermusic_plus import PCON_REFERENCES

        self.base, self.run_fn = base, run
        self.lam = W.FloatSlider(value=base.lam, min=-1.0, max=1.0, step=0.05, description="lam")
        self.pcon = W.FloatLogSlider(value=max(base.pcon_weight, 1.0), base=10, min=0, max=5, step=0.5,
                                     description="PCon weight")
        self.use_pcon = W.Checkbox(value=base.pcon_weight > 0, description="PCon")
        self.reference = W.ToggleButtons(options=list(PCON_REFERENCES), value=base.pcon_reference,
                                         description="PCon ref")
        self.message = W.HTML()
        self.panel = _RunPanel("run edit", STEERMUSIC_PLUS_KEYS)
        self.panel.button.on_click(lambda _b: self.run_edit())
        self.config = base
        for w in (self.lam, self.pcon, self.use_pcon, self.reference):
            w.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self):
        from musicprobe.errors import MusicProbeError

        try:
            self.config = steermusic_plus_config_from_controls(
                self.base, lam=self.lam.value, pcon_weight=self.pcon.value if self.use_pcon.value else 0.0,
                reference=self.reference.value)
            c = self.config
            self.message.value = (f"lam {c.lam:+.2f}: " + ("towards the concept" if c.lam > 0 else
                                  "towards the source" if c.lam < 0 else "PDS alone")
                                  + (f"; PCon x{c.pcon_weight:g} ({c.pcon_reference})" if c.pcon_weight else ""))
        except MusicProbeError as e:
            self.message.value = f"<span style='color:#b00'>{e}</span>"
        return self.config

    def run_edit(self):
        if self.run_fn is None:
            return None
        result = self.run_fn(self.config)
        self.panel.show(result)
        return result

    @property
    def widget(self) -> W.Widget:
        return W.VBox([W.HBox([self.lam, self.use_pcon, self.pcon]), self.reference, self.message,
                       self.panel.button, self.panel.out])

    def _ipython_display_(self) -> None:
        display(self.widget)
