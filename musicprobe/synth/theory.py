"""Music theory helpers: pitch names, modes, diatonic chords and mir_eval-style chord labels."""

from __future__ import annotations

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
}
# triad quality of each scale degree in the mode (used for chord labels)
_QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8)}


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def hz_to_midi(freq: float) -> float:
    import math

    return 69 + 12 * math.log2(freq / 440.0)


def pitch_name(pitch: int) -> str:
    return f"{PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


def scale_pitch(tonic: int, mode: str, degree: int) -> int:
    """MIDI pitch of scale ``degree`` (0-based, may be negative or > 6) above MIDI ``tonic``."""
    steps = MODES[mode]
    octave, idx = divmod(degree, 7)
    return tonic + 12 * octave + steps[idx]


def triad_quality(mode: str, degree: int) -> str:
    steps = MODES[mode]
    root = steps[degree % 7]
    third = (steps[(degree + 2) % 7] - root) % 12
    fifth = (steps[(degree + 4) % 7] - root) % 12
    for name, (_, t, f) in _QUALITY_INTERVALS.items():
        if (t, f) == (third, fifth):
            return name
    return "maj"


def chord_pitches(tonic: int, mode: str, degree: int, *, seventh: bool = False) -> list[int]:
    """Diatonic chord on ``degree`` as MIDI pitches (root position, root above ``tonic``)."""
    degrees = [degree, degree + 2, degree + 4] + ([degree + 6] if seventh else [])
    return [scale_pitch(tonic, mode, d) for d in degrees]


def chord_label(tonic_pc: int, mode: str, degree: int) -> str:
    """mir_eval-style label of the diatonic triad, e.g. ``'A:min'``."""
    root = (tonic_pc + MODES[mode][degree % 7]) % 12
    return f"{PITCH_CLASSES[root]}:{triad_quality(mode, degree)}"


def key_name(tonic_pc: int, mode: str) -> str:
    return f"{PITCH_CLASSES[tonic_pc]} {mode}"
