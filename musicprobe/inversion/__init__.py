"""The sampler/inverter layer: flow solvers (Euler, RF-Solver, DPM-Solver++(2M)), DDIM and edit-friendly DDPM, one
step-event type, and inversion error curves."""

from musicprobe.inversion.api import audio_errors, mel_mse, reconstruct, reconstruct_ddim, sweep
from musicprobe.inversion.ddim import (
    NoiseMaps,
    ddim_invert,
    ddim_sample,
    ddim_timesteps,
    ddpm_invert,
    ddpm_sample,
    gaussian_ddim_map,
    gaussian_eps,
    thresholded_eps,
)
from musicprobe.inversion.events import SamplerPath, StepEvent, time_key
from musicprobe.inversion.flow import (
    FLOW_SOLVERS,
    gaussian_flow_map,
    gaussian_velocity,
    integrate,
    invert,
    nfe_per_step,
    sample,
)
from musicprobe.inversion.grids import flow_times
from musicprobe.inversion.samplers import (
    EPS_SOLVERS,
    SOLVERS,
    Sampler,
    default_solver,
    generate,
    generate_latent,
    generate_latents,
    solvers_for,
)
from musicprobe.inversion.trace import InversionSweep, InversionTrace

__all__ = [
    "EPS_SOLVERS",
    "FLOW_SOLVERS",
    "SOLVERS",
    "InversionSweep",
    "InversionTrace",
    "NoiseMaps",
    "Sampler",
    "SamplerPath",
    "StepEvent",
    "audio_errors",
    "ddim_invert",
    "ddim_sample",
    "ddim_timesteps",
    "ddpm_invert",
    "ddpm_sample",
    "flow_times",
    "gaussian_ddim_map",
    "gaussian_eps",
    "gaussian_flow_map",
    "gaussian_velocity",
    "generate",
    "default_solver",
    "generate_latent",
    "generate_latents",
    "integrate",
    "invert",
    "mel_mse",
    "nfe_per_step",
    "reconstruct",
    "reconstruct_ddim",
    "sample",
    "solvers_for",
    "sweep",
    "thresholded_eps",
    "time_key",
]
