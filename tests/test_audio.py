import numpy as np
import pytest
import soundfile as sf
from conftest import SR, sine

from musicprobe.audio import (
    MelConfig,
    load_audio,
    log_mel,
    mel_to_audio,
    normalize_loudness,
    normalize_peak,
    resample,
    save_audio,
    to_mono,
    trim_or_pad,
    validate_audio,
)
from musicprobe.audio.io import rms_db
from musicprobe.errors import AudioError, ConfigError, UnknownNameError


@pytest.mark.parametrize(
    "y, sr, match",
    [
        (np.array([0.1, np.nan] * 800, np.float32), SR, "NaN"),
        (np.zeros(SR, np.float32), SR, "silent"),
        (np.ones((SR, 2), np.float32) * 0.1, SR, r"\(samples, channels\)"),
        (np.ones((3, 3, SR), np.float32), SR, "expected shape"),
        (np.ones(SR, np.float32) * 0.1, 1000, "unsupported sample rate"),
        (np.ones(10, np.float32) * 0.1, SR, "too short"),
    ],
)
def test_validate_rejects_bad_audio_with_a_clear_message(y, sr, match):
    with pytest.raises(AudioError, match=match):
        validate_audio(y, sr)


def test_validate_too_long_and_mono_requirement():
    with pytest.raises(AudioError, match="too long"):
        validate_audio(sine(440, 2.0), SR, max_duration=1.0)
    with pytest.raises(AudioError, match="to_mono"):
        validate_audio(np.stack([sine(440), sine(440)]), SR, mono=True)


def test_save_load_roundtrip_resamples_and_mixes_down(tmp_path):
    stereo = np.stack([sine(440, 1.0, 44100), sine(440, 1.0, 44100) * 0.5])
    path = save_audio(tmp_path / "x.flac", stereo, 44100)
    y, sr = load_audio(path, 16000)
    assert sr == 16000 and y.ndim == 1 and abs(y.size - 16000) <= 1
    assert np.max(np.abs(y)) == pytest.approx(0.375, abs=0.02)  # mean of 0.5 and 0.25 peaks


def test_save_says_what_happens_to_a_signal_louder_than_full_scale(tmp_path):
    """Integer formats hold [-1, 1]: a louder signal is clipped with a warning that names the peak (or silently,
    scaled, refused, as asked); a float WAV keeps every value; nothing the caller passed is changed."""
    y = sine(440, 0.5)
    y = (y * (2.5 / np.max(np.abs(y)))).astype(np.float32)
    before = y.copy()
    with pytest.warns(UserWarning, match="peak 2.50 is above 1"):
        clipped, _ = load_audio(save_audio(tmp_path / "w.wav", y, SR), None)
    assert np.max(np.abs(clipped)) == pytest.approx(1.0, abs=1e-3)
    scaled, _ = load_audio(save_audio(tmp_path / "n.wav", y, SR, overflow="normalize"), None)
    assert np.max(np.abs(scaled)) == pytest.approx(0.99, abs=1e-3)
    assert np.corrcoef(scaled, y)[0, 1] > 0.9999  # scaled, not distorted
    kept, _ = load_audio(save_audio(tmp_path / "f.wav", y, SR, subtype="FLOAT"), None)
    assert np.array_equal(kept, y.astype(np.float32))
    with pytest.raises(AudioError, match="peak 2.50"):
        save_audio(tmp_path / "e.wav", y, SR, overflow="error")
    assert not (tmp_path / "e.wav").exists()
    with pytest.raises(UnknownNameError, match="overflow .squash"):
        save_audio(tmp_path / "x.wav", y, SR, overflow="squash")
    assert np.array_equal(y, before)


def test_load_reports_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(bad)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")


def test_load_offset_and_duration(tmp_path):
    y = np.concatenate([sine(220, 1.0), sine(880, 1.0)])
    sf.write(tmp_path / "two.wav", y, SR)
    part, _ = load_audio(tmp_path / "two.wav", SR, offset=1.0, duration=0.5)
    assert part.size == SR // 2
    spectrum = np.abs(np.fft.rfft(part))
    assert np.argmax(spectrum) * SR / part.size == pytest.approx(880, abs=3)


