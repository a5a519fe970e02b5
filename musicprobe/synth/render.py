"""Render a :class:`~musicprobe.synth.score.Score` to per-track stems and their mix (``mix == sum(stems)``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.audio.io import rms_db
from musicprobe.synth.instruments import DRUMS, render_drum, render_note, voice
from musicprobe.synth.score import Score

TRACK_GAINS = {"melody": 1.0, "chords": 0.4, "bass": 0.55, "drums": 0.45}
TARGET_DB = -20.0


@dataclass
class Rendering:
    stems: dict[str, np.ndarray]
    mix: np.ndarray
    sr: int
    gain: float


def render_score(
    score: Score, sr: int = 16000, *, target_db: float = TARGET_DB, tracks: tuple[str, ...] | None = None
) -> Rendering:
    """Render every track (or only ``tracks``), normalise the mix to ``target_db`` dBFS RMS (peak <= 0.99), and
    scale the stems by the same gain so that they sum exactly to the mix."""
    n = int(round(score.duration * sr))
    rng = np.random.default_rng(score.plan.seed + 104729)
    drum_cache: dict[str, np.ndarray] = {}
    stems: dict[str, np.ndarray] = {}
    names = [t for t in score.plan.instruments if tracks is None or t in tracks]
    for track in names:
        buf = np.zeros(n + sr, dtype=np.float32)  # one second of headroom for release tails
        for note in score.track_notes(track):
            start = int(round(note.onset * sr))
            if note.instrument in DRUMS:
                if note.instrument not in drum_cache:
                    drum_cache[note.instrument] = render_drum(note.instrument, 1.0, sr, rng)
                wave = drum_cache[note.instrument] * note.velocity
            else:
                wave = render_note(
                    voice(note.instrument), note.pitch, note.offset - note.onset, note.velocity, sr, rng
                )
            end = min(start + wave.size, buf.size)
            buf[start:end] += wave[: end - start]
        stems[track] = buf[:n] * TRACK_GAINS.get(track, 1.0)
    mix = np.sum(list(stems.values()), axis=0) if stems else np.zeros(n, np.float32)
    peak = float(np.max(np.abs(mix))) if stems else 0.0
    gain = 1.0
    if peak > 0:
        gain = 10 ** ((target_db - rms_db(mix)) / 20)
        gain = min(gain, 0.99 / peak)
    stems = {k: (v * gain).astype(np.float32) for k, v in stems.items()}
    mix = np.sum(list(stems.values()), axis=0).astype(np.float32) if stems else mix
    return Rendering(stems, mix, sr, float(gain))
