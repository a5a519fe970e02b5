"""Time grids for rectified-flow sampling and inversion."""

from __future__ import annotations

import numpy as np

from musicprobe.errors import ConfigError


def flow_times(steps: int, shift: float = 1.0) -> np.ndarray:
    """``steps + 1`` flow times from 1 (noise) to 0 (data), optionally shifted towards noise (SD3/Flux ``shift``).

    ``t' = shift * t / (1 + (shift - 1) t)``; ``shift = 1`` is the uniform grid.
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if shift <= 0:
        raise ConfigError(f"shift must be positive, got {shift}")
    t = np.linspace(1.0, 0.0, steps + 1)
    return shift * t / (1 + (shift - 1) * t)
