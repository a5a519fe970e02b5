"""MusicKV, layer probing, attention statistics, token attribution and the widgets, on a random-init mini-flux."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_CODEC_KW, make_tiny_clap, make_tiny_flux

from musicprobe.editors import MusicKV, MusicKVConfig
from musicprobe.errors import ConfigError, UnknownNameError
from musicprobe.hooks import ScheduleSpec
from musicprobe.inversion import generate_latent
from musicprobe.models.codec import CodecConfig
from musicprobe.models.miniclap import MiniClap
from musicprobe.models.miniflux import MiniFlux
from musicprobe.probing import LayerScores, attention_stats_of, attribute_tokens, patch_layers, probe_layers

CODEC = CodecConfig(**TINY_CODEC_KW)


@pytest.fixture(scope="module")
def tiny_flux() -> MiniFlux:
    return make_tiny_flux(seed=1)


@pytest.fixture(scope="module")
def tiny_clap() -> MiniClap:
    return make_tiny_clap()


LAYERS = ["single_blocks.0.attn", "single_blocks.1.attn"]


def test_config_validation_and_json():
    with pytest.raises(ConfigError, match="vital layers"):
        MusicKVConfig()
    with pytest.raises(ConfigError, match="curve='rampp'"):
        MusicKVConfig(layers=LAYERS, schedule=ScheduleSpec(curve="rampp"))
    with pytest.raises(ConfigError, match="custom curve needs 25 weights"):
        MusicKVConfig(layers=LAYERS, schedule=ScheduleSpec(curve="custom", weights=[0.5]))
    cfg = MusicKVConfig(layers=LAYERS, schedule=ScheduleSpec(curve="window", start=2, end=5), steps=8)
    assert MusicKVConfig.from_json(cfg.to_json()) == cfg
    assert cfg.injection().curve_values() == [0, 0, 1, 1, 1, 0, 0, 0]
    # the reference code's ramp on audio tokens: source weight 0 at the first step, rising towards 1
    ramp = MusicKVConfig(layers=LAYERS, steps=4).injection()
    assert ramp.curve_values() == [0.0, 0.25, 0.5, 0.75] and ramp.tokens == "audio" and ramp.kind == "kv"
    with pytest.raises(ConfigError, match="did you mean 'layers'"):
        MusicKVConfig.from_dict({"layer": LAYERS})


def test_unknown_layer_is_named(tiny_flux):
    with pytest.raises(UnknownNameError, match="single_blocks.1.attn"):
        MusicKV(tiny_flux, MusicKVConfig(layers=["single_blocks.9.attn"]))


def test_same_prompt_injection_reproduces_the_source(tiny_flux, tiny_clap):
    """Generated path: injecting a run's own K/V at the same times is the identity, whatever the schedule."""
    cfg = MusicKVConfig(layers=LAYERS, schedule=ScheduleSpec(curve="constant", tokens="all"), steps=4, solver="euler")
    ed = MusicKV(tiny_flux, cfg, clap=tiny_clap)
    res = ed.edit_generated("a calm piano piece", "a calm piano piece", seed=5)
    assert np.allclose(res.edited, res.source, atol=1e-5)
    assert ed.probe.active_hooks() == []


def test_zero_weight_equals_plain_generation_and_weight_moves_towards_source(tiny_flux, tiny_clap):
    spec = ScheduleSpec(curve="constant", strength=0.0, tokens="all")
    base = MusicKVConfig(layers=LAYERS, schedule=spec, steps=4, solver="euler")
    ed = MusicKV(tiny_flux, base, clap=tiny_clap)
    off = ed.edit_generated("piano", "trumpet", seed=2)
    plain = tiny_flux.decode(generate_latent(tiny_flux, "trumpet", steps=4, guidance=4.0, seed=2))
    assert np.allclose(off.edited, plain, atol=1e-5)

    def latent_dist(strength):
        from dataclasses import replace

        from musicprobe.editors import denoise_injecting, generate_and_record
        from musicprobe.inversion import Sampler

        sampler = Sampler(tiny_flux, "euler", 4, 4.0)
        src, src_lat = generate_and_record(sampler, ed.probe, tiny_flux.noise(2), "piano", LAYERS)
        sched = base.replace(schedule=replace(spec, strength=strength)).injection()
        path, _ = denoise_injecting(ed.probe, src, "trumpet", schedule=sched, guidance=4.0)
        return float((path.final - src_lat).pow(2).mean())

    assert latent_dist(1.0) < latent_dist(0.5) < latent_dist(0.0)


def test_real_audio_path_runs_with_a_ramp(tiny_flux, tiny_clap, pop_clip):
    cfg = MusicKVConfig(layers=LAYERS, steps=3, capture=["single_blocks.1.attn.hook_pattern"])
    res = MusicKV(tiny_flux, cfg, clap=tiny_clap).edit(pop_clip.audio[: CODEC.n_samples], "piano", "flute", sr=16000)
    assert res.edited.shape == (CODEC.n_samples,) and "single_blocks.1.attn.hook_pattern" in res.attention
    assert res.config["schedule"]["curve"] == "ramp"


