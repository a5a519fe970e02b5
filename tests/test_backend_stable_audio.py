"""The Stable Audio Open backend on a tiny full pipeline built from config: protocol, parity with the stock
pipeline, hooks, MusicKV end to end, audio I/O, loading, device and dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import make_tiny_clap

from musicprobe.editors.musickv import MusicKV, MusicKVConfig
from musicprobe.errors import AudioError, ConfigError, MusicProbeError
from musicprobe.hooks import Probe
from musicprobe.inversion import Sampler
from musicprobe.models.backends import (
    DeterministicCosineDPMSolver,
    StableAudioBackend,
    load_backend,
    pick_device,
    pick_dtype,
    tiny_backend,
)
from musicprobe.models.protocols import FlowModel, family_of

PROMPT = "a calm piano melody"


@pytest.fixture(scope="module")
def sao():
    return tiny_backend("stable-audio")


def _tone(sr: int, seconds: float = 0.6, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _stock_latent(backend: StableAudioBackend, noise: torch.Tensor, steps: int, guidance: float) -> torch.Tensor:
    pipe = backend.pipe
    pipe.scheduler = DeterministicCosineDPMSolver.from_config(pipe.scheduler.config)
    out = pipe(PROMPT, num_inference_steps=steps, guidance_scale=guidance, latents=noise.clone(),
               output_type="latent")
    return out.audios


def test_backend_implements_the_flow_protocol_at_the_pipelines_rate(sao):
    assert isinstance(sao, FlowModel) and family_of(sao) == "flow" and sao.family == "stable_audio"
    assert (sao.sr, sao.channels, sao.n_samples) == (44100, 2, 16 * 2048)  # the real model's rate and hop
    assert type(sao.denoiser).__name__ == "StableAudioDiTModel"
    assert sao.noise(0).shape == (1, 4, 16) and torch.equal(sao.noise(0), sao.noise(0))
    states = sao.encode_prompt([PROMPT, "a dark rock song"])
    assert states.cross.shape == (2, 16 + 2, 16) and states.global_states.shape == (2, 1, 32)
    assert sao.config.to_dict()["kind"] == "stable-audio"


@pytest.mark.parametrize("guidance", [1.0, 7.0])
def test_sampler_equals_the_stock_pipeline_with_the_noise_removed(guidance):
    # musicprobe's DPM-Solver++(2M) on the backend = StableAudioPipeline.__call__ with the deterministic scheduler,
    # from the same initial latent (the pipeline scales it by init_noise_sigma in its sigma space)
    backend = tiny_backend("stable-audio")
    noise = backend.noise(3)
    stock = _stock_latent(backend, noise, steps=8, guidance=guidance)
    s_max = backend.pipe.scheduler.config.sigma_max
    x1 = noise * (s_max**2 + 1) ** 0.5 / (1 + s_max)  # the same point in rectified-flow coordinates
    ours = Sampler(backend, "dpmpp-2m", 8, guidance).sample(x1, PROMPT).latents[-1]
    assert stock.abs().max() > 0.5  # a real generation, not zeros
    torch.testing.assert_close(ours, stock, atol=2e-5, rtol=1e-5)


def test_the_stock_scheduler_is_stochastic_and_ours_is_not():
    backend = tiny_backend("stable-audio")
    pipe = backend.pipe
    noise = backend.noise(1)
    runs = {}
    for name, sched in (("stock", type(pipe.scheduler)), ("det", DeterministicCosineDPMSolver)):
        pipe.scheduler = sched.from_config(pipe.scheduler.config)
        runs[name] = [pipe(PROMPT, num_inference_steps=4, latents=noise.clone(), output_type="latent",
                           generator=torch.Generator().manual_seed(s)).audios for s in (0, 1)]
    assert not torch.allclose(*runs["stock"])  # SDE-DPM-Solver++: the Brownian noise depends on the seed
    torch.testing.assert_close(*runs["det"], atol=0, rtol=0)


def test_capturing_leaves_the_output_exactly_and_removes_what_it_added(sao):
    x = sao.noise(2)
    plain = sao.velocity(x, 0.7, PROMPT, guidance=3.0)
    probe = Probe.for_model(sao)
    before = {n: dict(m._forward_hooks) for n, m in sao.denoiser.named_modules()}
    processors = dict(sao.denoiser.attn_processors)
    with probe.capture(probe.hook_names(), heads="all", dtype=torch.float32) as cache:
        captured = sao.velocity(x, 0.7, PROMPT, guidance=3.0)
    assert torch.equal(captured, plain) and len(cache.names()) == len(probe.hook_names())
    assert probe.active_hooks() == []
    with pytest.raises(RuntimeError), probe.capture(["blocks.0.self_attn.hook_pattern"]):
        raise RuntimeError("a user's error inside the block")
    assert {n: dict(m._forward_hooks) for n, m in sao.denoiser.named_modules()} == before
    assert {k: type(v) for k, v in sao.denoiser.attn_processors.items()} == {k: type(v) for k, v in processors.items()}
    assert torch.equal(sao.velocity(x, 0.7, PROMPT, guidance=3.0), plain)


def test_musickv_runs_end_to_end_on_the_pipeline():
    backend = tiny_backend("stable-audio")
    sr = 22050  # another rate: the editor resamples to the pipeline's 44.1 kHz and back is not needed
    cfg = MusicKVConfig(layers=["blocks.1.self_attn"], steps=6)
    editor = MusicKV(backend, cfg, clap=make_tiny_clap())
    source = editor.record_source(_tone(sr), PROMPT, sr=sr)
    res = editor.edit_from(source, "a calm flute melody")
    assert res.sr == 44100 and res.edited.shape == (int(0.6 * 44100),) and np.isfinite(res.edited).all()
    assert {"chroma", "cqt1_pcc", "clap_target"} <= set(res.metrics)
    # injection acts: the same edit with the source's K/V never blended in differs
    off = editor.edit_from(source, "a calm flute melody", config=MusicKVConfig(
        layers=["blocks.1.self_attn"], steps=6, schedule={"kind": "kv", "tokens": "all", "curve": "constant",
                                                           "strength": 0.0}))
    assert not np.allclose(res.edited, off.edited)
    assert not any(m._forward_hooks for m in backend.denoiser.modules())


def test_audio_in_and_out(sao):
    y = _tone(sao.sr)
    z_mono = sao.encode(y, sao.sr)
    z_stereo = sao.encode(np.stack([y, y]), sao.sr)
    assert z_mono.shape == (1, 4, 16)
    torch.testing.assert_close(z_mono, z_stereo)  # a mono clip goes into both channels
    assert sao.decode(z_mono).shape == (sao.n_samples,) and sao.decode_channels(z_mono).shape == (2, sao.n_samples)
    with pytest.raises(AudioError, match="44100 Hz audio, got 16000 Hz"):
        sao.encode(y, 16000)
    with pytest.raises(AudioError, match="shape"):
        sao.encode(np.zeros((3, 4, 5), dtype=np.float32), sao.sr)


def test_duration_conditioning_and_its_bounds():
    short = tiny_backend("stable-audio", seconds=0.5)
    full = tiny_backend("stable-audio")
    assert not torch.equal(short.encode_prompt(PROMPT).global_states, full.encode_prompt(PROMPT).global_states)
    with pytest.raises(ConfigError, match="seconds must be in"):
        tiny_backend("stable-audio", seconds=5.0)


def test_loading_from_a_folder_and_a_clear_error_offline(sao, tmp_path):
    sao.pipe.save_pretrained(tmp_path / "sao")
    loaded = load_backend("stable-audio", tmp_path / "sao", device="cpu", dtype="fp32")
    x = sao.noise(4)
    torch.testing.assert_close(loaded.velocity(x, 0.5, PROMPT, 2.0), sao.velocity(x, 0.5, PROMPT, 2.0))
    with pytest.raises(MusicProbeError, match="No hub is reachable offline"):
        load_backend("stable-audio", tmp_path / "missing")
    with pytest.raises(MusicProbeError, match="stable-audio"):
        load_backend("stable-audo")


def test_device_and_dtype_fall_back_with_a_message():
    assert pick_device("cpu").type == "cpu" and pick_dtype(None, torch.device("cpu")) == torch.float32
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="no CUDA GPU"):
            assert pick_device("cuda").type == "cpu"
    with pytest.warns(UserWarning, match="float32 instead"):
        assert pick_dtype("fp16", torch.device("cpu")) == torch.float32
    with pytest.raises(ConfigError, match="unknown dtype"):
        pick_dtype("fp8", torch.device("cpu"))
    with pytest.raises(ConfigError, match="device"):
        pick_device("tpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_dtype("bf16", torch.device("cuda")) == torch.bfloat16


def test_one_name_for_zoo_models_backends_and_tiny_pipelines():
    from musicprobe.zoo.resolve import model_from_spec

    assert isinstance(model_from_spec("tiny:stable-audio"), StableAudioBackend)
    assert type(model_from_spec("mini-sao")).__name__ == "MiniSAO"
    with pytest.raises(ConfigError, match="tiny pipelines: stable-audio, audioldm2, musicgen, fluxmusic"):
        model_from_spec("tiny:stable-audo")
    with pytest.raises(ConfigError, match="unknown model 'stable_audio'"):
        model_from_spec("stable_audio")
    with pytest.raises(ConfigError, match="mini model: it runs on the CPU"):
        model_from_spec("mini-sao", device="cuda")
    with pytest.raises(MusicProbeError, match="No hub is reachable offline"):
        model_from_spec("stable-audio:/nonexistent/folder")


def test_bench_backends_reports_time_memory_and_what_reduction_saves():
    from musicprobe.bench.backends import backends_report

    row = backends_report(("stable-audio",))["backends"]["stable-audio"]
    assert row["method"] == "musickv" and row["sr"] == 44100 and row["edited_samples"] == int(0.6 * 44100)
    assert row["seconds_per_edit"] > 0 and row["peak_memory_mb"] >= 0
    sizes = row["capture_bytes"]
    assert 0 < sizes["reduced"] * 10 < sizes["all_heads_every_step"]


def test_inversion_error_curves_on_the_pipeline(sao):
    from musicprobe.inversion import reconstruct

    trace = reconstruct(sao, _tone(sao.sr), PROMPT, sr=sao.sr, solver="dpmpp-2m", steps=6, audio_metrics=False)
    assert trace.metrics["mel_mse"] >= 0 and len(trace.drift()) == 7


def test_a_capture_that_grows_too_large_warns_once(sao, monkeypatch):
    from musicprobe.hooks.cache import ActivationCache

    monkeypatch.setattr(ActivationCache, "warn_bytes", 10_000)
    probe = Probe.for_model(sao)
    x = sao.noise(0)
    with (pytest.warns(UserWarning, match="heads='mean', reduce_steps=True") as record,
          probe.capture(["blocks.0.self_attn.hook_pattern"], heads="all") as cache):
        for i in range(4):
            with probe.at_step(i):
                sao.velocity(x, 0.9 - 0.1 * i, PROMPT, guidance=3.0)
    assert cache.nbytes > 10_000 and sum("GiB on the CPU" in str(w.message) for w in record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with probe.capture(["blocks.0.self_attn.hook_pattern"], heads="mean", reduce_steps=True):
            for i in range(4):
                with probe.at_step(i):
                    sao.velocity(x, 0.9 - 0.1 * i, PROMPT, guidance=3.0)
