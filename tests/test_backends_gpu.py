"""``pytest -m gpu``: every backend's method end to end on CUDA in half precision (skipped where torch sees no GPU).

The same code runs on the CPU in the other backend tests; here the device and dtype paths are exercised: weights
and latents on the GPU, CPU-drawn noise moved to it, hooks installed and removed, float16 in the networks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.bench.backends import backend_editor, tiny_for_edit, tone
from musicprobe.models.backends import BACKENDS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_the_method_runs_on_cuda_in_half_precision(kind):
    backend = tiny_for_edit(kind, device="cuda", dtype="fp16")
    assert all(p.dtype == torch.float16 and p.is_cuda for m in backend.modules() for p in m.parameters())
    editor = backend_editor(kind, backend)
    sr = backend.sr
    res = editor.edit(tone(sr), "a calm piano melody", "a calm flute melody", sr=sr)
    assert res.provenance["device"].startswith("cuda") and res.provenance["dtype"] == "float16"
    assert res.edited.shape == (int(0.6 * sr),) and np.isfinite(res.edited).all()
    assert editor.probe.active_hooks() == []