def test_attention_statistics_known_answers():
    n_text, n_audio = 2, 4
    n = n_text + n_audio
    uniform = np.full((n, n), 1 / n)
    s = attention_stats_of(uniform, n_text)
    assert s["entropy"] == pytest.approx(1.0) and s["text_mass"] == pytest.approx(n_text / n)
    diag = np.zeros((n, n))
    diag[np.arange(n), np.arange(n)] = 1.0
    s = attention_stats_of(diag, n_text)
    assert s["entropy"] == pytest.approx(0.0, abs=1e-9) and s["locality"] == 0.0 and s["text_mass"] == 0.0
    far = np.zeros((n, n))
    far[n_text:, n_text:] = np.fliplr(np.eye(n_audio))  # attends to the mirrored time
    assert attention_stats_of(far, n_text)["locality"] == pytest.approx(np.mean([3, 1, 1, 3]) / n_audio)


def test_probe_layers_scores_and_selection(tiny_flux, tiny_clap, tmp_path):
    scores = probe_layers(tiny_flux, tiny_clap, prompts=["piano", "organ"], seeds=[0], steps=3)
    assert scores.points == ["double_blocks.0.attn", "single_blocks.0.attn", "single_blocks.1.attn"]
    assert all(v.shape == (3, 2) for v in scores.changes.values())
    assert (scores.changes["mel"] > 0).all()  # removing any attention layer changes a random model's output
    assert len(scores.top_k(2)) == 2 and scores.top_k(1)[0] == scores.ranking()[0][0]
    assert scores.above(0.0) == [p for p, _ in scores.ranking()]
    back = LayerScores.load(scores.save(tmp_path / "s.json"))
    assert np.allclose(back.score, scores.score) and back.points == scores.points
    fig = scores.plot(selected=scores.top_k(1))
    assert list(fig.data[0].marker.color).count("#d62728") == 1


def test_patch_layers_same_prompt_carries_nothing(tiny_flux, tiny_clap, tmp_path):
    """Injecting a source generated under the target prompt itself changes nothing: every view is exactly 0."""
    same = patch_layers(tiny_flux, tiny_clap, pairs=[("piano", "piano")], steps=3, window=2)
    assert same.method == "patching" and same.cost_views == ["edit_cost"]
    assert all(np.allclose(v, 0.0, atol=1e-6) for v in same.changes.values())
    moved = patch_layers(tiny_flux, tiny_clap, pairs=[("piano", "organ")], steps=3)
    assert all(v.shape == (3, 1) and np.isfinite(v).all() for v in moved.changes.values())
    back = LayerScores.load(moved.save(tmp_path / "p.json"))
    assert back.method == "patching" and np.allclose(back.score, moved.score)
    with pytest.raises(ConfigError, match="window"):
        patch_layers(tiny_flux, tiny_clap, pairs=[("piano", "organ")], steps=3, window=4)


def test_layer_scores_combine_gains_and_costs():
    """score = mean of gains / max|gain| per view - cost_weight * cost / max|cost| (a known answer)."""
    changes = {
        "chroma": np.array([[0.2], [0.1]]),
        "mel": np.array([[1.0], [-0.5]]),
        "edit_cost": np.array([[0.4], [0.1]]),
    }
    s = LayerScores(["a", "b"], changes, settings={"cost_views": ["edit_cost"], "cost_weight": 0.5})
    assert np.allclose(s.score, [(1.0 + 1.0) / 2 - 0.5 * 1.0, (0.5 - 0.5) / 2 - 0.5 * 0.25])
    assert s.top_k(1) == ["a"] and s.bottom_k(1) == ["b"] and s.bottom_k(2) == ["b", "a"]
    with pytest.raises(ConfigError, match="k must be >= 1"):
        s.bottom_k(0)
    plain = LayerScores(["a", "b"], {"chroma": changes["chroma"]})
    assert plain.method == "bypass" and np.allclose(plain.score, [1.0, 0.5])


def test_token_attribution_is_complete(tiny_flux):
    att = attribute_tokens(tiny_flux, "a calm piano piece", step=1, steps=3, n_steps=24, internal_batch_size=8)
    assert att.tokens[0] == "[CLS]" and "piano" in att.tokens and len(att.scores) == len(att.tokens)
    assert np.isfinite(att.scores).all() and att.convergence_delta < 0.05 * np.abs(att.scores).sum() + 1e-3
    block = attribute_tokens(tiny_flux, "a calm piano piece", step=0, steps=3, target="single_blocks.1", n_steps=8)
    assert not np.allclose(block.scores, att.scores[: len(block.scores)])
