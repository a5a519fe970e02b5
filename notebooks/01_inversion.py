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
# # 01 · Inversion: from music back to noise, and how much is lost
#
# Editing real audio with a text-to-music model starts by **inverting** it: finding the noise that the model
# would turn into this audio. Rectified-flow models (FluxMusic, our mini-flux) generate by integrating an ODE
# $dx/dt = v_\theta(x, t)$ from noise ($t = 1$) to data ($t = 0$); inversion integrates the same ODE backwards.
#
# Each step of a numerical solver makes a small error, so inverting and regenerating does not return exactly the
# source. This notebook measures that error for two solvers:
#
# * **Euler** (first order): $x_{t+h} = x_t + h\,v(x_t, t)$ — one model call per step;
# * **RF-Solver** (second order, from RF-Solver-Edit, used by MusRec): a second call at the midpoint — two calls
#   per step. Its update $x + h v_1 + \tfrac12 h^2 (v_2 - v_1)/(h/2)$ is exactly the explicit midpoint rule.
#
# A fair comparison gives both the same number of model evaluations (NFE).

# %% tags=["parameters"]
# Parameters (papermill-style). CI sets MUSICPROBE_FAST=1 / CI=true to use the fast setting.
import os
import warnings

warnings.filterwarnings("ignore")  # library deprecation notices would clutter the outputs
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

FAST = os.environ.get("MUSICPROBE_FAST") == "1" or os.environ.get("CI") == "true"
SEED = 11

# %% [markdown]
# ## 1. A known answer first
#
# If the data were Gaussian, $\mathcal N(0, s^2 I)$, the velocity field and the exact flow are known in closed
# form (`gaussian_velocity`, `gaussian_flow_map`). Halving the step should halve Euler's error (first order)
# and at least quarter RF-Solver's (second order; on this linear field it does even better).

# %%
# NBVAL_CHECK_OUTPUT
import torch

from musicprobe.inversion import gaussian_flow_map, gaussian_velocity, invert

