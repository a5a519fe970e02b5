"""The epsilon-family comparison on mini-LDM (SteerMusic's Table 1 on our corpus): SDEdit (two strengths), DDIM
inversion, ZETA and SteerMusic on held-out instrument and genre edits with true targets.

Per method: CQT-1 PCC and chroma to the source (structure kept), mini-CLAP to the target prompt (adherence), the
LPAPS stand-in to the source (:mod:`musicprobe.metrics.perceptual`; lower = closer), FAD of the edited set to the
true targets over mini-CLAP embeddings, and seconds per edit. The paper's direction: SteerMusic keeps structure
best (highest CQT-1 PCC, lowest LPAPS) at a target CLAP within 0.03 of the best method; SDEdit keeps the least.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from musicprobe.bench.musrec import heldout_pairs

KINDS = ("instrument", "genre")  # the held-out edit kinds, alternating
KEYS = ("cqt1_pcc", "chroma", "clap_target", "lpaps", "chroma_ref", "seconds")


def method_grid(quick: bool = False) -> dict:
    """Method label -> (editor class name, config overrides); ``quick`` shortens every method the same way."""
    from musicprobe.editors import ZETA, DDIMEdit, SDEdit, SteerMusic

    steps = 20 if quick else 50
    return {
        "SDEdit s=0.5": (SDEdit, {"strength": 0.5, "steps": steps}),
        "SDEdit s=0.75": (SDEdit, {"strength": 0.75, "steps": steps}),
        "DDIM": (DDIMEdit, {"steps": steps}),
        "ZETA": (ZETA, {"steps": steps}),
        "SteerMusic": (SteerMusic, {"steps": 50, "lr": 0.015} if quick else {}),  # full: SteerMusicConfig's defaults
    }


REFERENCE = "true target via codec"  # a row that edits nothing: the exact target through the latent and vocoder


def mean_metrics(rows: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in KEYS if k in rows[0]}


def reference_metrics(model, clap, pair, n: int) -> dict[str, float]:
    """The metrics of a perfect edit: the pair's true target through ``model``'s latent and decoder, measured as an
    edit of the source (so the structure an ideal edit keeps, its adherence, and the LPAPS it costs)."""
    from musicprobe.editors.result import edit_metrics
    from musicprobe.metrics.perceptual import lpaps

    src, sr = pair.source.audio[:n], pair.source.sr
    via_codec = model.decode(model.encode(pair.target.audio[:n], sr))[:n]
    m = edit_metrics(src, via_codec, sr, pair.target_prompt, reference=pair.target.audio[:n], clap=clap)
    return dict(m, lpaps=float(lpaps(clap, src, via_codec, sr)))


def paper_direction(table: dict[str, dict]) -> dict[str, bool]:
    """Table 1's four directions read off a ``method -> mean metrics`` table (empty without a SteerMusic row)."""
    steer = table.get("SteerMusic")
    if not steer:
        return {}
    others = [v for k, v in table.items() if k != "SteerMusic"]
    best_clap = max(r["clap_target"] for r in table.values())
    return {
        "SteerMusic highest CQT-1 PCC": steer["cqt1_pcc"] >= max(v["cqt1_pcc"] for v in others),
        "SteerMusic lowest LPAPS": steer["lpaps"] <= min(v["lpaps"] for v in others),
        "SteerMusic CLAP within 0.03 of the best": steer["clap_target"] >= best_clap - 0.03,
        "SDEdit keeps the least (lowest CQT-1 PCC)": min(table, key=lambda k: table[k]["cqt1_pcc"]).startswith(
            "SDEdit"),
    }


def steermusic_comparison(n_pairs: int = 16, quick: bool = False, progress: bool = True,
                          methods: dict | None = None, model=None, clap=None) -> dict:
    """Mean metrics per method over ``n_pairs`` held-out edits (instrument and genre alternating); ``model``
    defaults to the zoo's mini-LDM."""
    from tqdm.auto import tqdm

    from musicprobe.metrics.clap import fad
    from musicprobe.metrics.perceptual import lpaps
    from musicprobe.zoo import load

    ldm, clap = model or load("mini-ldm"), clap or load("mini-clap")
    methods = methods or method_grid(quick)
    pairs = heldout_pairs(n_pairs, kinds=KINDS)
    rows: dict[str, list[dict]] = defaultdict(list)
    edits: dict[str, list[np.ndarray]] = defaultdict(list)
    for pair in tqdm(pairs, desc="steermusic pairs", disable=not progress):
        src, tgt, sr = pair.source.audio, pair.target.audio, pair.source.sr
        for label, (cls, overrides) in methods.items():
            editor = cls(ldm, cls.config_class().replace(**overrides), clap=clap)
            t0 = time.perf_counter()
            res = editor.edit(src, pair.source_prompt, pair.target_prompt, sr=sr, reference=tgt)
            m = dict(res.metrics, seconds=time.perf_counter() - t0, kind=pair.kind)
            m["lpaps"] = float(lpaps(clap, res.source, res.edited, res.sr))
            rows[label].append(m)
            edits[label].append(res.edited)
    n = len(res.edited)
    targets = [p.target.audio[:n] for p in pairs]
    reference = [dict(reference_metrics(ldm, clap, p, n), kind=p.kind) for p in pairs]
    table = {}
    for label, rs in rows.items():
        table[label] = mean_metrics(rs)
        table[label]["fad_to_targets"] = fad(clap, targets, edits[label], ldm.sr)["fad"] if len(rs) > 1 else None
    spread = {label: {k: float(np.std([r[k] for r in rs])) for k in KEYS} for label, rs in rows.items()}
    by_kind = {kind: {label: mean_metrics([r for r in rs if r["kind"] == kind]) for label, rs in rows.items()}
               for kind in dict.fromkeys(p.kind for p in pairs)}
    return {
        "n_pairs": n_pairs,
        "kinds": list(KINDS),
        "methods": {k: v[1] for k, v in methods.items()},
        "table": table,
        "std": spread,
        "paper_direction": paper_direction(table),
        "by_kind": by_kind,
        "paper_direction_by_kind": {kind: paper_direction(t) for kind, t in by_kind.items()},
        "references": {REFERENCE: mean_metrics(reference)},
        "models": {"mini-ldm": ldm.meta.get("train_steps"), "decoder": ldm.codec.decoder},
    }
