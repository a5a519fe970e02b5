"""mini-SAO: the Stable Audio DiT behind the flow protocol (conversion, grid, conditioning, hooks, MusicKV)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_tiny_clap, make_tiny_sao

from musicprobe.errors import ConfigError
from musicprobe.hooks import Probe, RowRoles
from musicprobe.inversion import Sampler
from musicprobe.models.minisao import MiniSAO, MiniSAOConfig
from musicprobe.models.protocols import FlowModel, family_of
from musicprobe.models.trigflow import trig_angle


@pytest.fixture(scope="module")
def sao():
    return make_tiny_sao()


def test_mini_sao_is_a_flow_model_with_stable_audio_conditioning(sao):
    assert isinstance(sao, FlowModel) and family_of(sao) == "flow"
    assert type(sao.denoiser).__name__ == "StableAudioDiTModel"
    text = sao.encode_prompt(["a piano piece", "a guitar piece"])
    ehs, glob = sao.conditioning(text)
    assert ehs.shape == (2, text.tokens.shape[1] + 2, 384)  # text tokens + seconds_start + seconds_end
    assert glob.shape == (2, 1, 768)  # the global token's input: [start | end]
    # diffusers' block: full multi-head self-attention (4 x 8), GQA in the cross-attention (2 key/value heads);
    # partial RoPE: the rotary table covers half a head, over the global token and the audio
    block = sao.denoiser.transformer_blocks[0]
    assert block.attn1.heads == 4 and block.attn1.to_k.out_features == 4 * 8
    assert block.attn2.heads == 4 and block.attn2.to_k.out_features == 2 * 8
    assert sao.rotary[0].shape == (sao.n_tokens + 1, 4)


def test_velocity_converts_the_v_prediction_exactly():
    # an oracle network that returns the true v of a known (x0, eps): the RF velocity must be eps - x0
    sao = make_tiny_sao()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, sao.n_tokens, 64, generator=g)
    eps = torch.randn(1, sao.n_tokens, 64, generator=g)

    def oracle(x_in, angle, text):
        a = torch.as_tensor(angle).reshape(-1, 1, 1)
        assert torch.allclose(x_in, torch.cos(a) * x0 + torch.sin(a) * eps, atol=1e-5)  # the trig-flow input
        return torch.cos(a) * eps - torch.sin(a) * x0

    sao.forward_v = oracle
    for t in (0.0, 0.1, 0.5, 0.9, 1.0):
        x_t = (1 - t) * x0 + t * eps
        v = sao.velocity(x_t, t, "a piano piece", guidance=3.0)
        assert torch.allclose(v, eps - x0, atol=1e-5), t
    assert float(trig_angle(0.5)) == pytest.approx(math.pi / 4)


def test_sao_grid_follows_the_cosine_dpm_solver_sigmas(sao):
    t = sao.flow_times(10)
    sig = t[:-1] / (1 - t[:-1])
    assert len(t) == 11 and t[-1] == 0.0 and np.all(np.diff(t) < 0)
    assert sig[0] == pytest.approx(500.0) and sig[-1] == pytest.approx(0.3)
    assert np.allclose(np.diff(np.log(sig)), np.log(0.3 / 500) / 9)  # exponential in sigma
    assert np.allclose(Sampler(sao, "dpmpp-2m", 10).times(), t)  # the sampler takes the model's own grid
    assert Sampler(sao, "euler", 10, shift=3.0).times()[0] == 1.0  # ... unless a shift asks for the flow grid
    with pytest.raises(ConfigError, match="steps"):
        sao.flow_times(0)
    with pytest.raises(ConfigError, match="GQA"):
        MiniSAOConfig(num_attention_heads=6, num_key_value_attention_heads=4)


def test_probe_on_mini_sao_is_stock_without_interventions_and_bypasses_self_attention_only(sao):
    probe = Probe.for_model(sao)
    assert probe.adapter.family == "stable_audio"
    x = sao.noise(3)
    stock = sao.velocity(x, 0.6, "a jazz piece", 3.0)
    with probe.capture(["blocks.1.self_attn.hook_pattern"]) as session:
        same = sao.velocity(x, 0.6, "a jazz piece", 3.0)
    assert torch.equal(stock, same)
    pattern = session.get("blocks.1.self_attn.hook_pattern")
    assert pattern.shape[-1] == sao.n_tokens + 1  # keys: [global ; audio]
    with probe.bypass("blocks.1.self_attn"):
        skipped = sao.velocity(x, 0.6, "a jazz piece", 3.0)
    with probe.bypass("blocks.1"):
        whole = sao.velocity(x, 0.6, "a jazz piece", 3.0)
    assert not torch.allclose(skipped, stock, atol=1e-5)
    assert not torch.allclose(skipped, whole, atol=1e-5)  # cross-attention and FFN still ran
    assert torch.equal(sao.velocity(x, 0.6, "a jazz piece", 3.0), stock)  # everything removed


def test_kv_injection_after_rope_and_gqa_equals_the_references_injection_before_them():
    # the reference writes the source row's K/V right after the projections (before the head repeat and RoPE);
    # the hook system writes them at the attention call (after both): same result, as RoPE positions coincide
    sao = make_tiny_sao(seed=1)
    x = sao.noise(5, batch=2)
    text = sao.encode_prompt(["a piano piece", "a dark rock piece"])
    attn = sao.denoiser.transformer_blocks[1].attn1

    def copy_row(mod, args, out):
        out = out.clone()
        out[1] = out[0]
        return out

    handles = [attn.to_k.register_forward_hook(copy_row), attn.to_v.register_forward_hook(copy_row)]
    try:
        reference = sao.forward(x, 0.4, text)
    finally:
        for h in handles:
            h.remove()
    probe = Probe.for_model(sao)
    with probe.with_roles(RowRoles(prompts=2, cfg=False)), probe.share_kv("blocks.1.self_attn", source=0):
        ours = sao.forward(x, 0.4, text)
    assert not torch.allclose(ours, sao.forward(x, 0.4, text), atol=1e-4)  # the injection acts
    assert torch.allclose(ours, reference, atol=1e-5)


def test_musickv_on_mini_sao_runs_with_dpm_solver_and_zero_strength_is_plain_generation():
    from musicprobe.editors import MusicKV, MusicKVConfig, musickv_schedule
    from musicprobe.inversion import generate_latent

    sao = make_tiny_sao()
    spec = musickv_schedule(sao)
    assert spec.tokens == "all"  # the reference blends every self-attention token, the global one too
    cfg = MusicKVConfig(layers=["blocks.1.self_attn", "blocks.2.self_attn"], schedule=spec, steps=4,
                        solver="dpmpp-2m")
    editor = MusicKV(sao, cfg, clap=make_tiny_clap())
    src = editor.record_generated("a happy pop piece", seed=2)
    plain = generate_latent(sao, "a calm jazz piece", steps=4, guidance=cfg.target_guidance, seed=2)
    off = cfg.replace(schedule=spec.__class__(**{**spec.to_dict(), "strength": 0.0}))
    assert torch.allclose(editor.run_edit(src, "a calm jazz piece", off), plain, atol=1e-5)
    injected = editor.run_edit(src, "a calm jazz piece", cfg)
    assert not torch.allclose(injected, plain, atol=1e-4)
    assert not Probe.for_model(sao).active_hooks()


def test_mini_sao_weights_round_trip(tmp_path, sao):
    sao.meta["name"] = "mini-sao"
    sao.save(tmp_path / "w")
    back = MiniSAO.load(tmp_path / "w")
    x = sao.noise(1)
    assert back.meta["name"] == "mini-sao" and back.config == sao.config
    assert torch.allclose(back.velocity(x, 0.5, "a piano piece"), sao.velocity(x, 0.5, "a piano piece"), atol=2e-2)


def test_attention_statistics_and_token_attribution_run_on_mini_sao(sao):
    from musicprobe.probing import attention_statistics, attribute_tokens

    stats = attention_statistics(sao, "a calm jazz piece", steps=3)
    for name, v in stats.values.items():
        assert v.shape == (3, 3) and np.isfinite(v).all(), name
    # the prefix of Stable Audio's self-attention is the one global token: its share lies in (0, 1)
    assert stats.values["text_mass"].min() > 0 and stats.values["text_mass"].max() < 1
    att = attribute_tokens(sao, "a calm jazz piece", step=1, steps=3, n_steps=4, internal_batch_size=4)
    assert len(att.top(2)) == 2 and all(np.isfinite(s) for _, s in att.top(2))
