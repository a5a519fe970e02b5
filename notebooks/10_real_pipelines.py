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
# # 10 · The papers' base models: real pipelines behind the same protocols
#
# Every other notebook runs on the mini model zoo, which we trained on our synthetic corpus. The papers used big
# pretrained models: **Stable Audio Open** (MusicKV), **AudioLDM2** (SteerMusic, ZETA, SDEdit, DDIM), **MusicGen**
# (EditGen) and **FluxMusic** (MusRec). musicprobe wraps each stock pipeline in a *backend* that implements the same
# protocol as the mini model of its family, so every editor, sampler and probe runs on it unchanged.
#
# Without weights (CI, this machine) we use each backend's **tiny pipeline**: every component of the real classes,
# at the real rates and layouts, with random weights. What you hear is therefore noise; what you see is the
# plumbing a user with real weights runs. Set `BACKEND` to `"stable-audio"` (or a local folder,
# `"stable-audio:/data/stable-audio-open-1.0"`) on a GPU machine and the same cells run on the real model.

# %% tags=["parameters"]
# Parameters (papermill-style). CI sets MUSICPROBE_FAST=1 / CI=true to use the fast setting.
import os
import warnings

warnings.filterwarnings("ignore")  # library deprecation notices would clutter the outputs
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

FAST = os.environ.get("MUSICPROBE_FAST") == "1" or os.environ.get("CI") == "true"
STEPS = 8 if FAST else 25
# a Stable Audio backend: "tiny:stable-audio" (random weights), "stable-audio" (hub cache) or "stable-audio:/folder"
BACKEND = os.environ.get("MUSICPROBE_BACKEND", "tiny:stable-audio")
DEVICE = os.environ.get("MUSICPROBE_DEVICE") or None  # "cuda" for a real model; None: the GPU if there is one

# %% [markdown]
# ## 1. One name for any model
#
# `model_from_spec` takes a zoo name (`"mini-sao"`), a backend with an optional folder or hub id
# (`"stable-audio:/data/sao"`), or `"tiny:<backend>"`. A backend says which protocol it implements, at which rate
# and over which window it works, and which network the hook system instruments.

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.models.protocols import family_of
from musicprobe.zoo.resolve import model_from_spec

sao = model_from_spec(BACKEND, device=DEVICE)
print(type(sao).__name__, "is a", family_of(sao), "model")
print(f"{sao.sr} Hz, {sao.channels} channels, a window of {sao.n_samples / sao.sr:.2f} s")
print("hooked network:", type(sao.denoiser).__name__)

# %% [markdown]
# ## 2. Same sampler, same answer as the stock pipeline
#
# Stable Audio's stock scheduler is an *SDE* solver: it adds Brownian noise at every step, so two runs from the
# same starting noise differ. MusicKV's reference code removes that noise; so does musicprobe's deterministic
# DPM-Solver++, and so does `DeterministicCosineDPMSolver`, the stock scheduler without its noise term. Put it in
# the stock pipeline and its `__call__` gives what musicprobe's sampler gives: the backend is the same model, not an
# imitation of it.

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.inversion import Sampler
from musicprobe.models.backends import DeterministicCosineDPMSolver

prompt = "a calm piano melody"
pipe = sao.pipe
stock_scheduler = pipe.scheduler
pipe.scheduler = DeterministicCosineDPMSolver.from_config(stock_scheduler.config)
noise = sao.noise(0)
stock = pipe(prompt, num_inference_steps=STEPS, guidance_scale=7.0, latents=noise.clone(), output_type="latent").audios
pipe.scheduler = stock_scheduler
s_max = stock_scheduler.config.sigma_max
ours = Sampler(sao, "dpmpp-2m", STEPS, 7.0).sample(noise * (s_max**2 + 1) ** 0.5 / (1 + s_max), prompt).final
print("musicprobe's sampler matches the stock pipeline:", bool((ours - stock.to(ours.device)).abs().max() < 1e-3))

# %% [markdown]
# ## 3. The hook system on the real DiT
#
# Canonical names are the same as on mini-SAO (`blocks.{i}.self_attn`, `blocks.{i}.cross_attn`); the self-attention
# keys are the prepended global token followed by the audio frames. We capture one layer's attention while
# generating (heads averaged, conditional branch, averaged over steps), which keeps the capture small even at the
# real model's 1,024 frames.

# %%
from musicprobe.hooks import Probe
from musicprobe.viz import heatmap

probe = Probe.for_model(sao)
print(probe.points(kind="attention")[:4], "...")
point = probe.points(kind="attention")[0] + ".hook_pattern"
with probe.capture([point], heads="mean", branch="cond", reduce_steps=True) as cache:
    Sampler(sao, "dpmpp-2m", STEPS, 7.0).sample(sao.noise(1), prompt)
att = cache[point].float().numpy()
while att.ndim > 2:
    att = att[0]
heatmap(att, title=f"{point}: queries x keys ([global ; audio frames]), mean over steps", x_label="key",
        y_label="query")

# %% [markdown]
# ## 4. MusicKV on the pipeline
#
# The editor is the one of notebook 03: invert the clip with the deterministic sampler, regenerate the source branch,
# blend its keys and values into a few self-attention layers on the ramp schedule. The clip is our 16 kHz mono
# pop-piano sample; the editor resamples it to 44.1 kHz and copies it into both channels, and the edit comes back
# mono at 44.1 kHz. On the real model you would pick the layers by probing (notebook 03) or take the reference's
# blocks 20, 3 and 4.

# %%
from IPython.display import Audio, display

from musicprobe.data import edit_pairs
from musicprobe.editors import MusicKV, MusicKVConfig, musickv_schedule
from musicprobe.zoo import load

pair = edit_pairs("instrument")[0]
layers = probe.points(kind="self_attn")[-1:]
editor = MusicKV(sao, MusicKVConfig(layers=layers, steps=STEPS, solver="dpmpp-2m", schedule=musickv_schedule(sao)),
                 clap=load("mini-clap"))
clip = pair.source.audio[: min(len(pair.source.audio), int(sao.n_samples * pair.source.sr / sao.sr))]
result = editor.edit(clip, pair.source_prompt, pair.target_prompt, sr=pair.source.sr)
print(result.label, "| edit at", result.sr, "Hz,", f"{len(result.edited) / result.sr:.2f} s")
display(Audio(result.source, rate=result.sr), Audio(result.edited, rate=result.sr))

# %% [markdown]
# ## 5. On a GPU
#
# * Notebooks 02, 03 (section 7), 05, 06 and 08 take the same `BACKEND` parameter (`fluxmusic:<folder>`,
#   `stable-audio`, `audioldm2`, `musicgen`), and `musicprobe edit ... --model <spec> --device cuda` does it from
#   the command line.
# * `pytest -m gpu` runs every backend's method on CUDA in half precision.
# * `musicprobe bench backends --model stable-audio:<folder> --json` times an edit and measures its memory at the
#   real architecture, built from the config files alone with random weights (nothing to download but configs).
#
# What carries over and what does not: the protocols, editors, hooks and metrics are the same code; the numbers in
# the README's tables were measured on the mini models, and whether each paper's effect shows on its own model is
# what a GPU run of notebooks 02-08 will tell.
