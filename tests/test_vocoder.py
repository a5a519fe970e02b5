"""The mini-vocoder and the differentiable spectral features it is trained with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.audio.features import MelConfig, log_mel
from musicprobe.audio.spectral import mrstft_distance, torch_log_mel
from musicprobe.errors import AudioError, ConfigError
from musicprobe.models.codec import CodecConfig
from musicprobe.zoo import load


def test_torch_log_mel_equals_the_codecs_numpy_log_mel(pop_clip):
    cfg = MelConfig(hop_length=256)
    a = log_mel(pop_clip.audio, cfg)
    b = torch_log_mel(torch.from_numpy(pop_clip.audio), cfg).numpy()
    assert a.shape == b.shape and np.abs(a - b).max() < 2e-3


def test_mrstft_distance_is_zero_for_identical_audio_and_grows_with_noise(pop_clip):
    y = torch.from_numpy(pop_clip.audio)
    g = torch.Generator().manual_seed(0)
    small = y + 0.001 * torch.randn(y.shape, generator=g)
    large = y + 0.05 * torch.randn(y.shape, generator=g)
    assert float(mrstft_distance(y, y)) == 0.0
    assert 0 < float(mrstft_distance(small, y)) < float(mrstft_distance(large, y))


def test_vocoder_shapes_and_clear_errors():
    voc = load("mini-vocoder")
    y = voc.decode(np.full((64, 321), -5.0, np.float32))
    assert y.shape == (320 * 256,) and y.dtype == np.float32
    assert voc.decode(np.full((2, 64, 11), -5.0, np.float32)).shape == (2, 10 * 256)
    with pytest.raises(AudioError, match="NaN"):
        voc.decode(np.full((64, 10), np.nan, np.float32))
    with pytest.raises(AudioError, match="n_mels=64"):
        voc.decode(np.zeros((80, 10), np.float32))
    assert voc.meta["corpus_seed"] == 7 and voc.meta["train_steps"] > 0


def test_the_codec_decodes_with_the_vocoder_and_keeps_griffin_lim_selectable(pop_clip):
    mf = load("mini-flux")
    gl = load("mini-flux", decoder="griffin-lim")
    assert mf.codec.decoder == "vocoder" and gl.codec.decoder == "griffin-lim"
    x = mf.encode(pop_clip.audio, pop_clip.sr)
    a, b = mf.decode(x), gl.decode(x)
    assert a.shape == b.shape == (CodecConfig().n_samples,)
    assert np.array_equal(b, mf.codec.decode(x, "griffin-lim"))
    with pytest.raises(ConfigError, match="no decoder to choose"):
        load("mini-clap", decoder="vocoder")
    with pytest.raises(ConfigError, match="no vocoder"):
        gl.codec.decoder = "vocoder"


def test_vocoder_round_trip_beats_griffin_lim_on_held_out_clips():
    """The direction of ``bench vocoder`` on four held-out clips: lower log-mel and MR-STFT error."""
    from musicprobe.bench.vocoder import vocoder_report

    h = vocoder_report(n_heldout=4, data_samples=False)["heldout"]
    assert h["vocoder"]["mel_l1"] < 0.8 * h["griffin-lim"]["mel_l1"], h
    assert h["vocoder"]["mrstft"] < 0.8 * h["griffin-lim"]["mrstft"], h
    assert h["vocoder"]["seconds"] < h["griffin-lim"]["seconds"], h
