"""Real architectures with random weights, from config files alone (what the GPU benchmark times at the papers'
sizes): the same architecture as the folder's pipeline, other weights, and the method runs on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.bench.backends import backend_editor, tiny_for_edit, tone
from musicprobe.errors import MusicProbeError
from musicprobe.models.backends import BACKENDS, tiny_backend
from musicprobe.models.backends.shapes import random_pipeline


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_a_random_pipeline_has_the_folders_architecture(kind, tmp_path):
    original = tiny_for_edit(kind)
    original.pipe.save_pretrained(tmp_path / kind)
    for weights in tmp_path.rglob("*.safetensors"):
        weights.unlink()  # the architecture needs the config files only
    backend = type(original)(random_pipeline(kind, tmp_path / kind, seed=1), seconds=original.seconds)
    a, b = (m.decoder if kind == "musicgen" else m.denoiser for m in (original, backend))
    assert type(a) is type(b) and [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    sr = backend.sr
    res = backend_editor(kind, backend).edit(tone(sr), "a calm piano melody", "a calm flute melody", sr=sr)
    assert res.edited.shape == (int(0.6 * sr),) and np.isfinite(res.edited).all()


def test_a_folder_without_a_pipeline_is_named(tmp_path):
    with pytest.raises(MusicProbeError, match="no model_index.json"):
        random_pipeline("stable-audio", tmp_path)


def test_bench_backends_times_an_architecture_given_by_its_config(tmp_path):
    from musicprobe.bench.backends import backends_report

    tiny_backend("stable-audio").pipe.save_pretrained(tmp_path / "sao")
    report = backends_report(source=f"stable-audio:{tmp_path / 'sao'}")
    assert list(report["backends"]) == ["stable-audio"] and "random weights" in report["pipelines"]
    window = tiny_for_edit("stable-audio").n_samples  # shorter than the 10 s a real-size run edits: all of it
    assert abs(report["backends"]["stable-audio"]["edited_samples"] - window) <= 1
    assert report["backends"]["stable-audio"]["parameters"] == sum(
        p.numel() for m in tiny_backend("stable-audio").modules() for p in m.parameters())
