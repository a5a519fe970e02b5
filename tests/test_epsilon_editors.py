"""The epsilon family on a random-init mini-LDM: the protocol, the hooks, and each editor's known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_CODEC_KW, make_tiny_clap, make_tiny_ldm

from musicprobe.editors import (
    ZETA,
    DDIMEdit,
    DDIMEditConfig,
    EditResult,
    SDEdit,
    SDEditConfig,
    SteerMusic,
    SteerMusicConfig,
    ZETAConfig,
)
from musicprobe.errors import ConfigError
from musicprobe.hooks import Probe
from musicprobe.inversion import reconstruct
from musicprobe.models.codec import CodecConfig

CODEC = CodecConfig(**TINY_CODEC_KW)
SR = 16000


@pytest.fixture(scope="module")
def ldm():
    return make_tiny_ldm()


@pytest.fixture(scope="module")
def clap():
    return make_tiny_clap()


@pytest.fixture(scope="module")
def audio(pop_clip) -> np.ndarray:
    return pop_clip.audio[: CODEC.n_samples]


def test_mini_ldm_is_an_eps_model_with_a_lossless_layout(ldm, audio):
    from musicprobe.models.protocols import EpsModel, family_of

    assert isinstance(ldm, EpsModel) and family_of(ldm) == "eps"
    x = ldm.encode(audio, SR)
    assert x.shape == (1, 16, 16, 16) and ldm.noise(0).shape == x.shape
    mel = ldm.codec.mel(audio, SR)
    assert torch.equal(ldm.latent_to_mel(ldm.mel_to_latent(mel)), torch.as_tensor(mel))
    assert ldm.decode(x).shape == (CODEC.n_samples,)
    a = ldm.alphas_cumprod
    assert len(a) == 1000 and torch.all(a[1:] < a[:-1])
    betas = 1 - a[1:] / a[:-1]  # AudioLDM2's scaled_linear endpoints
    assert abs(float(1 - a[0]) - 0.0015) < 1e-6 and abs(float(betas[-1]) - 0.0195) < 1e-5
    probe = Probe.for_model(ldm)
    assert "down.1.layer0.cross_attn" in probe.points() and probe.adapter.family == "unet"


def test_ddim_edit_under_the_source_prompt_is_ddim_reconstruction(ldm, clap, audio):
    cfg = DDIMEditConfig(steps=5, target_guidance=1.0)
    res = DDIMEdit(ldm, cfg, clap=clap).edit(audio, "piano", "piano", sr=SR)
    trace = reconstruct(ldm, audio, "piano", sr=SR, solver="ddim", steps=5, audio_metrics=False)
    assert np.allclose(res.edited, ldm.decode(trace.reconstruction), atol=1e-6)
    assert len(trace.drift()) == 6 and trace.nfe == 10


def test_zeta_under_the_source_prompt_reconstructs_exactly(ldm, clap, audio):
    """Edit-friendly inversion's defining property: same prompt, same guidance -> the source latent, exactly."""
    cfg = ZETAConfig(steps=8, t_start=1000, source_guidance=2.0, target_guidance=2.0)
    ed = ZETA(ldm, cfg, clap=clap)
    src = ed.record_source(audio, "piano", sr=SR)
    assert src.start == 0 and len(src.maps.zs) == 8
    path = src.sampler.sample_ddpm(src.maps, "piano", guidance=2.0)
    assert float((path.final - src.latent).abs().max()) < 1e-4
    partial = ed.record_source(audio, "piano", sr=SR, config=cfg.replace(t_start=500))
    assert partial.start > 0 and partial.maps.timesteps[partial.start] <= 500
    edited = ed.edit_from(partial, "organ", config=cfg.replace(t_start=500, target_guidance=5.0))
    assert edited.edited.shape == (CODEC.n_samples,) and edited.label == "ZETA t_start=500"


def test_sdedit_strength_moves_away_from_the_source(ldm, clap, audio):
    ed = SDEdit(ldm, SDEditConfig(steps=10, target_guidance=1.0), clap=clap)
    dist = {}
    for s in (0.1, 0.5, 1.0):
        c = ed.config.replace(strength=s)
        src = ed.record_source(audio, "piano", sr=SR, config=c)
        assert src.start == ed.start_step(c)
        path = src.sampler.sample(src.noise, "organ", guidance=1.0, start=src.start)
        dist[s] = float((path.final - src.latent).pow(2).mean())
    assert dist[0.1] < dist[0.5] < dist[1.0]
    with pytest.raises(ConfigError, match="strength"):
        SDEditConfig(strength=0.0)


