"""Pitched instruments and a drum kit, synthesised with numpy/scipy only.

Pitched voices are band-limited wavetables (harmonic recipes per instrument) read with a phase accumulator, with a
crossfade between a bright and a dark table for timbres whose spectrum evolves (piano, brass), vibrato, breath
noise and envelopes; the plucked guitar and bass use Karplus-Strong via ``scipy.signal.lfilter``. Each instrument
has a clearly distinct spectral envelope and temporal shape, so both ears and the mini models can tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from musicprobe.errors import check_known
from musicprobe.synth.theory import midi_to_hz

TABLE_SIZE = 4096


@dataclass(frozen=True)
class Instrument:
    """A pitched voice. ``bright``/``dark`` give harmonic amplitudes as a function of harmonic number ``k``."""

    name: str
    family: str
    pitch_range: tuple[int, int]
    description: str
    attack: float = 0.01
    decay: float | None = None  # exponential decay time constant (s); None = sustained
    release: float = 0.05
    brightness_decay: float | None = None  # time constant of bright->dark crossfade; None: fixed mix
    bright_mix: float = 1.0
    swell: float | None = None  # dark->bright at onset (brass)
    vibrato_hz: float = 0.0
    vibrato_depth: float = 0.0  # fraction of frequency
    breath: float = 0.0
    detune: float = 0.0  # second oscillator detune in cents (chorus)
    pluck: bool = False
    gain: float = 1.0
    recipe: tuple[str, str] = ("saw", "saw")
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def _harmonics(recipe: str, k: np.ndarray) -> np.ndarray:
    k = k.astype(np.float64)
    if recipe == "saw":
        return 1.0 / k
    if recipe == "saw_soft":
        return 1.0 / k**1.6
    if recipe == "square":
        return np.where(k % 2 == 1, 1.0 / k, 0.0)
    if recipe == "flute":
        return np.where(k == 1, 1.0, 0.0) + np.where(k == 2, 0.22, 0.0) + np.where(k == 3, 0.08, 0.0)
    if recipe == "strings":  # sawtooth with a body resonance bump near harmonics 3-6
        return (1.0 / k) * (1 + 0.8 * np.exp(-0.5 * ((k - 4.5) / 1.5) ** 2))
    if recipe == "brass_bright":
        return np.exp(-0.5 * ((k - 4) / 3.0) ** 2) + 0.6 / k
    if recipe == "brass_dark":
        return np.where(k <= 2, 1.0 / k, 0.05 / k)
    if recipe == "piano_bright":
        return 1.0 / k**1.1 * (1 - 0.7 * (k % 7 == 0))
    if recipe == "piano_dark":
        return np.where(k <= 3, 1.0 / k**2, 0.0)
    if recipe == "organ":  # drawbars 16' 8' 5 1/3' 4' 2' (relative to 8')
        table = {1: 1.0, 2: 0.8, 3: 0.6, 4: 0.5, 6: 0.35, 8: 0.3}
        return np.array([table.get(int(x), 0.0) for x in k])
    if recipe == "sine":
        return np.where(k == 1, 1.0, 0.0)
    raise KeyError(recipe)


@lru_cache(maxsize=256)
def _table(recipe: str, max_harmonic: int) -> np.ndarray:
    k = np.arange(1, max_harmonic + 1)
    amps = _harmonics(recipe, k)
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    wave = (amps[:, None] * np.sin(2 * np.pi * k[:, None] * phase[None, :])).sum(axis=0)
    peak = np.max(np.abs(wave))
    return (wave / peak if peak > 0 else wave).astype(np.float32)


def _band_limited(recipe: str, freq: float, sr: int, cap: int = 40) -> np.ndarray:
    return _table(recipe, int(max(1, min(cap, (sr / 2 * 0.9) // freq))))


def _envelope(n: int, sr: int, inst: Instrument, held: int) -> np.ndarray:
    t = np.arange(n) / sr
    att = np.clip(t / max(inst.attack, 1e-4), 0, 1)
    env = att * (np.exp(-t / inst.decay) if inst.decay else 1.0)
    rel_t = (np.arange(n) - held) / sr
    rel = np.where(rel_t > 0, np.exp(-np.maximum(rel_t, 0) / max(inst.release, 1e-3) * 4.6), 1.0)
    return (env * rel).astype(np.float32)


def _karplus_strong(freq: float, n: int, sr: int, rng: np.random.Generator, damping: float) -> np.ndarray:
    period = max(2, int(round(sr / freq)))
    a = np.zeros(period + 2)
    a[0], a[period], a[period + 1] = 1.0, -damping / 2, -damping / 2
    excitation = np.zeros(n)
    burst = rng.uniform(-1, 1, min(period, n))
    burst -= burst.mean()
    excitation[: burst.size] = burst
    y = lfilter([1.0], a, excitation)
    peak = np.max(np.abs(y[: period * 4])) or 1.0
    return (y / peak).astype(np.float32)


def _mallet(partials: tuple, freq: float, t: np.ndarray, sr: int) -> np.ndarray:
    """Inharmonic partials ``(ratio, amplitude, decay seconds)`` of a struck bar (a mallet voice)."""
    y = np.zeros_like(t)
    for ratio, amp, tau in partials:
        if freq * ratio < sr / 2 * 0.9:
            y += amp * np.sin(2 * np.pi * freq * ratio * t) * np.exp(-t / tau)
    return (y / max(1e-9, sum(a for _, a, _ in partials))).astype(np.float32)


def render_note(
    inst: Instrument, pitch: float, duration: float, velocity: float, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """Render one note: ``duration`` seconds held plus the instrument's release tail."""
    freq = midi_to_hz(pitch)
    held = max(1, int(duration * sr))
    n = held + int(inst.release * sr)
    t = np.arange(n) / sr
    if inst.extra.get("partials"):
        y = _mallet(inst.extra["partials"], freq, t, sr)
        env = _envelope(n, sr, inst, held)
    elif inst.pluck:
        damping = float(inst.extra.get("damping", 0.996))
        y = _karplus_strong(freq, n, sr, rng, damping)
        if inst.extra.get("course_cents"):  # a doubled course: a second string a few cents apart (beating)
            y = 0.5 * (y + _karplus_strong(freq * 2 ** (inst.extra["course_cents"] / 1200), n, sr, rng, damping))
        if inst.extra.get("lowpass"):
            sos = butter(2, min(inst.extra["lowpass"], sr / 2 * 0.9), fs=sr, output="sos")
            y = sosfilt(sos, y).astype(np.float32)
        env = _envelope(n, sr, inst, held)
    else:
        inst_freq = (
            freq * (1 + inst.vibrato_depth * np.sin(2 * np.pi * inst.vibrato_hz * t)) if inst.vibrato_hz else freq
        )
        phase = (np.cumsum(np.broadcast_to(inst_freq, t.shape)) / sr) % 1.0 if inst.vibrato_hz else (freq * t) % 1.0
        idx = (phase * TABLE_SIZE).astype(np.int64) % TABLE_SIZE
        bright = _band_limited(inst.recipe[0], freq, sr)[idx]
        if inst.recipe[1] != inst.recipe[0]:
            dark = _band_limited(inst.recipe[1], freq, sr)[idx]
            if inst.brightness_decay:
                w = np.exp(-t / inst.brightness_decay)
            elif inst.swell:
                w = 1 - np.exp(-t / inst.swell)
            else:
                w = inst.bright_mix
            y = (w * bright + (1 - w) * dark).astype(np.float32)
        else:
            y = bright
        if inst.detune:
            ratio = 2 ** (inst.detune / 1200)
            idx2 = ((freq * ratio * t) % 1.0 * TABLE_SIZE).astype(np.int64) % TABLE_SIZE
            y = 0.5 * (y + _band_limited(inst.recipe[0], freq * ratio, sr)[idx2])
        if inst.breath:
            noise = rng.standard_normal(n).astype(np.float32)
            lo, hi = max(50.0, freq * 0.8), min(sr / 2 * 0.95, freq * 4)
            sos = butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
            y = y + inst.breath * sosfilt(sos, noise).astype(np.float32)
        env = _envelope(n, sr, inst, held)
    return (y * env * velocity * inst.gain).astype(np.float32)


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in [
        Instrument(
            "piano",
            "keyboard",
            (36, 96),
            "struck strings, bright attack that mellows and decays",
            attack=0.003,
            decay=0.9,
            release=0.15,
            brightness_decay=0.25,
            recipe=("piano_bright", "piano_dark"),
            gain=0.9,
        ),
        Instrument(
            "guitar",
            "plucked string",
            (40, 84),
            "plucked nylon-string guitar (Karplus-Strong)",
            attack=0.002,
            release=0.12,
            pluck=True,
            extra={"damping": 0.994, "lowpass": 5000.0},
            gain=0.9,
        ),
        Instrument(
            "flute",
            "woodwind",
            (60, 96),
            "airy, nearly sinusoidal tone with breath noise and vibrato",
            attack=0.06,
            release=0.08,
            vibrato_hz=5.0,
            vibrato_depth=0.004,
            breath=0.25,
            recipe=("flute", "flute"),
            gain=0.8,
        ),
        Instrument(
            "violin",
            "bowed string",
            (55, 100),
            "bowed strings: bright sawtooth, slow attack, vibrato",
            attack=0.12,
            release=0.15,
            vibrato_hz=5.5,
            vibrato_depth=0.006,
            recipe=("strings", "strings"),
            gain=0.6,
        ),
        Instrument(
            "trumpet",
            "brass",
            (52, 84),
            "brass: brightness swells after the attack",
            attack=0.04,
            release=0.06,
            swell=0.08,
            recipe=("brass_bright", "brass_dark"),
            gain=0.55,
        ),
        Instrument(
            "organ",
            "keyboard",
            (36, 96),
            "drawbar organ: steady additive harmonics, no decay",
            attack=0.005,
            release=0.03,
            recipe=("organ", "organ"),
            gain=0.5,
        ),
        Instrument(
            "synth lead",
            "synthesizer",
            (48, 96),
            "detuned square-wave synth lead",
            attack=0.01,
            release=0.05,
            detune=12.0,
            recipe=("square", "square"),
            gain=0.45,
        ),
        Instrument(
            "bass",
            "bass",
            (28, 60),
            "plucked electric bass, dark and round",
            attack=0.003,
            release=0.08,
            pluck=True,
            extra={"damping": 0.998, "lowpass": 900.0},
            gain=1.1,
        ),
    ]
}

