"""The MusicKV comparison: vital layers vs the same number of random layers vs all layers, on held-out pairs.

Two ways of finding the vital layers are compared, each against random layer sets of the same size and
against the same number of *least* vital layers (the bottom of the same ranking):

- ``bypass``: the paper's probing (Stable Flow / MusicKV): the layers whose removal changes the output most;
- ``patching``: our causal variant (:func:`musicprobe.probing.patch_layers`): the layers whose injected K/V
  carry the most source structure per unit of editability lost.

Both probes run on *generated* prompt pairs (the probe set); the comparison runs on *held-out real clips*
(inversion: RF-Solver on mini-flux, the deterministic DPM-Solver++ on mini-SAO, as the reference), so a vital set
must generalise from one to the other. One inversion per pair records
K/V at every attention layer, so every layer set is injected from the same recording. Random sets are drawn
``n_random`` times per pair (fixed seed) and averaged.

The trade-off is read two ways: fidelity (chroma, CQT-1 PCC to the source) at no worse editability (mini-CLAP
to the target prompt within 0.02), and one number, ``tradeoff``, that places a layer set on the line from no
injection to injection into every layer: fidelity and editability are each rescaled so that ``none`` and
``all`` are 0 and 1, and ``tradeoff = fidelity_scaled + editability_scaled``. Both ends score 1; a set above the
straight line between them (more fidelity than its editability cost predicts) scores more than 1.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from musicprobe.bench.musrec import heldout_pairs
from musicprobe.probing.vital import METHODS, vital_layers

KEYS = ("chroma", "cqt1_pcc", "clap_target", "chroma_ref", "cqt1_pcc_ref")


def fidelity(row: dict) -> float:
    """Mean of chroma similarity and CQT-1 PCC to the source."""
    return 0.5 * (row["chroma"] + row["cqt1_pcc"])


def tradeoff(row: dict, none: dict, every: dict) -> dict:
    """Fidelity and editability rescaled so that ``none`` -> ``every`` spans 0 -> 1, and their sum (see above)."""
    f_span = fidelity(every) - fidelity(none)
    e_span = none["clap_target"] - every["clap_target"]
    if f_span <= 0 or e_span <= 0:
        nan = float("nan")
        return {"fidelity_scaled": nan, "editability_scaled": nan, "tradeoff": nan}
    f = (fidelity(row) - fidelity(none)) / f_span
    e = (row["clap_target"] - every["clap_target"]) / e_span
    return {"fidelity_scaled": f, "editability_scaled": e, "tradeoff": f + e}


def musickv_comparison(
    n_pairs: int = 16,
    k: int = 3,
    steps: int = 25,
    curve: str = "ramp",
    end: int | None = None,
    n_random: int = 3,
    tokens: str | None = None,
    methods: tuple[str, ...] = METHODS,
    source_branch: str = "regenerate",
    progress: bool = True,
    model: str = "mini-flux",
) -> dict:
    """Vital (per method) vs random vs all vs no layers on zoo ``model`` (``mini-flux`` or ``mini-sao``), MusicKV's
    reference ramp and source branch by default; ``tokens`` and the solver default to the model's
    (:func:`~musicprobe.editors.musickv.musickv_tokens`, its ``default_solver`` or RF-Solver)."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    from musicprobe.editors import MusicKV, MusicKVConfig, musickv_tokens
    from musicprobe.hooks import Probe, ScheduleSpec
    from musicprobe.inversion import default_solver
    from musicprobe.probing import probe_points
    from musicprobe.zoo import load

    mf, clap = load(model), load("mini-clap")
    tokens = tokens or musickv_tokens(mf)
    solver = default_solver(mf, fallback=MusicKVConfig.solver)
    found = {m: vital_layers(mf, clap, k, m) for m in methods}
    least = {m: scores.bottom_k(k) for m, (_, scores) in found.items()}
    every = probe_points(Probe.for_model(mf), "attention")
    spec = ScheduleSpec(kind="kv", tokens=tokens, curve=curve, end=end)
    cfg = MusicKVConfig(layers=every, steps=steps, schedule=spec, source_branch=source_branch, solver=solver)
    editor = MusicKV(mf, cfg, clap=clap)
    rng = np.random.default_rng(0)
    per: dict[str, list[dict]] = defaultdict(list)
    fixed_sets = {f"vital_{m}": layers for m, (layers, _) in found.items()} | {"all": every, "none": []}
    fixed_sets |= {f"least_{m}": layers for m, layers in least.items()}
    for pair in tqdm(heldout_pairs(n_pairs), desc="musickv pairs", disable=not progress):
        src = editor.record_source(pair.source.audio, pair.source_prompt, sr=pair.source.sr)
        sets = dict(fixed_sets)
        for r in range(n_random):
            sets[f"random{r}"] = sorted(rng.choice(every, size=k, replace=False).tolist())
        for name, layers in sets.items():
            # "none" keeps every layer hooked at zero source weight: the plain edit from the same noise
            c = cfg.replace(layers=layers) if layers else cfg.replace(schedule=replace(spec, strength=0.0))
            res = editor.edit_from(src, pair.target_prompt, config=c, reference=pair.target.audio)
            per["random" if name.startswith("random") else name].append(res.metrics)
    table = {v: {key: float(np.mean([m[key] for m in rows])) for key in KEYS} for v, rows in per.items()}
    none, every_row = dict(table["none"]), dict(table["all"])
    for row in table.values():
        row.update(tradeoff(row, none, every_row))
    r = table["random"]
    verdict = {}
    for m in methods:
        v = table[f"vital_{m}"]
        verdict[m] = {
            "fidelity (chroma) above random": v["chroma"] > r["chroma"],
            "fidelity (cqt1_pcc) above random": v["cqt1_pcc"] > r["cqt1_pcc"],
            "editability (clap_target) within 0.02 of random": v["clap_target"] >= r["clap_target"] - 0.02,
            "tradeoff above random": v["tradeoff"] > r["tradeoff"],
            "fidelity (cqt1_pcc) above the least vital layers": v["cqt1_pcc"] > table[f"least_{m}"]["cqt1_pcc"],
        }
    return {
        "model": model,
        "solver": solver,
        "n_pairs": n_pairs,
        "k": k,
        "vital_layers": {m: layers for m, (layers, _) in found.items()},
        "least_vital_layers": least,
        "probing_ranking": {m: s.ranking()[:6] for m, (_, s) in found.items()},
        "schedule": {"curve": curve, "end": end, "steps": steps, "tokens": tokens, "source_branch": source_branch},
        "n_random": n_random,
        "table": table,
        "vital_beats_random": verdict,
        "per_pair": {v: [{key: float(m[key]) for key in KEYS} for m in rows] for v, rows in per.items()},
    }