def test_steermusic_same_prompt_has_zero_gradient_and_stays_at_the_source(ldm, clap, audio):
    cfg = SteerMusicConfig(steps=4, source_guidance=3.0, target_guidance=3.0)
    ed = SteerMusic(ldm, cfg, clap=clap)
    res = ed.edit(audio, "piano", "piano", sr=SR)
    assert res.trace.grad_norm == [0.0] * 4 and res.trace.distance == [0.0] * 4
    assert np.allclose(res.edited, ldm.decode(ldm.encode(audio, SR)), atol=1e-6)


def test_steermusic_moves_the_latent_and_traces_it(ldm, clap, audio, tmp_path):
    cfg = SteerMusicConfig(steps=6, source_guidance=3.0, target_guidance=3.0, lr=0.5,
                           capture=["down.1.layer0.cross_attn.hook_pattern"])
    ed = SteerMusic(ldm, cfg, clap=clap)
    res = ed.edit(audio, "piano", "organ", sr=SR)
    tr = res.trace
    assert len(tr.t) == 6 and all(cfg.t_min <= t <= cfg.t_max for t in tr.t)
    assert all(g > 0 for g in tr.grad_norm) and tr.distance[-1] > 0
    att = res.attention["down.1.layer0.cross_attn.hook_pattern"]
    assert att.shape[-1] == 24 and np.allclose(att.sum(-1), 1.0, atol=1e-2)  # queries x MiniLM tokens
    back = EditResult.load(res.save(tmp_path / "r"))
    assert back.trace.grad_norm == tr.grad_norm and len(back.plot("trace").data) == 2
    assert ed.probe.active_hooks() == []


def test_dds_thresholding_known_answers(ldm):
    """DDS clips each branch's clean estimate to the data range, as DDIM does: a range wider than every estimate
    changes nothing, and a range of one value c leaves only the pull back to the source, since both branches then
    predict the clean latent c: w(t) (eps'_tgt - eps'_src) = (1 - a) sqrt(a / (1 - a)) (z - z_src)."""
    from musicprobe.editors.steermusic import dds_step

    z, z_src = ldm.noise(1), ldm.noise(2)
    prompts = ldm.encode_prompt(["organ", "piano"])
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    plain = dds_step(ldm, z, z_src, prompts, 400, eps, (3.0, 3.0))
    assert torch.allclose(dds_step(ldm, z, z_src, prompts, 400, eps, (3.0, 3.0), (-1e9, 1e9)), plain, atol=1e-6)
    a = float(ldm.alphas_cumprod[400])
    pinned = dds_step(ldm, z, z_src, prompts, 400, eps, (3.0, 3.0), (0.25, 0.25))
    assert torch.allclose(pinned, (1 - a) * (a / (1 - a)) ** 0.5 * (z - z_src), atol=1e-4)
    assert not torch.allclose(pinned, plain, atol=1e-3)


def test_steermusic_clips_where_its_model_declares_a_range(ldm, clap):
    """``x0_clip`` (default on) reaches the DDS loop: the tiny mini-LDM declares a range, so the clipped and
    unclipped edits part; the reference settings do not clip."""
    audio = np.sin(2 * np.pi * 220 * np.arange(SR) / SR).astype(np.float32) * 0.3
    runs = {}
    for clip in (True, False):
        cfg = SteerMusicConfig(steps=3, x0_clip=clip)
        runs[clip] = SteerMusic(ldm, cfg, clap=clap).edit(audio, "piano", "organ", sr=SR).trace.grad_norm
    assert not np.allclose(runs[True], runs[False], rtol=1e-3)
    assert SteerMusicConfig.reference().x0_clip is False


def test_dds_direction_is_the_same_batched_or_not(ldm):
    from musicprobe.editors.steermusic import dds_step

    z, z_src = ldm.noise(1), ldm.noise(2)
    prompts = ldm.encode_prompt(["organ", "piano"])
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    batched = dds_step(ldm, z, z_src, prompts, 400, eps, (3.0, 3.0))
    a = float(ldm.alphas_cumprod[400])
    e_t = ldm.eps(a**0.5 * z + (1 - a) ** 0.5 * eps, 400, "organ", 3.0)
    e_s = ldm.eps(a**0.5 * z_src + (1 - a) ** 0.5 * eps, 400, "piano", 3.0)
    assert torch.allclose(batched, (1 - a) * (e_t - e_s), atol=1e-5)
