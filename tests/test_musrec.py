"""MusRec mechanics on a random-init mini-flux (fast), and its trade-off directions on the trained one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_CODEC_KW, make_tiny_clap, make_tiny_flux

from musicprobe.editors import EditResult, MusRec, MusRecConfig
from musicprobe.errors import ConfigError, UnknownNameError
from musicprobe.inversion import reconstruct
from musicprobe.models.codec import CodecConfig
from musicprobe.models.miniclap import MiniClap
from musicprobe.models.miniflux import MiniFlux

CODEC = CodecConfig(**TINY_CODEC_KW)


@pytest.fixture(scope="module")
def tiny_flux() -> MiniFlux:
    return make_tiny_flux(seed=0)


@pytest.fixture(scope="module")
def tiny_clap() -> MiniClap:
    return make_tiny_clap()


@pytest.fixture(scope="module")
def audio(pop_clip) -> np.ndarray:
    return pop_clip.audio[: CODEC.n_samples]


def test_config_validates_and_round_trips():
    cfg = MusRecConfig(inject="v", inject_steps=3, blocks=[1], tokens="audio", inject_uncond=False)
    assert MusRecConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(UnknownNameError, match="kv"):
        MusRecConfig(inject="kvv")
    with pytest.raises(ConfigError, match="inject_steps"):
        MusRecConfig(steps=10, inject_steps=11)
    with pytest.raises(ConfigError, match="target_guidance"):
        MusRecConfig(target_guidance=0.5)
    with pytest.raises(ConfigError, match="unknown fields"):
        MusRecConfig.from_json('{"inject": "k", "injection_steps": 3}')


def test_block_resolution(tiny_flux):
    ed = MusRec(tiny_flux)
    assert MusRecConfig(blocks="latter_half").block_names(ed.probe) == ["single_blocks.1.attn"]
    assert MusRecConfig().block_names(ed.probe) == ["single_blocks.0.attn", "single_blocks.1.attn"]
    assert MusRecConfig(blocks=["single_blocks.0"]).block_names(ed.probe) == ["single_blocks.0.attn"]
    with pytest.raises(ConfigError, match="out of range"):
        MusRecConfig(blocks=[5]).block_names(ed.probe)
    with pytest.raises(UnknownNameError, match="single_blocks.1"):
        MusRecConfig(blocks=["single_blocks.7"]).block_names(ed.probe)


def test_no_injection_equals_plain_rf_inversion(tiny_flux, tiny_clap, audio):
    """With injection off, source = target prompt and no CFG, MusRec is exactly RF-Solver reconstruction."""
    cfg = MusRecConfig(inject="none", steps=6, target_guidance=1.0)
    ed = MusRec(tiny_flux, cfg, clap=tiny_clap)
    src = ed.record_source(audio, "piano", sr=16000)
    path_latent = ed.edit_from(src, "piano")
    trace = reconstruct(tiny_flux, audio, "piano", sr=16000, solver="rf-solver", steps=6, audio_metrics=False)
    assert torch.equal(src.noise, trace.inverted_noise)
    assert np.allclose(path_latent.edited, tiny_flux.decode(trace.reconstruction), atol=1e-6)


def test_injection_changes_the_edit_and_removes_its_hooks(tiny_flux, tiny_clap, audio):
    base = MusRecConfig(steps=5, inject_steps=5, blocks="all")
    ed = MusRec(tiny_flux, base, clap=tiny_clap)
    src = ed.record_source(audio, "a calm piano piece", sr=16000)
    assert len(src.store) == 2 * 5 * 2  # 2 blocks x 5 steps x 2 RF-Solver calls
    outs = {
        k: ed.edit_from(src, "a dark organ piece", config=base.replace(inject=k)).edited
        for k in ("none", "k", "v", "kv")
    }
    for a, b in (("none", "k"), ("none", "v"), ("k", "v"), ("v", "kv")):
        assert not np.allclose(outs[a], outs[b]), (a, b)
    assert ed.probe.active_hooks() == []


def test_full_kv_injection_at_all_tokens_reproduces_the_source(tiny_flux, tiny_clap, audio):
    """Same-time keys, K+V of every token in every single block at every step, no CFG: only the double blocks
    still see the target prompt, so the edit moves much closer to the source than without injection."""
    cfg = MusRecConfig(steps=6, inject_steps=6, blocks="all", alignment="same_time", target_guidance=1.0)
    ed = MusRec(tiny_flux, cfg, clap=tiny_clap)
    src = ed.record_source(audio, "piano", sr=16000, record_steps=6)
    x0 = tiny_flux.encode(audio, 16000)

    def err(c):
        from musicprobe.editors import denoise_injecting

        path, _ = denoise_injecting(ed.probe, src, "trumpet", schedule=c.schedule(src.layers), guidance=1.0)
        return float((path.final - x0).pow(2).mean())

    assert err(cfg) < err(cfg.replace(inject="none"))


def test_errors_inside_an_edit_leave_no_hooks(tiny_flux, tiny_clap, audio):
    ed = MusRec(tiny_flux, MusRecConfig(steps=3, inject_steps=2), clap=tiny_clap)
    src = ed.record_source(audio, "piano", sr=16000)

    def boom(*a, **k):
        raise RuntimeError("boom")

    orig = tiny_flux.decode
    tiny_flux.decode = boom
    try:
        with pytest.raises(RuntimeError):
            ed.edit_from(src, "flute")
    finally:
        tiny_flux.decode = orig
    assert ed.probe.active_hooks() == []


def test_edit_result_saves_loads_and_plots(tiny_flux, tiny_clap, audio, tmp_path):
    cfg = MusRecConfig(steps=3, inject_steps=2, capture=["single_blocks.1.attn.hook_pattern"])
    res = MusRec(tiny_flux, cfg, clap=tiny_clap).edit(audio, "piano", "flute", sr=16000, reference=audio)
    assert {"chroma", "cqt1_pcc", "clap_target", "clap_source", "chroma_ref"} <= set(res.metrics)
    att = res.attention["single_blocks.1.attn.hook_pattern"]
    n = CODEC.n_tokens + tiny_flux.config.max_text_tokens
    assert att.shape[-2:] == (n, n) and np.allclose(att.sum(-1), 1.0, atol=1e-2)
    back = EditResult.load(res.save(tmp_path / "r"))
    assert back.metrics == res.metrics and back.config == res.config
    assert np.allclose(back.edited, res.edited, atol=1e-4)
    assert len(res.plot("mel").data) == 2 and res.plot("attention").data and res.plot("metrics").data