# Personal concepts (SteerMusic+): voices the mini models were never trained on. They live apart from
# INSTRUMENTS so that no corpus plan can draw them and existing corpus seeds render exactly as before.
CONCEPT_INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in [
        Instrument(
            "lute",
            "plucked string",
            (45, 81),
            "a bright, buzzy plucked lute: a doubled course of two strings 7 cents apart, short decay",
            attack=0.001,
            release=0.1,
            pluck=True,
            extra={"damping": 0.985, "course_cents": 7.0},
            gain=3.6,  # its short decay would sit 15 dB under a sustained lead in a mix; solo clips are normalised
        ),
        Instrument(
            "marimba",
            "mallet",
            (48, 96),
            "a struck wooden bar: inharmonic partials (1, 3.9, 9.2 x f0), the upper ones dying first",
            attack=0.002,
            release=0.08,
            extra={"partials": ((1.0, 1.0, 0.45), (3.93, 0.45, 0.12), (9.23, 0.18, 0.04))},
            gain=1.0,
        ),
    ]
}


def voice(name: str) -> Instrument:
    """The pitched voice called ``name``: one of :data:`INSTRUMENTS` or of :data:`CONCEPT_INSTRUMENTS`."""
    if name in INSTRUMENTS:
        return INSTRUMENTS[name]
    return CONCEPT_INSTRUMENTS[check_known("instrument", name, [*INSTRUMENTS, *CONCEPT_INSTRUMENTS])]


