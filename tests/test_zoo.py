"""The bundled zoo models: loading, provenance, shapes, determinism, and cheap versions of the quality bars."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musicprobe.errors import AudioError, ConfigError, UnknownNameError
from musicprobe.inversion import generate_latent
from musicprobe.models.codec import CodecConfig, MelCodec
from musicprobe.zoo import WEIGHTS, available, load
from musicprobe.zoo.corpus import HELDOUT_SEED, TRAIN_SEED, build_corpus, clip_seed


@pytest.fixture(scope="module")
def mf():
    return load("mini-flux")


@pytest.fixture(scope="module")
def clap():
    return load("mini-clap")


def test_weights_ship_with_provenance():
    names = ("mini-flux", "mini-ldm", "mini-sao", "mini-musicgen", "mini-instructme", "mini-instructme-no-chord",
             "mini-instructme-no-msa", "mini-clap", "mini-vocoder")
    assert available() == dict.fromkeys(names, True)
    for name in names:
        folder = WEIGHTS / name
        assert (folder / "model.safetensors").stat().st_size <= 40 * 2**20
        meta = json.loads((folder / "config.json").read_text())
        assert meta["corpus_seed"] == TRAIN_SEED and meta["train_steps"] > 0 and "config" in meta
    flux = json.loads((WEIGHTS / "mini-flux" / "config.json").read_text())
    segments = flux["schedule_segments"]  # the learning-rate schedule(s) the shipped weights were trained under
    assert segments[0]["from_step"] == 0 and segments[-1]["to_step"] == flux["train_steps"]
    assert all(a["to_step"] == b["from_step"] for a, b in zip(segments, segments[1:]))
    with pytest.raises(UnknownNameError, match="mini-flux"):
        load("mini-flx")


def test_resumed_training_records_its_schedule_segments():
    from musicprobe.zoo.trainer import extend_segments as _extend_segments

    first = _extend_segments([], 0, 3500)
    assert first == [{"from_step": 0, "to_step": 3500, "schedule_steps": 3500}]
    assert _extend_segments(first, 2000, 3500) == first  # a crash-resume of the same schedule
    longer = _extend_segments(first, 3500, 5000)
    assert longer == first + [{"from_step": 3500, "to_step": 5000, "schedule_steps": 5000}]


def test_mini_flux_is_a_stock_diffusers_flux(mf):
    from diffusers import FluxTransformer2DModel

    from musicprobe.hooks import Probe

    assert type(mf.transformer) is FluxTransformer2DModel
    probe = Probe(mf.transformer)
    assert "single_blocks.0.attn" in probe.points() and "double_blocks.1.attn" in probe.points()


def test_codec_shapes_and_round_trip(mf, pop_clip):
    x = mf.encode(pop_clip.audio, pop_clip.sr)
    c = mf.config.codec
    assert x.shape == (1, c.n_tokens, c.n_mels * c.frames_per_token)
    assert torch.allclose(mf.codec.mel_to_tokens(mf.codec.tokens_to_mel(x)), x)
    y = mf.decode(x)
    assert y.shape == (c.n_samples,)
    from musicprobe.metrics import chroma_similarity
    from musicprobe.synth import make_clip

    n = len(pop_clip.audio)
    kept = chroma_similarity(pop_clip.audio, y[:n])
    unrelated = chroma_similarity(pop_clip.audio, make_clip(5, genre="jazz", lead="trumpet").audio[:n])
    assert kept > 0.6 and kept > unrelated + 0.3, (kept, unrelated)  # Griffin-Lim keeps most of the harmony
    with pytest.raises(AudioError, match="16000 Hz"):
        mf.encode(pop_clip.audio, sr=22050)


def test_codec_config_validation():
    with pytest.raises(ConfigError, match="multiple of frames_per_token"):
        CodecConfig(n_frames=30, frames_per_token=4)
    with pytest.raises(AudioError, match="NaN"):
        MelCodec(CodecConfig(n_frames=8)).decode(torch.full((1, 2, 256), float("nan")))


def test_generation_is_deterministic_per_seed(mf):
    a = generate_latent(mf, "a calm classical piece with violin playing the melody", steps=4, seed=3)
    b = generate_latent(mf, "a calm classical piece with violin playing the melody", steps=4, seed=3)
    c = generate_latent(mf, "a calm classical piece with violin playing the melody", steps=4, seed=4)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_corpus_clips_are_deterministic_and_disjoint():
    a = build_corpus(2, seed=TRAIN_SEED, codec=CodecConfig())
    b = build_corpus(2, seed=TRAIN_SEED, codec=CodecConfig())
    assert np.array_equal(a.mels, b.mels) and a.captions == b.captions
    assert clip_seed(TRAIN_SEED, 10**6 - 1) < clip_seed(HELDOUT_SEED, 0)


def test_mini_clap_names_instruments_of_the_bundled_clips(clap):
    from musicprobe.data import list_samples, load_sample
    from musicprobe.metrics.clap import zero_shot

    samples = [load_sample(s) for s in list_samples()]
    pred = zero_shot(clap, [s.audio for s in samples], 16000, "lead")
    truth = [s.meta["instruments"]["melody"] for s in samples]
    assert np.mean([p == t for p, t in zip(pred, truth)]) >= 0.75, list(zip(pred, truth))


@pytest.mark.parametrize("name", ["mini-flux", "mini-sao"])
def test_cheap_adherence(name, clap):
    """Four prompts with different instruments and genres, each model with its default sampler (mini-SAO:
    DPM-Solver++ on Stable Audio's sigma grid); mini-CLAP must recognise most of what was asked."""
    from musicprobe.inversion import generate_latents
    from musicprobe.metrics.clap import zero_shot

    model = load(name)
    asks = [("flute", "classical"), ("trumpet", "jazz"), ("organ", "reggae"), ("synth lead", "electronic")]
    prompts = [f"a happy {g} piece with {i} playing the melody" for i, g in asks]
    lat = generate_latents(model, prompts, seeds=[0, 1, 2, 3], steps=12)
    audio = [model.decode(x[None]) for x in lat]
    leads = zero_shot(clap, audio, model.sr, "lead")
    genres = zero_shot(clap, audio, model.sr, "genre")
    assert sum(p == a[0] for p, a in zip(leads, asks)) >= 3, leads
    assert sum(p == a[1] for p, a in zip(genres, asks)) >= 2, genres


def test_cheap_adherence_of_mini_musicgen(clap):
    """mini-MusicGen samples four prompts as one batch (top-k 250, CFG 3); mini-CLAP must recognise most leads."""
    from musicprobe.metrics.clap import zero_shot

    mg = load("mini-musicgen")
    asks = [("flute", "classical"), ("trumpet", "jazz"), ("organ", "reggae"), ("guitar", "rock")]
    codes = mg.generate([f"a happy {g} piece with {i} playing the melody" for i, g in asks], seed=0)
    assert codes.shape == (4, 4, 320) and int(codes.max()) < 512
    leads = zero_shot(clap, [mg.decode(c[None]) for c in codes], mg.sr, "lead")
    assert sum(p == a[0] for p, a in zip(leads, asks)) >= 3, leads


def test_mini_musicgen_is_a_stock_transformers_musicgen_with_its_quantiser():
    from transformers import MusicgenForCausalLM

    from musicprobe.models.protocols import TokenModel, family_of

    mg = load("mini-musicgen")
    assert type(mg.decoder) is MusicgenForCausalLM and isinstance(mg, TokenModel) and family_of(mg) == "token"
    assert mg.rvq.codebooks.shape == (4, 512, 64) and mg.rvq.meta["corpus_seed"] == TRAIN_SEED
    from musicprobe.data import list_samples, load_sample

    pop = load_sample(list_samples()[0]).audio
    codes = mg.encode(pop, 16000)
    mel = torch.as_tensor(mg.codec.mel(pop, 16000))
    err = [float(((mg.mel_of_codes(codes[0, :k]) - mel) ** 2).mean()) for k in (1, 2, 4)]
    assert err[0] > err[1] > err[2] and err[2] < 0.1, err  # every codebook refines the frames


def test_the_zoo_models_satisfy_their_protocols(mf):
    from musicprobe.models.protocols import EpsModel, FlowModel, TokenModel, family_of, hooked_module

    assert isinstance(mf, FlowModel) and not isinstance(mf, EpsModel) and not isinstance(mf, TokenModel)
    assert family_of(mf) == "flow" and hooked_module(mf) is mf.transformer
    with pytest.raises(ConfigError, match="none of the model protocols"):
        family_of(object())


def test_the_training_loop_resumes_to_exactly_the_uninterrupted_run(tmp_path):
    from musicprobe.zoo.trainer import LoopConfig, train_loop

    data = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    target = data @ torch.randn(4, 1, generator=torch.Generator().manual_seed(1))
    cfg = LoopConfig(steps=6, lr=1e-2, warmup=2, checkpoint_every=3, log_every=3, ema_decay=0.9)

    def run(folder, crash_at=None):
        torch.manual_seed(0)
        module = torch.nn.Linear(4, 1)

        def loss_at(step, g):
            if step == crash_at:
                raise KeyboardInterrupt  # the run is stopped after its step-3 checkpoint
            idx = torch.randint(64, (8,), generator=g)
            return torch.nn.functional.mse_loss(module(data[idx]), target[idx])

        exported = {}
        train_loop(folder, module, loss_at, cfg, lambda ema, step, seg: exported.update(step=step, seg=seg),
                   log=lambda _m: None)
        return exported

    run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", crash_at=4)
    last = run(tmp_path / "b")
    assert last["step"] == 6 and last["seg"] == [{"from_step": 0, "to_step": 6, "schedule_steps": 6}]
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][n], b[key][n]) for n in a[key]), key
    assert (tmp_path / "b" / "loss.jsonl").read_text().count("\n") == 2


