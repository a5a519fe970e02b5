"""Regenerate ``data_samples/`` (deterministic; seed below). Usage: python scripts/make_data_samples.py"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from musicprobe.synth import genre_edit, instrument_edit, make_clip, mood_edit
from musicprobe.synth.corpus import write_clip

SEED = 2026
OUT = Path(__file__).resolve().parents[1] / "data_samples"
# one clip per genre, with leads chosen so the classic edits (piano -> flute, ...) are present
SPECS = [
    ("pop", "piano", "happy"),
    ("rock", "guitar", "dark"),
    ("jazz", "trumpet", "calm"),
    ("reggae", "organ", "happy"),
    ("waltz", "violin", "sad"),
    ("electronic", "synth lead", "dark"),
    ("classical", "flute", "calm"),
    ("pop", "violin", "sad"),
]


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    clips, entries = [], []
    for i, (genre, lead, mood) in enumerate(SPECS):
        clip = make_clip(SEED + i, genre=genre, lead=lead, mood=mood, clip_id=f"{genre}_{lead.replace(' ', '-')}")
        clips.append(clip)
        entries.append(write_clip(clip, OUT, fmt="flac", stems=i < 2))
    pairs = [
        instrument_edit(clips[0], "flute"),
        instrument_edit(clips[1], "piano"),
        instrument_edit(clips[2], "violin"),
        genre_edit(clips[0], "jazz"),
        genre_edit(clips[3], "rock"),
        mood_edit(clips[0]),
        mood_edit(clips[4]),
    ]
    pair_entries = []
    for p in pairs:
        tgt = write_clip(p.target, OUT / "targets", fmt="flac")
        pair_entries.append(
            {
                "kind": p.kind,
                "source": p.source.clip_id,
                "target": f"targets/{tgt['audio']}",
                "target_meta": f"targets/{tgt['meta']}",
                "source_prompt": p.source_prompt,
                "target_prompt": p.target_prompt,
                "instruction": p.instruction,
                "change": p.change,
                "sha256": tgt["sha256"],
            }
        )
    manifest = {
        "generator": "scripts/make_data_samples.py",
        "seed": SEED,
        "sr": 16000,
        "duration": 5.0,
        "clips": entries,
        "edit_pairs": pair_entries,
        "note": "Synthetic music rendered by musicprobe.synth; regenerate with this script.",
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1))
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {len(entries)} clips, {len(pair_entries)} edit pairs, {size / 1e6:.2f} MB to {OUT}")
    assert size < 10e6, "data_samples must stay under 10 MB"
    np.testing.assert_equal(len(set(e["id"] for e in entries)), len(entries))


if __name__ == "__main__":
    main()
