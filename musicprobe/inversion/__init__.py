"""Inversion for rectified-flow (Euler, RF-Solver) and epsilon-prediction (DDIM) models, with error curves."""

from musicprobe.inversion.api import ALL_SOLVERS, audio_errors, mel_mse, reconstruct, reconstruct_ddim, sweep
from musicprobe.inversion.ddim import ddim_invert, ddim_sample, ddim_timesteps, gaussian_ddim_map, gaussian_eps
from musicprobe.inversion.flow import (
    SOLVERS,
    FlowPath,
    SolverCall,
    gaussian_flow_map,
    gaussian_velocity,
    integrate,
    invert,
    nfe_per_step,
    sample,
)
from musicprobe.inversion.schedules import flow_times
from musicprobe.inversion.trace import InversionSweep, InversionTrace

__all__ = [
    "ALL_SOLVERS",
    "SOLVERS",
    "FlowPath",
    "InversionSweep",
    "InversionTrace",
    "SolverCall",
    "audio_errors",
    "ddim_invert",
    "ddim_sample",
    "ddim_timesteps",
    "flow_times",
    "gaussian_ddim_map",
    "gaussian_eps",
    "gaussian_flow_map",
    "gaussian_velocity",
    "integrate",
    "invert",
    "mel_mse",
    "nfe_per_step",
    "reconstruct",
    "reconstruct_ddim",
    "sample",
    "sweep",
]
