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
import warnings

warnings.filterwarnings("ignore")  # library deprecation notices would clutter the outputs
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

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


HOOKS = [
    md("""
# 04 · The hook system: one set of names and tools for four architectures

Every editor in musicprobe is built from the same few operations on attention: **capture** it, **record** its
keys and values, **inject** them into another run on a schedule, **edit** the probabilities, or **bypass** a layer.
`musicprobe.hooks.Probe` provides these for diffusers' Flux and StableAudio DiTs, the AudioLDM2 UNet, and
transformers' MusicGen. It uses canonical layer names and context managers that always clean up after themselves.

This notebook uses the *tiny* random-init models (real classes, built from config, no weights) so that every cell
runs in seconds.
"""),
    code(PARAMS, tags=("parameters",)),
    md("## 1. Canonical names, with native aliases"),
    code("""
# NBVAL_CHECK_OUTPUT
from musicprobe.hooks import Probe
from musicprobe.models import tiny_model

flux = tiny_model("flux")
probe = Probe(flux.model)
print(probe.points())
print(probe.resolve("single_transformer_blocks.1.attn").name)   # native diffusers path -> canonical name
print(probe.hook_names("single_blocks.1.attn"))
"""),
    md("A misspelt name fails loudly, with a suggestion:"),
    code("""
# NBVAL_CHECK_OUTPUT
try:
    probe.resolve("single_block.1.attn")
except KeyError as err:
    print(str(err)[:60])
"""),
    md("""
## 2. Capture attention without changing the output

Nothing is captured by default: you name the hooks. Probabilities are computed on the side for those layers
only; the model's own fast attention still produces the output, so it is identical to the stock run.
Flux joint attention runs over `[text ; audio]` tokens, with the text first.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
import torch

x = flux.make_inputs("A")
stock = flux(**x)
with probe.capture(["single_blocks.1.attn.hook_pattern"], heads="mean") as cache:
    out = flux(**x)
print("identical output:", torch.equal(out, stock))
print("pattern shape (batch, query, key):", tuple(cache["single_blocks.1.attn.hook_pattern"].shape))
print("hooks left installed:", probe.active_hooks())
"""),
    code("""
cache.plot("single_blocks.1.attn.hook_pattern")
"""),
    md("""
## 3. Record and inject K/V: how prompts enter a model

In a UNet or StableAudio-style DiT, the text reaches the network **only** through cross-attention keys and values.
So if we record the cross-attention K/V of a run with prompt A and inject them into a run with prompt B, we should
get A's output back exactly. This experiment underlies every attention-injection editor.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
from musicprobe.hooks import InjectionSchedule

sa = tiny_model("stable_audio")
sa_probe = Probe(sa.model)
cross = sa_probe.points(kind="cross_attn")
with sa_probe.record_kv(cross) as store:
    a = sa(**sa.make_inputs("A"))
b = sa(**sa.make_inputs("B"))
for w in (0.0, 0.5, 1.0):
    with sa_probe.inject(store, InjectionSchedule(layers=cross, strength=w, n_steps=1)):
        edited = sa(**sa.make_inputs("B"))
    print(f"source weight {w:.1f}: distance to A = {(edited - a).abs().max().item():.3f}")
"""),
    md("""
## 4. Schedules are data

An `InjectionSchedule` is a validated dataclass that serialises to JSON. MusicKV's reference code ramps the
source weight from 0 to about 1 over the steps. MusRec and RF-Edit replace K/V fully during the first few steps.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
ramp = InjectionSchedule.musickv(["blocks.0.self_attn"], n_steps=5)
window = InjectionSchedule.first_steps(["blocks.0.self_attn"], n_steps=5, inject_steps=2, kind="v")
print("MusicKV ramp :", [round(w, 2) for w in ramp.curve_values()])
print("first steps  :", window.curve_values())
print(window.to_json()[:70])
"""),
    md("""
## 5. Bypass and attention edits

`bypass` skips a whole block (identity) or only an attention sub-layer. This is the probe that finds "vital" layers.
`edit_attention` lets a function rewrite the probabilities, which is what Prompt-to-Prompt needs. Here, MusicGen's
cross-attention is forced onto the first text token.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
mg = tiny_model("musicgen")
mg_probe = Probe(mg.model)
x = mg.make_inputs("A")
base = mg(**x)
with mg_probe.bypass(["layers.1"]):
    skipped = mg(**x)

def first_token(probs, call):
    out = torch.zeros_like(probs)
    out[..., 0] = 1.0
    return out

with mg_probe.edit_attention(mg_probe.points(kind="cross_attn"), first_token):
    edited = mg(**x)
print("bypass changes the logits:", not torch.allclose(skipped, base))
print("edit changes the logits:  ", not torch.allclose(edited, base))
print("hooks left:", mg_probe.active_hooks())
"""),
    md("""
## What to take away

* One `Probe`, the same verbs on every architecture; names are canonical, with native aliases.
* Instrumented models give the stock output unless you intervene. Hooks are removed when a context exits, even
  after an error, and only the hooks musicprobe added are removed.
* Measure the overhead with `musicprobe bench hooks --json`.
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
    write("04_hook_system.ipynb", HOOKS)
    print("wrote notebooks to", ROOT)
