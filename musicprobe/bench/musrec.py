"""The MusRec sweep: held-out instrument-edit pairs x (none / K / V / K+V) x injection steps.

Each pair is a held-out corpus clip and the same score re-rendered with another lead instrument (the true
target). One RF-Solver inversion per pair is shared by all variants.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from musicprobe.zoo.corpus import HELDOUT_SEED, clip_seed

KEYS = ("chroma", "cqt1_pcc", "clap_target", "clap_source", "chroma_ref", "cqt1_pcc_ref", "mel_dist_ref")


def heldout_pairs(n: int, seed: int = HELDOUT_SEED + 1, kinds: tuple[str, ...] = ("instrument",)):
    """``n`` edits of held-out clips (drawn from a seed disjoint from training), cycling through ``kinds``
    (instrument, genre, mood); each pair's target is the same score re-rendered with the change."""
    from musicprobe.synth import edit_choices, make_clip, random_edit

    rng = np.random.default_rng(seed)
    pairs = []
    i = 0
    while len(pairs) < n:
        clip = make_clip(clip_seed(seed, i), duration=5.12)
        i += 1
        kind = kinds[len(pairs) % len(kinds)]
        if edit_choices(clip, kind):  # a waltz has no genre of its meter to become: skip it
            pairs.append(random_edit(clip, kind, rng))
    return pairs


def musrec_sweep(
    n_pairs: int = 16,
    inject_steps: tuple[int, ...] = (2, 5, 10),
    kinds=("k", "v", "kv"),
    steps: int = 25,
    model=None,
    clap=None,
    progress: bool = True,
    variants: list[tuple[str, int]] | None = None,
) -> dict:
    """Metrics per variant ``"kind@steps"`` averaged over held-out pairs (``variants`` overrides the grid)."""
    from tqdm.auto import tqdm

    from musicprobe.editors import MusRec, MusRecConfig
    from musicprobe.zoo import load

    mf = model or load("mini-flux")
    clap = clap or load("mini-clap")
    base = MusRecConfig(steps=steps)
    editor = MusRec(mf, base, clap=clap)
    variants = variants or [("none", 0)] + [(k, s) for k in kinds for s in inject_steps]
    inject_steps = tuple(s for _, s in variants)
    per: dict[str, list[dict]] = defaultdict(list)
    secs = []
    pairs = heldout_pairs(n_pairs)
    for pair in tqdm(pairs, desc="musrec pairs", disable=not progress):
        src_audio, tgt_audio = pair.source.audio, pair.target.audio
        t0 = time.perf_counter()
        record = max(inject_steps) or None
        inv = editor.record_source(src_audio, pair.source_prompt, sr=pair.source.sr, record_steps=record)
        inv_secs = time.perf_counter() - t0
        for kind, s in variants:
            cfg = base.replace(inject=kind, inject_steps=s)
            res = editor.edit_from(inv, pair.target_prompt, config=cfg, reference=tgt_audio)
            per[f"{kind}@{s}"].append(res.metrics)
            if kind == "kv" and s == base.inject_steps:
                secs.append(inv_secs + res.seconds)
    table = {v: {k: float(np.mean([m[k] for m in rows])) for k in KEYS} for v, rows in per.items()}
    spread = {v: {k: float(np.std([m[k] for m in rows])) for k in KEYS} for v, rows in per.items()}
    return {
        "n_pairs": n_pairs,
        "steps": steps,
        "variants": [f"{k}@{s}" for k, s in variants],
        "table": table,
        "std": spread,
        "seconds_per_edit": float(np.mean(secs)) if secs else None,
        "goal": "V and K+V preserve the melody (chroma, cqt1_pcc) better than K and none; preservation rises and "
        "clap_target falls as injection steps grow; a 5 s edit <= 15 s on 2 CPU cores",
    }