x0 = 0.5 * torch.randn(4, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
exact = gaussian_flow_map(x0, 0.0, 1.0, 0.5)
for solver in ("euler", "rf-solver"):
    errs = [float((invert(x0, gaussian_velocity(0.5), n, solver).final - exact).abs().max()) for n in (8, 16, 32)]
    print(f"{solver:<9} error ratio when halving the step: {errs[0] / errs[1]:.0f}x, {errs[1] / errs[2]:.0f}x")

# %% [markdown]
# ## 2. A real clip through mini-flux
#
# We invert the bundled pop-piano clip under its caption (no classifier-free guidance, as RF-Edit and MusRec do)
# and regenerate it, once with each solver at the same NFE.

# %%
from IPython.display import Audio, display

from musicprobe.data import load_sample
from musicprobe.inversion import reconstruct
from musicprobe.zoo import load

mf = load("mini-flux")
sample = load_sample("pop_piano")
audio, prompt, sr = sample.audio, sample.caption, sample.sr
STEPS = 10 if FAST else 25
traces = {
    "rf-solver": reconstruct(mf, audio, prompt, sr=sr, solver="rf-solver", steps=STEPS),
    "euler": reconstruct(mf, audio, prompt, sr=sr, solver="euler", steps=2 * STEPS),  # same NFE
}
display(Audio(audio, rate=mf.sr))
for name, tr in traces.items():
    print(name, tr.summary(3))
    display(Audio(mf.decode(tr.reconstruction), rate=mf.sr))

# %%
# NBVAL_CHECK_OUTPUT
ratio = traces["rf-solver"].metrics["mel_mse"] / traces["euler"].metrics["mel_mse"]
print("RF-Solver reconstructs better than Euler at equal NFE:", ratio < 1)

# %% [markdown]
# ## 3. Where does the error come from? Inversion error curves
#
# `trace.drift()` is the distance between the inversion path and the regeneration path at each flow time. It is
# zero at $t = 1$, where regeneration starts from the inverted noise, and grows as local errors pile up towards
# the data end.

# %%
fig = traces["rf-solver"].plot(title="drift between inversion and regeneration (equal NFE)")
fig.data[0].name = "rf-solver"
fig.add_trace(traces["euler"].plot().data[0].update(name="euler"))
fig

# %% [markdown]
# ## 4. Error against budget
#
# `sweep` reconstructs the clip for several NFE budgets per direction. Budget $n$ means Euler takes $n$ steps
# and RF-Solver $n/2$.

# %%
from musicprobe.inversion import sweep

budgets = (10, 20) if FAST else (10, 20, 50, 100)
sw = sweep(mf, audio, prompt, sr=sr, budgets=budgets)
print({nfe: round(r, 2) for nfe, r in sw.ratio().items()}, "= RF-Solver / Euler log-mel MSE")
sw.plot()

# %% [markdown]
# ## 5. Traces are objects: save, load, compare later

# %%
import tempfile

from musicprobe.inversion import InversionTrace

with tempfile.TemporaryDirectory() as d:
    again = InversionTrace.load(traces["rf-solver"].save(d))
print("reloaded drift matches:", bool((abs(again.drift() - traces["rf-solver"].drift()) < 1e-6).all()))

# %% [markdown]
# ## 6. The same tools for epsilon-prediction models: DDIM inversion
#
# AudioLDM2 (SteerMusic's base) predicts noise $\epsilon$ instead of a velocity; its inversion is DDIM run
# backwards. `reconstruct_ddim` takes any $\epsilon$ function and returns the same `InversionTrace`. Here it runs on
# the exact $\epsilon$ of Gaussian data, where DDIM inversion converges to the true map as steps grow.

# %%
# NBVAL_CHECK_OUTPUT
from musicprobe.inversion import gaussian_eps, reconstruct_ddim

alphas = torch.linspace(0.9999, 0.98, 1000, dtype=torch.float64).cumprod(0)
errs = {n: reconstruct_ddim(gaussian_eps(0.5, alphas), x0, alphas, steps=n).latent_mse() for n in (5, 20, 100)}
print("DDIM round-trip error falls with steps:", errs[5] > errs[20] > errs[100])

# %% [markdown]
# ## 7. Stable Audio's sampler: a deterministic DPM-Solver++ on mini-SAO
#
# Stable Audio Open (MusicKV's base) predicts $v$ in the cosine parameterisation and samples with
# `CosineDPMSolverMultistepScheduler`: noise levels $\sigma$ spaced exponentially from 500 down to 0.3, then a
# last jump to 0, and an SDE solver that adds fresh noise at every step. MusicKV's reference removes that noise, so
# sampling (and inversion) become a deterministic **DPM-Solver++(2M)**: one model call per step, second order
# through the previous step's prediction of the clean audio. mini-SAO brings that grid with it, and `dpmpp-2m` is
# one more solver of the same sampler layer, so Euler, RF-Solver and DPM-Solver++ compare on the same grid and
# the same NFE.
#
# (The first check repeats section 1's known answer for DPM-Solver++ away from the grid's ends, where it is second
# order; its first and last steps are first order, as diffusers' `lower_order_final`.)

# %%
# NBVAL_CHECK_OUTPUT
import numpy as np

from musicprobe.inversion import integrate

grid_errs = []
for n in (16, 32):
    grid = np.linspace(0.9, 0.1, n + 1)
    exact_mid = gaussian_flow_map(x0, 0.9, 0.1, 0.5)
    grid_errs.append(float((integrate(x0, grid, gaussian_velocity(0.5), "dpmpp-2m").final - exact_mid).abs().max()))
print(f"dpmpp-2m error ratio when halving the step: {grid_errs[0] / grid_errs[1]:.0f}x")

# %%
sao = load("mini-sao")
SAO_NFE = 10 if FAST else 24
sao_traces = {
    "dpmpp-2m": reconstruct(sao, audio, prompt, sr=sr, solver="dpmpp-2m", steps=SAO_NFE),
    "euler": reconstruct(sao, audio, prompt, sr=sr, solver="euler", steps=SAO_NFE),
    "rf-solver": reconstruct(sao, audio, prompt, sr=sr, solver="rf-solver", steps=SAO_NFE // 2),
}
for name, tr in sao_traces.items():
    print(f"{name:<9}", tr.summary(3))
fig = sao_traces["dpmpp-2m"].plot(title=f"mini-SAO: drift between inversion and regeneration ({SAO_NFE} NFE)")
fig.data[0].name = "dpmpp-2m"
for name in ("euler", "rf-solver"):
    fig.add_trace(sao_traces[name].plot().data[0].update(name=name))
fig

# %%
# NBVAL_CHECK_OUTPUT
mse = {name: tr.metrics["mel_mse"] for name, tr in sao_traces.items()}
print("DPM-Solver++ reconstructs better than Euler at equal NFE:", mse["dpmpp-2m"] < mse["euler"])

# %% [markdown]
# **Is the inverted latent noise?** A latent the model would sample from is standard normal (std 1 at $t \approx 1$).
# Inversion only approximates that: its first step starts from clean audio, where the model cannot tell what noise
# to add (it predicts none), so the path stays "too clean". On mini-flux's uniform grid that first step is short;
# Stable Audio's grid jumps straight from $\sigma = 0$ to $\sigma_{min} = 0.3$ (MusicKV's reference inverse scheduler
# does the same by treating the clean latent as the $\sigma_{min}$ sample). Reconstruction under the same prompt
# does not care (the ODE is walked back exactly), but an edit regenerates this latent under *another* prompt, from
# a starting point the model never saw in training.

# %%
stds = {"mini-flux (rf-solver)": float(traces["rf-solver"].inverted_noise.std()),
        "mini-SAO (dpmpp-2m)": float(sao_traces["dpmpp-2m"].inverted_noise.std())}
print({k: round(v, 2) for k, v in stds.items()}, "(a sampled latent: 1.0)")

# %% [markdown]
# ## What to take away
#
# * Inversion is never free: the regenerated clip differs from the source, most of all at the data end.
# * At equal model evaluations the second-order RF-Solver reconstructs far better than Euler; this is why MusRec
#   (and RF-Solver-Edit) use it, and why its two calls per step both get cached for editing (notebook 02).
# * Stable Audio's own sampler, made deterministic, is a multistep second-order solver with one call per step;
#   MusicKV's real-audio path inverts with it (notebook 03 runs MusicKV on mini-SAO).