DRUMS = ("kick", "snare", "hihat", "open_hihat", "ride")


def _drum_kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    f = 45 + 110 * np.exp(-t / 0.04)
    y = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    y[: int(0.002 * sr)] += rng.uniform(-0.3, 0.3, int(0.002 * sr))
    return y.astype(np.float32)


def _drum_snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    noise = sosfilt(
        butter(2, [1200, min(7500, sr / 2 * 0.95)], btype="bandpass", fs=sr, output="sos"),
        rng.standard_normal(n),
    )
    tone = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.04)
    return (0.8 * noise * np.exp(-t / 0.06) + 0.5 * tone).astype(np.float32)


def _drum_hat(sr: int, rng: np.random.Generator, length: float, tau: float) -> np.ndarray:
    n = int(length * sr)
    t = np.arange(n) / sr
    noise = sosfilt(butter(2, min(7000, sr / 2 * 0.9), btype="highpass", fs=sr, output="sos"), rng.standard_normal(n))
    return (0.5 * noise * np.exp(-t / tau)).astype(np.float32)


def _drum_ride(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.6 * sr)
    t = np.arange(n) / sr
    partials = [(3150, 1.0), (3820, 0.7), (4410, 0.5), (5230, 0.4), (6100, 0.3)]
    y = sum(a * np.sin(2 * np.pi * min(f, sr / 2 * 0.95) * t + rng.uniform(0, 6.28)) for f, a in partials)
    y = y / 3 + 0.1 * _drum_hat(sr, rng, 0.6, 0.3)
    return (y * np.exp(-t / 0.25) * 0.5).astype(np.float32)


DRUM_RENDERERS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "kick": _drum_kick,
    "snare": _drum_snare,
    "hihat": lambda sr, rng: _drum_hat(sr, rng, 0.08, 0.018),
    "open_hihat": lambda sr, rng: _drum_hat(sr, rng, 0.3, 0.09),
    "ride": _drum_ride,
}


def render_drum(name: str, velocity: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    return DRUM_RENDERERS[name](sr, rng) * velocity
