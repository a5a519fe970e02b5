"""The MusicKV comparison: vital layers vs the same number of random layers vs all layers, on held-out pairs.

One RF-Solver inversion per pair records K/V at every attention layer, so every layer set is injected from the
same recording. Random sets are drawn ``n_random`` times per pair (fixed seed) and averaged.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from musicprobe.bench.musrec import heldout_pairs

KEYS = ("chroma", "cqt1_pcc", "clap_target", "chroma_ref", "cqt1_pcc_ref")


def vital_layers(model, clap, k: int, scores_path=None):
    """Top-``k`` attention layers of mini-flux by probing score (cached next to the weights when possible)."""
    from musicprobe.probing import LayerScores, probe_layers

    if scores_path is not None and scores_path.exists():
        scores = LayerScores.load(scores_path)
    else:
        scores = probe_layers(model, clap, seeds=(0, 1))
        if scores_path is not None:
            scores.save(scores_path)
    return scores.top_k(k), scores


def musickv_comparison(
    n_pairs: int = 16,
    k: int = 2,
    steps: int = 25,
    curve: str = "window",
    end: int = 12,
    n_random: int = 3,
    tokens: str = "audio",
    progress: bool = True,
) -> dict:
    from tqdm.auto import tqdm

    from musicprobe.editors import MusicKV, MusicKVConfig, denoise, invert_and_record
    from musicprobe.probing import probe_points
    from musicprobe.zoo import load, weights_dir

    mf, clap = load("mini-flux"), load("mini-clap")
    vital, scores = vital_layers(mf, clap, k, weights_dir("mini-flux") / "probing.json")
    editor = MusicKV(mf, MusicKVConfig(layers=vital, steps=steps, curve=curve, end=end, tokens=tokens), clap=clap)
    every = probe_points(editor.probe, "attention")
    rng = np.random.default_rng(0)
    per: dict[str, list[dict]] = defaultdict(list)
    for pair in tqdm(heldout_pairs(n_pairs), desc="musickv pairs", disable=not progress):
        src = invert_and_record(mf, editor.probe, mf.encode(pair.source.audio), pair.source_prompt, every, steps=steps)
        sets = {"vital": vital, "all": every, "none": []}
        for r in range(n_random):
            sets[f"random{r}"] = sorted(rng.choice(every, size=k, replace=False).tolist())
        for name, layers in sets.items():
            sched = editor.config.replace(layers=layers).schedule() if layers else None
            path, _ = denoise(mf, editor.probe, src, pair.target_prompt, schedule=sched, guidance=4.0)
            res = editor._finish(
                pair.source.audio,
                path.final,
                pair.source_prompt,
                pair.target_prompt,
                editor.config,
                {},
                0.0,
                pair.target.audio,
                name,
            )
            per["random" if name.startswith("random") else name].append(res.metrics)
    table = {v: {key: float(np.mean([m[key] for m in rows])) for key in KEYS} for v, rows in per.items()}
    v, r = table["vital"], table["random"]
    return {
        "n_pairs": n_pairs,
        "k": k,
        "vital_layers": vital,
        "schedule": {"curve": curve, "end": end, "tokens": tokens},
        "probing_ranking": scores.ranking()[:6],
        "table": table,
        "vital_beats_random": {
            "fidelity (chroma)": v["chroma"] > r["chroma"],
            "similarity to true target (chroma_ref)": v["chroma_ref"] > r["chroma_ref"],
            "editability (clap_target) kept within 0.02": v["clap_target"] >= r["clap_target"] - 0.02,
        },
    }