def test_a_run_resumed_under_a_changed_recipe_says_so_in_its_segments(tmp_path):
    from musicprobe.zoo.trainer import LoopConfig, config_changes, train_loop

    module = torch.nn.Linear(2, 1)

    def loss_at(step, g):
        return module(torch.randn(4, 2, generator=g)).pow(2).mean()

    def run(steps, weight):
        seen = {}
        train_loop(tmp_path, module, loss_at, LoopConfig(steps=steps, warmup=0, checkpoint_every=2),
                   lambda ema, step, seg: seen.update(seg=seg),
                   train_config={"loop": {"steps": steps}, "snr_floor": weight, "workers": 1}, log=lambda _m: None)
        return seen["seg"]

    assert run(2, 0.0) == [{"from_step": 0, "to_step": 2, "schedule_steps": 2}]
    changed = {"from_step": 2, "to_step": 4, "schedule_steps": 4, "config_changes": {"snr_floor": [0.0, 1.0]}}
    assert run(4, 1.0) == [{"from_step": 0, "to_step": 2, "schedule_steps": 2}, changed]
    assert config_changes({"a": {"b": 1}, "workers": 2}, {"a": {"b": 1}, "workers": 1}) == {}


@pytest.mark.parametrize("name", ["mini-flux", "mini-sao", "mini-ldm"])
def test_each_diffusion_recipe_trains_and_exports_loadable_weights(tmp_path, name):
    """The recipes share one corpus/caption pipeline; two steps on 16 clips must export weights that load."""
    from musicprobe.zoo.recipes import train

    folder = train(name, tmp_path / name, steps=2, n_clips=16, workers=1, log=lambda _m: None)
    model = load(name, folder, fresh=True)
    assert model.meta["train_steps"] == 2 and model.meta["corpus_clips"] == 16
    x = model.noise(0)
    out = model.eps(x, 500, "a piano piece") if name == "mini-ldm" else model.velocity(x, 0.5, "a piano piece")
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_the_musicgen_recipe_fits_its_quantiser_once_and_trains(tmp_path):
    from musicprobe.zoo.recipes import train

    folder = train("mini-musicgen", tmp_path / "mg", steps=2, n_clips=16, workers=1, log=lambda _m: None)
    mg = load("mini-musicgen", folder, fresh=True)
    assert mg.meta["train_steps"] == 2 and (tmp_path / "mg" / "rvq" / "rvq.safetensors").exists()
    assert torch.equal(mg.rvq.codebooks, load("mini-musicgen", folder, fresh=True).rvq.codebooks)
    assert mg.generate("a piano piece", seed=0, frames=4).shape == (1, 4, 4)