def test_resample_preserves_frequency_and_length():
    y = resample(sine(1000, 1.0, 16000), 16000, 22050)
    assert y.size == 22050
    assert np.argmax(np.abs(np.fft.rfft(y))) == pytest.approx(1000, abs=2)
    x = sine(440)
    assert resample(x, SR, SR) is not None and np.array_equal(resample(x, SR, SR), x)


def test_trim_pad_mono_and_normalisation():
    y = sine(440, 1.0)
    assert trim_or_pad(y, 100).size == 100
    padded = trim_or_pad(y, SR * 2)
    assert padded.size == SR * 2 and np.all(padded[SR:] == 0)
    assert to_mono(np.stack([y, -y])).max() == 0
    assert np.max(np.abs(normalize_peak(y, 0.5))) == pytest.approx(0.5)
    assert rms_db(normalize_loudness(y, -30)) == pytest.approx(-30, abs=0.01)
    loud = normalize_loudness(y, -1)  # would need a peak above 0.99: gain is limited
    assert np.max(np.abs(loud)) == pytest.approx(0.99, abs=1e-4)
    with pytest.raises(AudioError, match="silent"):
        normalize_peak(np.zeros(100, np.float32))


def test_mel_shape_and_hop_convention():
    cfg = MelConfig()  # AudioLDM2: hop 160 = 100 frames per second
    M = log_mel(sine(440, 2.0), cfg)
    assert M.shape == (64, 201)
    assert M.min() >= np.log(1e-5) - 1e-6
    with pytest.raises(ConfigError, match="hop_length"):
        MelConfig(hop_length=2048)


def test_mel_to_audio_reconstructs_the_spectrogram():
    cfg = MelConfig(hop_length=256)
    y = sine(330, 2.0) + sine(660, 2.0, amp=0.2)
    M = log_mel(y, cfg)
    back = mel_to_audio(M, cfg, n_iter=32)
    err = np.mean(np.abs(log_mel(back, cfg)[:, 2:-2] - M[:, 2:-2]))
    noise = np.mean(np.abs(log_mel(np.random.default_rng(0).normal(0, 0.1, y.size).astype(np.float32), cfg) - M))
    assert err < 0.25 * noise
    with pytest.raises(AudioError, match="NaN"):
        mel_to_audio(np.full((64, 10), np.nan), cfg)


def test_an_edit_result_saves_and_loads_its_audio_exactly(tmp_path):
    """Regression: results were written as 16-bit WAV, clipped to [-1, 1]: a loud edit came back changed. Float
    WAV keeps the samples bit for bit, and loading takes them as written (beyond the unscaled-PCM guard too)."""
    from musicprobe.editors.result import EditResult

    y = sine(440, 0.5)
    edited = (y * (13.5 / np.max(np.abs(y)))).astype(np.float32)  # a tiny random model's level
    res = EditResult("sdedit", SR, y, edited, "a", "b", {"steps": 1})
    back = EditResult.load(res.save(tmp_path / "r"))
    assert np.array_equal(back.edited, edited) and np.array_equal(back.source, y.astype(np.float32))


def test_allow_silence_keeps_the_unscaled_pcm_guard_and_any_level_reads_as_written(tmp_path):
    """``allow_silence`` accepts an all-zero file and nothing more: float samples of 13.5 are still refused as
    unscaled PCM (it used to skip that check); ``any_level`` reads a float file at its own level."""
    loud = tmp_path / "loud.wav"
    y = (sine(440, 0.5) * 27.0).astype(np.float32)  # peak 13.5
    sf.write(loud, y, SR, subtype="FLOAT")
    for kw in ({}, {"allow_silence": True}):
        with pytest.raises(AudioError, match="float samples reach 13.5"):
            load_audio(loud, sr=SR, **kw)
    back, _ = load_audio(loud, sr=SR, any_level=True)
    assert np.array_equal(back, y)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((SR // 2, 2), np.float32), SR, subtype="FLOAT")  # stereo silence: nothing cancels
    with pytest.raises(AudioError, match="silent"):
        load_audio(silent, sr=SR)
    quiet, _ = load_audio(silent, sr=SR, allow_silence=True)
    assert quiet.shape == (SR // 2,) and not quiet.any()
