"""Audio I/O, validation and time-frequency features (mel, CQT, chroma) with a mel->audio inverse."""

from musicprobe.audio.features import (
    MelConfig,
    chroma,
    cqt,
    log_mel,
    mel_spectrogram,
    mel_to_audio,
)
from musicprobe.audio.io import (
    load_audio,
    normalize_loudness,
    normalize_peak,
    resample,
    save_audio,
    to_mono,
    trim_or_pad,
    validate_audio,
)

__all__ = [
    "MelConfig",
    "chroma",
    "cqt",
    "load_audio",
    "log_mel",
    "mel_spectrogram",
    "mel_to_audio",
    "normalize_loudness",
    "normalize_peak",
    "resample",
    "save_audio",
    "to_mono",
    "trim_or_pad",
    "validate_audio",
]
