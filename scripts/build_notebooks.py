"""Write the tutorial notebooks from their cell sources (run ``make notebooks`` afterwards to store outputs).

Conventions: a ``parameters`` cell (papermill tag) whose FAST setting is taken from ``MUSICPROBE_FAST``/``CI``;
``# NBVAL_CHECK_OUTPUT`` only on rounded, deterministic summaries; plots and audio are not compared.
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1] / "notebooks"

PARAMS = """# Parameters (papermill-style). CI sets MUSICPROBE_FAST=1 / CI=true to use the fast setting.
import os

FAST = os.environ.get("MUSICPROBE_FAST") == "1" or os.environ.get("CI") == "true"
SEED = 11
"""


def md(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_markdown_cell(text.strip())


def code(text: str, *, tags: tuple[str, ...] = ()) -> nbf.NotebookNode:
    cell = nbf.v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


QUICKSTART = [
    md("""
# 00 · Quickstart: synthetic music with ground truth, and how we measure an edit

Editing music means **changing one thing while keeping the rest**. Before touching a model, we need
(1) music whose content we know exactly, and (2) metrics that say what was kept.

This notebook uses `musicprobe.synth` to compose and render a clip with exact notes, chords and stems.
It then renders the *same score* with another lead instrument: the ideal "piano → flute" edit. Finally it
measures how each metric reacts to that ideal edit and to an unrelated clip.
"""),
    code(PARAMS, tags=("parameters",)),
    md("## 1. Compose and render a clip"),
    code("""
from IPython.display import Audio, display

from musicprobe.synth import make_clip

clip = make_clip(SEED, genre="pop", lead="piano", mood="happy")
print(clip.captions[0])
print("key:", clip.score.key, "| tempo:", round(clip.score.tempo), "bpm | notes:", len(clip.score.notes))
display(Audio(clip.audio, rate=clip.sr))
"""),
    md("""
Every clip carries its ground truth: per-track stems (the mix is exactly their sum), notes with onset, offset,
pitch, velocity and instrument, one chord per beat, and several captions in different phrasings.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
import numpy as np

stems = clip.rendering.stems
print(sorted(stems), "| mix == sum(stems):", bool(np.allclose(clip.audio, sum(stems.values()), atol=1e-6)))
print("first chords:", [c for _, c in clip.score.chords[:4]])
"""),
    md("## 2. Look at it: log-mel (what the models see), CQT and chroma (what the metrics see)"),
    code("""
from musicprobe.audio import MelConfig
from musicprobe.viz import chroma_figure, mel_figure
from musicprobe.audio import resample

mel_figure(clip.audio, cfg=MelConfig(hop_length=256), title="log-mel, 64 bins, hop 256").show()
if not FAST:
    chroma_figure(resample(clip.audio, 16000, 22050), title="chroma").show()
"""),
    md("""
## 3. The ideal edit: the same notes played by a flute

`instrument_edit` re-renders the score with a new lead instrument. Every note stays the same, so this is the
target that a perfect "piano → flute" editor would produce.
"""),
    code("""
from musicprobe.synth import instrument_edit

pair = instrument_edit(clip, "flute")
print(pair.source_prompt, "->", pair.target_prompt)
display(Audio(pair.target.audio, rate=clip.sr))
"""),
    md("""
## 4. Metrics: what is preserved?

`musicprobe.metrics.compare` scores an edit against its source (1.0 means identical). Ground-truth notes
replace the transcription for the note statistics. Compare the ideal edit with an unrelated clip.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
from musicprobe.metrics import compare, notes_from_metadata

unrelated = make_clip(SEED + 1, genre="jazz")
ideal = compare(clip.audio, pair.target.audio,
                source_notes=notes_from_metadata(clip.metadata()),
                edited_notes=notes_from_metadata(pair.target.metadata()))
worst = compare(clip.audio, unrelated.audio)
for name in ("chroma_similarity", "pch_overlap", "chord_agreement"):
    print(f"{name:<18} ideal edit {ideal[name]:.1f}   unrelated {worst[name]:.1f}")
"""),
    code("""
from musicprobe.viz import metrics_bar

metrics_bar({"ideal edit": ideal, "unrelated clip": worst}, title="preservation relative to the source")
"""),
    md("""
## What to take away

* The synthetic corpus provides **exact targets** for instrument, genre and mood edits, and InstructME-style
  add / remove / extract / replace triplets from stems (`musicprobe.synth.stem_tasks`).
* Pitch-based metrics (chroma, pitch-class histograms, chords) stay high when only the timbre changes, and
  collapse for unrelated music. This is the yardstick for every editor in the next notebooks.
"""),
]


def write(name: str, cells: list) -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, ROOT / name)


if __name__ == "__main__":
    ROOT.mkdir(exist_ok=True)
    write("00_quickstart.ipynb", QUICKSTART)
    print("wrote", ROOT / "00_quickstart.ipynb")
