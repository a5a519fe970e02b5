"""CLAP score, FAD and zero-shot classification: one call for mini-CLAP and a real transformers ClapModel."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from musicprobe.errors import ConfigError, UnknownNameError
from musicprobe.metrics.clap import LaionClap, clap_score, class_prompts, fad, frechet_distance, zero_shot
from musicprobe.models.codec import CodecConfig
from musicprobe.models.miniclap import MiniClap, MiniClapConfig, MiniClapNet
from musicprobe.zoo.train_clap import positive_mask


@pytest.fixture(scope="module")
def tiny_laion() -> LaionClap:
    """A random-init transformers ClapModel built from config, with MiniLM's tokenizer (no hub)."""
    from transformers import AutoTokenizer, ClapConfig, ClapFeatureExtractor, ClapModel

    from musicprobe.models.text import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    cfg = ClapConfig(
        text_config=dict(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        audio_config=dict(
            depths=[1, 1],
            num_attention_heads=[1, 2],
            hidden_size=32,
            patch_embeds_hidden_size=16,
            window_size=8,
            spec_size=256,
            num_mel_bins=64,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = ClapModel(cfg).eval()
    fe = ClapFeatureExtractor(feature_size=64, truncation="rand_trunc")  # as laion/clap-htsat-unfused
    return LaionClap(model, SimpleNamespace(feature_extractor=fe, tokenizer=tok), name="tiny-clap")


@pytest.fixture(scope="module")
def tiny_mini() -> MiniClap:
    torch.manual_seed(0)
    cfg = MiniClapConfig(dim=16, channels=(16, 16), codec=CodecConfig(mel_mean=-4.4, mel_std=2.2))
    return MiniClap(MiniClapNet(cfg), cfg)


@pytest.mark.parametrize("which", ["tiny_mini", "tiny_laion"])
def test_same_call_for_both_embedders(which, request, pop_clip):
    model = request.getfixturevalue(which)
    y = pop_clip.audio
    s = clap_score(model, y, 16000, "a happy pop piece")
    assert isinstance(s, float) and -1.0 <= s <= 1.0
    many = clap_score(model, [y, y[::-1].copy()], 16000, ["a", "b"])
    assert many.shape == (2,)
    assert torch.allclose(model.embed_audio([y], 16000).norm(dim=-1), torch.ones(1), atol=1e-5)
    assert zero_shot(model, y, 16000, "lead")[0] in (
        "piano",
        "guitar",
        "flute",
        "violin",
        "trumpet",
        "organ",
        "synth lead",
    )
    with pytest.raises(ConfigError, match="2 audios but 1 texts"):
        clap_score(model, [y, y], 16000, ["only one"])


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shifted = x + np.array([2.0, 0, 0, 0])
    assert frechet_distance(x, shifted) == pytest.approx(4.0, rel=1e-6)  # |mu1 - mu2|^2, same covariance
    scaled = 3 * x  # |2 mu|^2 + tr(S + 9S - 2*3S) = 4 |mu|^2 + 4 tr(S)
    expected = 4 * (x.mean(0) ** 2).sum() + 4 * np.trace(np.cov(x, rowvar=False))
    assert frechet_distance(x, scaled) == pytest.approx(expected, rel=1e-6)


def test_fad_names_its_embedding(tiny_mini, pop_clip):
    clips = [np.roll(pop_clip.audio, 800 * i) for i in range(4)]
    res = fad(tiny_mini, clips, clips, 16000)
    assert res["embedding"] == "mini-clap" and res["fad"] == pytest.approx(0.0, abs=1e-6) and res["n_generated"] == 4


def test_class_prompts_and_positive_mask():
    p = class_prompts("lead", "flute")
    assert all("flute" in x for x in p) and len(p) == 2 * 7 * 4
    with pytest.raises(UnknownNameError, match="flute"):
        class_prompts("lead", "flut")
    labels = {
        "lead": ["piano", "piano", "flute"],
        "genre": ["pop", "jazz", "pop"],
        "mood": ["sad"] * 3,
        "accomp": ["guitar"] * 3,
    }
    # template 3 names mood + lead: clips 0 and 1 both match caption 0; template 4 names genre too
    m = positive_mask(labels, np.array([0, 1, 2]), np.array([3, 4, 3]))
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
