"""Loading, saving and validating audio. Arrays are float32, mono ``(n,)`` or multichannel ``(channels, n)``.

Every function refuses input it cannot handle correctly (NaN, silence, a wrong shape or sample rate) with an
:class:`~musicprobe.errors.AudioError` that says what is wrong, instead of returning a silently wrong result.
"""

from __future__ import annotations

import warnings
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from musicprobe.errors import AudioError, check_known

MIN_RATE, MAX_RATE = 4000, 192000
SILENCE_PEAK = 1e-5
MAX_CHANNELS = 8
UNSCALED_PEAK = 4.0  # float samples beyond this are integer PCM passed without scaling


def _check_rate(sr: int, name: str = "sample rate") -> int:
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool):
        raise AudioError(f"{name} must be an integer number of Hz, got {sr!r}")
    if not MIN_RATE <= int(sr) <= MAX_RATE:
        raise AudioError(f"unsupported {name} {sr} Hz: musicprobe handles {MIN_RATE}..{MAX_RATE} Hz")
    return int(sr)


def validate_audio(
    y: np.ndarray,
    sr: int,
    *,
    name: str = "audio",
    min_duration: float = 0.05,
    max_duration: float | None = None,
    allow_silence: bool = False,
    mono: bool | None = None,
) -> np.ndarray:
    """Check ``y`` and return it as a float32 array.

    Args:
        y: ``(n,)`` mono or ``(channels, n)`` audio.
        sr: sample rate in Hz.
        name: how the audio is called in error messages.
        min_duration, max_duration: accepted length in seconds.
        allow_silence: accept an all-zero (peak < 1e-5) signal.
        mono: ``True`` requires 1-D input, ``False`` requires 2-D, ``None`` accepts both.
    """
    _check_rate(sr)
    if not isinstance(y, np.ndarray):
        try:
            y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise AudioError(f"{name}: expected a numpy array, got {type(y).__name__}") from exc
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise AudioError(f"{name}: expected real numeric samples, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.integer):
        y = pcm_to_float(y)
    if y.ndim == 2 and y.shape[0] > MAX_CHANNELS and y.shape[1] <= MAX_CHANNELS:
        raise AudioError(
            f"{name}: shape {y.shape} looks like (samples, channels); musicprobe expects (channels, samples) — pass y.T"
        )
    if y.ndim not in (1, 2) or (y.ndim == 2 and not 1 <= y.shape[0] <= MAX_CHANNELS):
        raise AudioError(f"{name}: expected shape (n,) or (channels<= {MAX_CHANNELS}, n), got {y.shape}")
    if mono is True and y.ndim != 1:
        raise AudioError(f"{name}: expected mono audio of shape (n,), got {y.shape}; use to_mono() first")
    if mono is False and y.ndim != 2:
        raise AudioError(f"{name}: expected multichannel audio of shape (channels, n), got {y.shape}")
    y = y.astype(np.float32, copy=False)
    n = y.shape[-1]
    if not np.all(np.isfinite(y)):
        bad = int(np.size(y) - np.isfinite(y).sum())
        raise AudioError(f"{name}: contains {bad} NaN or infinite samples")

    dur = n / sr
    if dur < min_duration:
        raise AudioError(f"{name}: too short ({dur:.3f} s < {min_duration} s at {sr} Hz)")
    if max_duration is not None and dur > max_duration:
        raise AudioError(f"{name}: too long ({dur:.2f} s > {max_duration} s); trim it with trim_or_pad()")
    if not allow_silence and float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError(f"{name}: is silent (peak below {SILENCE_PEAK:g})")
    return y


def pcm_to_float(y: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1): signed ints divided by 2**(bits-1), unsigned 8-bit centred at 128."""
    y = np.asarray(y)
    if y.dtype == np.uint8:
        return ((y.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if not np.issubdtype(y.dtype, np.signedinteger):
        raise AudioError(f"unsupported integer sample type {y.dtype}: use int16, int32 or uint8 PCM, or float32")
    return (y.astype(np.float64) / float(2 ** (8 * y.dtype.itemsize - 1))).astype(np.float32)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of ``(channels, n)`` audio; 1-D input is returned unchanged."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise AudioError(f"to_mono: expected (n,) or (channels, n), got {y.shape}")
    return y.mean(axis=0)


def mono_mix(y: np.ndarray, sr: int, *, name: str = "audio", allow_silence: bool = False) -> np.ndarray:
    """Validated mono float32 audio for a model: stereo is averaged, and a mix that cancels (L = -R) is a clear
    error, as are float samples far outside [-1, 1] (integer PCM passed as floats). ``allow_silence``: an all-zero
    signal is returned as it is (there is nothing to cancel)."""
    y = validate_audio(y, sr, name=name, allow_silence=allow_silence)
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        return to_mono(y)
    if peak > UNSCALED_PEAK:
        raise AudioError(
            f"{name}: float samples reach {peak:.4g}; audio must lie in [-1, 1] (integer PCM passed as floats? "
            "divide int16 samples by 32768)"
        )
    if y.ndim == 1:
        return y
    mix = to_mono(y)
    if float(np.max(np.abs(mix))) < max(SILENCE_PEAK, 1e-3 * float(np.max(np.abs(y)))):
        raise AudioError(f"{name}: the channels cancel in the mono mix (e.g. left = -right); pass one channel")
    return mix


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy) along the last axis; exact no-op when the rates are equal."""
    orig_sr, target_sr = _check_rate(orig_sr, "source rate"), _check_rate(target_sr, "target rate")
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    g = gcd(orig_sr, target_sr)
    return resample_poly(y, target_sr // g, orig_sr // g, axis=-1).astype(np.float32)


def trim_or_pad(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop or zero-pad the last axis to exactly ``n_samples``."""
    if n_samples <= 0:
        raise AudioError(f"trim_or_pad: target length must be positive, got {n_samples}")
    n = y.shape[-1]
    if n >= n_samples:
        return y[..., :n_samples]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n_samples - n)]
    return np.pad(y, pad)


def normalize_peak(y: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale so that the largest absolute sample equals ``peak``."""
    if not 0 < peak <= 1:
        raise AudioError(f"normalize_peak: peak must be in (0, 1], got {peak}")
    m = float(np.max(np.abs(y)))
    if m < SILENCE_PEAK:
        raise AudioError("normalize_peak: cannot normalise silent audio")
    return (y * (peak / m)).astype(np.float32)


def rms_db(y: np.ndarray) -> float:
    """RMS level in dBFS (a full-scale sine is -3 dB)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(y, dtype=np.float64))) + 1e-12))


def normalize_loudness(y: np.ndarray, target_db: float = -20.0, max_peak: float = 0.99) -> np.ndarray:
    """Scale to an RMS level of ``target_db`` dBFS (an unweighted loudness, not LUFS), clipping-safe.

    If reaching the level would push the peak over ``max_peak`` the gain is reduced to keep the peak there.
    """
    if not -80 <= target_db <= 0:
        raise AudioError(f"normalize_loudness: target_db must be in [-80, 0] dBFS, got {target_db}")
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError("normalize_loudness: cannot normalise silent audio")
    gain = 10 ** ((target_db - rms_db(y)) / 20)
    peak = float(np.max(np.abs(y))) * gain
    if peak > max_peak:
        gain *= max_peak / peak
    return (y * gain).astype(np.float32)


def load_audio(
    path: str | Path,
    sr: int | None = 16000,
    *,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    allow_silence: bool = False,
    any_level: bool = False,
) -> tuple[np.ndarray, int]:
    """Read wav/flac/ogg with soundfile, mix down to mono, resample to ``sr`` (``None`` keeps the file's rate).

    ``offset`` and ``duration`` (seconds) select a window: ``offset >= 0`` inside the file, ``duration > 0``.
    A WAV file shorter than its header says (a truncated download or copy) is an error, not a shorter clip.
    ``allow_silence``: accept an all-zero file. ``any_level``: float files are read as written at any level and
    channels averaged as they are (for musicprobe's own float results, where a loud edit is data); otherwise float
    samples far outside [-1, 1] are refused as unscaled integer PCM and a mono mix that cancels is an error.
    Returns ``(y, sr)`` with ``y`` float32 ``(n,)`` (mono) or ``(channels, n)``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if not np.isfinite(offset) or offset < 0:
        raise AudioError(f"{path.name}: offset must be >= 0 seconds, got {offset}")
    if duration is not None and (not np.isfinite(duration) or duration <= 0):
        raise AudioError(f"{path.name}: duration must be > 0 seconds, got {duration}")
    _check_not_truncated(path)
    try:
        info = sf.info(str(path))
        start = int(round(offset * info.samplerate))
        if start >= info.frames:
            raise AudioError(f"{path.name}: offset {offset} s is past the end of the file ({info.duration:.2f} s)")
        stop = None if duration is None else start + int(round(duration * info.samplerate))
        data, file_sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"cannot read {path}: {exc}") from exc
    y = data.T  # (channels, n)
    name = str(path.name)
    if mono:
        y = to_mono(y) if any_level else mono_mix(y, file_sr, name=name, allow_silence=allow_silence)
    if sr is not None and sr != file_sr:
        y = resample(y, file_sr, sr)
    out_sr = sr or file_sr
    y = validate_audio(y, out_sr, name=name, allow_silence=allow_silence)
    return y, out_sr


def _check_not_truncated(path: Path) -> None:
    """A RIFF/WAVE file whose header promises more bytes than the file holds was cut short."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    declared = int.from_bytes(head[4:8], "little")
    if declared in (0, 0xFFFFFFFF):  # streaming writers leave the size open
        return
    actual = path.stat().st_size
    if actual < declared + 8:
        raise AudioError(
            f"{path.name} is truncated: its header declares {declared + 8} bytes but the file has {actual} "
            f"({100 * actual / (declared + 8):.0f}%); re-copy or re-export it"
        )


OVERFLOW = ("warn", "clip", "normalize", "error")
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def save_audio(path: str | Path, y: np.ndarray, sr: int, *, subtype: str | None = None,
               overflow: str = "warn") -> Path:
    """Write audio (format from the extension: .wav, .flac, .ogg); a clear error on NaN.

    ``subtype="FLOAT"`` (WAV) stores float32 samples as they are, any level (lossless: :meth:`EditResult.save` uses
    it). Integer formats hold [-1, 1] only; ``overflow`` says what happens to a louder signal: ``"warn"`` clips and
    warns with the peak and the share of clipped samples, ``"clip"`` clips silently, ``"normalize"`` scales the
    whole signal to a peak of 0.99, ``"error"`` refuses."""
    check_known("overflow", overflow, OVERFLOW)
    y = validate_audio(np.asarray(y), sr, name=f"audio for {path}", allow_silence=True, min_duration=0.0)
    path = Path(path)
    data = y
    if (subtype or "").upper() not in FLOAT_SUBTYPES:
        data = _fit_level(y, overflow, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data.T if data.ndim == 2 else data
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def _fit_level(y: np.ndarray, overflow: str, path: Path) -> np.ndarray:
    """``y`` within [-1, 1] for an integer format, as ``overflow`` says (see :func:`save_audio`)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak <= 1.0:
        return y
    over = float(np.mean(np.abs(y) > 1.0))
    if overflow == "error":
        raise AudioError(f"{path.name}: peak {peak:.2f} is above 1 ({over:.2%} of samples); pass overflow='normalize'"
                         " or 'clip', or subtype='FLOAT' to keep the values")
    if overflow == "normalize":
        return y * np.float32(0.99 / peak)
    if overflow == "warn":
        warnings.warn(f"{path.name}: peak {peak:.2f} is above 1, {over:.2%} of samples clipped (overflow='normalize'"
                      " scales instead; subtype='FLOAT' keeps the values)", stacklevel=3)
    return np.clip(y, -1.0, 1.0)