@pytest.mark.parametrize("ablation", [{}, {"chord": False}, {"multiscale": False}])
def test_the_instructme_recipe_trains_each_variant_and_exports_loadable_weights(tmp_path, ablation):
    from dataclasses import replace

    from musicprobe.models.miniinstructme import MiniInstructME
    from musicprobe.zoo.train_instructme import InstructMETrainConfig, train_miniinstructme

    cfg = InstructMETrainConfig(n_clips=4, stats_clips=8, batch_size=2, workers=1)
    cfg.model = replace(cfg.model, **ablation)
    cfg.loop.steps = 2
    folder = train_miniinstructme(tmp_path / "ime", cfg, log=lambda _m: None)
    ime = MiniInstructME.load(folder)
    assert ime.meta["train_steps"] == 2 and ime.meta["corpus_clips"] == 4
    assert (ime.config.chord, ime.config.multiscale) == (ablation.get("chord", True), ablation.get("multiscale", True))
    src = ime.encode(np.zeros(16000, np.float32) + 0.01 * np.sin(np.arange(16000) / 5.0).astype(np.float32), 16000)
    eps = ime.bind(src, ime.chords(np.sin(np.arange(16000) / 5.0).astype(np.float32), 16000)).eps(
        ime.noise(0, frames=src.shape[-1] * 4), 500, "add drums", 2.0)
    assert eps.shape == src.shape and torch.isfinite(eps).all()


