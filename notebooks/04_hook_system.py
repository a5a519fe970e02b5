# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The hook system: one set of names and tools for four architectures
#
# Every editor in musicprobe is built from the same few operations on attention: **capture** it, **record** its
# keys and values, **inject** them into another run on a schedule, **edit** the probabilities, or **bypass** a layer.
# `musicprobe.hooks.Probe` provides these for diffusers' Flux and StableAudio DiTs, the AudioLDM2 UNet, and
# transformers' MusicGen. It uses canonical layer names and context managers that always clean up after themselves.
#
# This notebook uses the *tiny* random-init models (real classes, built from config, no weights) so that every cell
# runs in seconds.

# %% tags=["parameters"]
# Parameters (papermill-style). CI sets MUSICPROBE_FAST=1 / CI=true to use the fast setting.
import os
import warnings

warnings.filterwarnings("ignore")  # library deprecation notices would clutter the outputs
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

FAST = os.environ.get("MUSICPROBE_FAST") == "1" or os.environ.get("CI") == "true"
SEED = 11

# %% [markdown]
# ## 1. Canonical names, with native aliases

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.hooks import Probe
from musicprobe.models import tiny_model

flux = tiny_model("flux")
probe = Probe(flux.model)
print(probe.points())
print(probe.resolve("single_transformer_blocks.1.attn").name)   # native diffusers path -> canonical name
print(probe.hook_names("single_blocks.1.attn"))

# %% [markdown]
# A misspelt name fails loudly, with a suggestion:

# %%
# NBVAL_CHECK_OUTPUT
try:
    probe.resolve("single_block.1.attn")
except KeyError as err:
    print(str(err)[:60])

# %% [markdown]
# ## 2. Capture attention without changing the output
#
# Nothing is captured by default: you name the hooks. Probabilities are computed on the side for those layers
# only; the model's own fast attention still produces the output, so it is identical to the stock run.
# Flux joint attention runs over `[text ; audio]` tokens, with the text first.

# %%
# NBVAL_CHECK_OUTPUT
import torch

x = flux.make_inputs("A")
stock = flux(**x)
with probe.capture(["single_blocks.1.attn.hook_pattern"], heads="mean") as cache:
    out = flux(**x)
print("identical output:", torch.equal(out, stock))
print("pattern shape (batch, query, key):", tuple(cache["single_blocks.1.attn.hook_pattern"].shape))
print("hooks left installed:", probe.active_hooks())

# %%
cache.plot("single_blocks.1.attn.hook_pattern")

# %% [markdown]
# ## 3. Record and inject K/V: how prompts enter a model
#
# In a UNet or StableAudio-style DiT, the text reaches the network **only** through cross-attention keys and values.
# So if we record the cross-attention K/V of a run with prompt A and inject them into a run with prompt B, we should
# get A's output back exactly. This experiment underlies every attention-injection editor.

# %%
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

# %% [markdown]
# ## 4. Schedules are data
#
# An `InjectionSchedule` is a validated dataclass that serialises to JSON. MusicKV's reference code ramps the
# source weight from 0 to about 1 over the steps. MusRec and RF-Edit replace K/V fully during the first few steps.

# %%
# NBVAL_CHECK_OUTPUT
ramp = InjectionSchedule.musickv(["blocks.0.self_attn"], n_steps=5)
window = InjectionSchedule.first_steps(["blocks.0.self_attn"], n_steps=5, inject_steps=2, kind="v")
print("MusicKV ramp :", [round(w, 2) for w in ramp.curve_values()])
print("first steps  :", window.curve_values())
print(window.to_json()[:70])

# %% [markdown]
# ## 5. Bypass and attention edits
#
# `bypass` skips a whole block (identity) or only an attention sub-layer. This is the probe that finds "vital" layers.
# `edit_attention` lets a function rewrite the probabilities, which is what Prompt-to-Prompt needs. Here, MusicGen's
# cross-attention is forced onto the first text token.

# %%
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

# %% [markdown]
# ## 6. Interventions are objects: write your own
#
# Every verb above registers an `Intervention` object for the duration of its `with` block. At each attention call
# the probe hands the tensors to the active interventions in phases — see K/V, change K/V, change the
# probabilities, see everything — and never asks what kind of intervention it is. A new idea is a new subclass.
# Here: scale the values of one layer, and watch the output move as the factor goes from 1 (no change) to 0.

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.hooks import Intervention


class ScaleValues(Intervention):
    """Multiply V of one attention layer by ``factor`` (1 = the stock model)."""

    def __init__(self, layer, factor):
        super().__init__()
        self.layer, self.factor = layer, factor

    def bind(self, probe):  # resolve names once, when registered
        self.attention_points = frozenset([probe.resolve(self.layer).name])

    def modify_kv(self, call, k, v):
        return k, v * self.factor


stock = sa(**sa.make_inputs("A"))
for factor in (1.0, 0.5, 0.0):
    with sa_probe.intervene(ScaleValues("blocks.0.cross_attn", factor)):
        out = sa(**sa.make_inputs("A"))
    print(f"factor {factor}: distance to the stock output = {(out - stock).abs().max().item():.3f}")

# %% [markdown]
# ## 7. Two prompts in one batch
#
# Prompt-to-Prompt (EditGen) runs the source prompt and the edited prompt side by side in one batch, times the
# two classifier-free-guidance halves. `RowRoles` tells the probe how the rows are laid out, and interventions ask
# it for "the source prompt's rows" or "the conditional half" on every family — diffusers stacks
# `[uncond ; cond]`, MusicGen `[cond ; uncond]`. `share_kv` writes the source prompt's K/V into the other
# prompts' rows: with the cross-attention shared, prompt B's rows compute exactly what prompt A's do.

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.hooks import RowRoles

batch = sa.make_batch(["U", "U", "A", "B"])  # [uncond: U, U ; cond: A (source), B (edit)]
plain = sa(**batch)
with sa_probe.with_roles(RowRoles(prompts=2, cfg=True)), sa_probe.share_kv(cross, source=0):
    shared = sa(**batch)
print("A and B differ:          ", not torch.allclose(plain[2], plain[3]))
print("B computes A when shared:", torch.allclose(shared[3], plain[2], atol=1e-5))

# %% [markdown]
# ## What to take away
#
# * One `Probe`, the same verbs on every architecture; names are canonical, with native aliases.
# * Instrumented models give the stock output unless you intervene. Hooks are removed when a context exits, even
#   after an error, and only the hooks musicprobe added are removed.
# * Interventions are objects; a new one is a subclass, registered with `probe.intervene(...)`.
# * Measure the overhead with `musicprobe bench hooks --json`.
