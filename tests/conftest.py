import numpy as np
import pytest

from musicprobe.synth import make_clip

SR = 16000


@pytest.fixture(scope="session")
def pop_clip():
    return make_clip(11, genre="pop", lead="piano", mood="happy")


def sine(freq: float, dur: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