def test_the_instructme_recipe_checks_its_loss_weights():
    from musicprobe.zoo.train_instructme import InstructMETrainConfig

    assert InstructMETrainConfig().snr_floor == 1.0  # the shipped weights' last 2,500 steps (their provenance says)
    with pytest.raises(ConfigError, match="snr_floor"):
        InstructMETrainConfig(snr_floor=6.0)


def test_operation_weights_set_each_operations_share_of_the_draws():
    from musicprobe.zoo.train_instructme import InstructMETrainConfig, op_draw_weights

    ops = ["add"] * 6 + ["remix"] * 2 + ["extract"] * 2
    assert op_draw_weights(ops, {}) is None  # every triplet alike (the shipped recipe)
    w = op_draw_weights(ops, {"add": 1, "remix": 3, "extract": 0, "remove": 5, "replace": 5})  # absent ops ignored
    assert torch.allclose(w.sum(), torch.tensor(1.0, dtype=w.dtype))
    share = {op: float(w[[i for i, o in enumerate(ops) if o == op]].sum()) for op in ("add", "remix", "extract")}
    assert share == pytest.approx({"add": 0.25, "remix": 0.75, "extract": 0.0})
    draws = torch.multinomial(w, 4000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert abs(float((draws >= 6).float().mean()) - 0.75) < 0.03  # remix (and no extract: indices 8, 9)
    assert not bool((draws >= 8).any())
    with pytest.raises(ConfigError, match="every operation.*missing: \\['add'"):
        InstructMETrainConfig(op_weights={"remix": 1.0})
    with pytest.raises(ConfigError, match="unknown: \\['remixx'\\]"):
        InstructMETrainConfig(op_weights={"add": 1, "remove": 1, "extract": 1, "replace": 1, "remix": 1, "remixx": 1})
    with pytest.raises(ConfigError, match="not all zero"):
        InstructMETrainConfig(op_weights=dict.fromkeys(("add", "remove", "extract", "replace", "remix"), 0.0))
    with pytest.raises(ConfigError, match="no weight to any operation in the data"):
        op_draw_weights(["add"], {"add": 0, "remove": 1, "extract": 1, "replace": 1, "remix": 1})


def test_the_instructme_recipe_fine_tunes_from_an_export_and_says_so(tmp_path):
    from dataclasses import replace

    from musicprobe.models.miniinstructme import MiniInstructME
    from musicprobe.zoo.recipes import model_overrides, train
    from musicprobe.zoo.train_instructme import InstructMETrainConfig, train_miniinstructme

    assert model_overrides("mini-instructme-no-chord", fine_tune=True) == {"chord": False}
    assert model_overrides("mini-instructme-no-msa", fine_tune=True) == {"multiscale": False, "chord_up": True}
    assert model_overrides("mini-instructme") == {} and model_overrides("mini-flux", fine_tune=True) == {}
    small = dict(n_clips=4, stats_clips=8, batch_size=2, workers=1)
    cfg = InstructMETrainConfig(**small)
    cfg.loop.steps = 2
    first = train_miniinstructme(tmp_path / "base", cfg, log=lambda _m: None)
    tuned = InstructMETrainConfig.fine_tune(str(first), steps=1, **small)
    assert tuned.op_weights["remix"] == 0.4  # the shipped models' second stage: remix-heavy
    tuned.model = replace(tuned.model, **model_overrides("mini-instructme", fine_tune=True))
    ime = MiniInstructME.load(train_miniinstructme(tmp_path / "tuned", tuned, log=lambda _m: None))
    assert ime.config.chord_up and ime.meta["train_steps"] == 1
    assert ime.meta["train"]["op_weights"]["remix"] == 0.4
    assert ime.meta["init_from"]["train_steps"] == 2 and ime.meta["init_from"]["name"] == "mini-instructme"
    assert ime.meta["init_from"]["new_tensors"] and ime.meta["train"]["loop"]["lr"] == 2e-4
    with pytest.raises(ConfigError, match="from scratch only.*mini-instructme"):
        train("mini-flux", tmp_path / "flux", init_from="mini-flux")
    with pytest.raises(ConfigError, match="no exported model to start from"):
        train_miniinstructme(tmp_path / "t2", InstructMETrainConfig.fine_tune(str(tmp_path / "none"), **small))
    assert not (tmp_path / "t2").exists()  # refused before any run folder or data
