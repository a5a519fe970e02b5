"""Personalised editing on mini-LDM (SteerMusic+'s Table 2 and its ablations on our corpus).

For each bundled concept (a voice mini-LDM never heard: ``lute``, ``marimba``) and held-out source clips whose true
target is the same score with the concept on the melody, the methods are:

- **Textual inversion**: partial DDIM inversion with the base model, denoising by the base model reading the learned
  token (DreamSound's textual-inversion baseline);
- **DreamSound**: the same, denoised by the fine-tuned concept model (DreamBooth LoRA);
- **SteerMusic (text)**: DDS towards the concept's plain name ("lute"), which the model never learned;
- **SteerMusic+** in steps: PDS alone, + the shift regulariser, + PCon (the full method).

Metrics: CQT-1 PCC and chroma to the source (structure), the LPAPS stand-in to the source and to the true target,
the CDPAM stand-in (:func:`musicprobe.metrics.clap.concept_distance`: mini-CLAP audio distance to the concept's
reference clips; lower = more like the concept), the concept judge (:mod:`musicprobe.metrics.concept_judge`: the
probability that the concept's voice is heard in the mix, fitted from the reference clips; higher = the concept),
FAD of each method's edits to the true targets, seconds per edit and, for PCon, the bytes its autograd graph keeps
per iteration. Two sweeps follow the paper's ablations: ``lam``
(the regulariser's sign and size) and the concept model's fine-tuning steps (50 / 100 / 200); :func:`strength_sweep`
asks how hard the DDS edits must push before the judge hears the concept.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from musicprobe.synth.corpus import clip_seed

HELDOUT = 9_100  # source clips for concept edits: a seed range no model trained on
KEYS = ("cqt1_pcc", "chroma", "concept_distance", "concept_presence", "lpaps", "lpaps_target", "seconds")


def source_seed(concept: str) -> int:
    """The held-out source clips edited towards ``concept`` (each bundled concept has its own)."""
    from musicprobe.synth.concepts import CONCEPTS

    names = list(CONCEPTS)
    return clip_seed(HELDOUT, names.index(concept) if concept in names else len(names))


def method_grid(quick: bool = False) -> dict[str, tuple[str, dict]]:
    """Label -> (kind, config overrides). ``quick`` shortens the DDS runs and the DDIM walks alike."""
    it = {"steps": 40} if quick else {}
    ddim = {"strength": 0.6, "steps": 20 if quick else 50}
    return {
        "Textual inversion": ("ti", ddim),
        "DreamSound": ("dreamsound", ddim),
        "SteerMusic (text)": ("text", {**TEXT_DDS, **it}),
        "SteerMusic+ PDS": ("plus", {"lam": 0.0, "pcon_weight": 0.0, **it}),
        "SteerMusic+ PDS + reg": ("plus", {"pcon_weight": 0.0, **it}),
        "SteerMusic+ (PDS + reg + PCon)": ("plus", {**it}),
    }


# SteerMusic with a text target on the same loop settings as SteerMusic+'s defaults, so that only the target
# branch's model and prompt differ
TEXT_DDS = {"lr": 0.01, "source_guidance": 15.0, "target_guidance": 15.0, "x0_clip": False}


def make_editor(kind: str, overrides: dict, base: Any, concept: Any, clap: Any, step: int | None = None):
    """The editor of one method on ``concept`` (a :class:`~musicprobe.zoo.personalize.PersonalConcept`)."""
    from musicprobe.editors.dreamsound import DreamSoundConfig, DreamSoundEdit
    from musicprobe.editors.steermusic import SteerMusic, SteerMusicConfig
    from musicprobe.editors.steermusic_plus import SteerMusicPlus, SteerMusicPlusConfig

    if kind == "ti":
        return DreamSoundEdit(base, concept.token_model(), DreamSoundConfig(**overrides), clap=clap, method="ti")
    if kind == "dreamsound":
        return DreamSoundEdit(base, concept.model(step), DreamSoundConfig(**overrides), clap=clap)
    if kind == "text":
        return SteerMusic(base, SteerMusicConfig(**overrides), clap=clap)
    return SteerMusicPlus(base, concept.model(step), SteerMusicPlusConfig(**overrides), clap=clap)


def run_one(editor: Any, kind: str, e: Any, refs: Any, clap: Any, judge: Any = None) -> tuple[dict, np.ndarray]:
    """One edit of concept edit ``e``; its metrics (and the edited audio). ``judge``: the concept's
    :class:`~musicprobe.metrics.concept_judge.ConceptJudge` (adds ``concept_presence``)."""
    from musicprobe.metrics.clap import concept_distance
    from musicprobe.metrics.perceptual import lpaps

    src, tgt, sr = e.pair.source.audio, e.pair.target.audio, e.pair.source.sr
    t0 = time.perf_counter()
    if kind == "text":
        res = editor.edit(src, e.source_prompt, e.text_prompt, sr=sr, reference=tgt)
    elif kind == "plus":
        res = editor.edit_concept(src, e.source_prompt, e.concept_prompt, e.class_prompt, sr=sr, reference=tgt)
    else:
        res = editor.edit(src, e.source_prompt, e.concept_prompt, sr=sr, reference=tgt)
    m = dict(res.metrics, seconds=time.perf_counter() - t0)
    n = len(res.edited)
    m["concept_distance"] = float(concept_distance(clap, res.edited, res.sr, refs.audio, refs.sr))
    m["lpaps"] = float(lpaps(clap, res.source, res.edited, res.sr))
    m["lpaps_target"] = float(lpaps(clap, tgt[:n], res.edited, res.sr))
    if judge is not None:
        m["concept_presence"] = float(judge.probability(res.edited, res.sr))
    bytes_ = getattr(res.trace, "graph_bytes", None)
    if bytes_ and any(bytes_):
        m["pcon_graph_mb"] = float(np.mean(bytes_)) / 2**20
    return m, res.edited


def _mean(rows: list[dict]) -> dict:
    keys = sorted({k for r in rows for k in r if isinstance(r[k], float)})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def steermusic_plus_comparison(
    concepts: tuple[str, ...] = ("lute", "marimba"),
    n_sources: int = 8,
    quick: bool = False,
    sweep_sources: int = 2,
    lams: tuple[float, ...] = (-0.5, 0.5),
    finetune_steps: tuple[int, ...] = (50, 200),
    methods: dict | None = None,
    progress: bool = True,
    base: Any = None,
    clap: Any = None,
    save_edits: str | Path | None = None,
) -> dict:
    """The comparison table, the lam sweep and the fine-tuning-steps sweep (see the module docstring).

    ``save_edits``: a folder that receives ``<concept>.npz`` per concept (each source, its true target and every
    edit, keyed ``"<i>|<label>"``), so that edits can be judged again later without re-running them."""
    from tqdm.auto import tqdm

    from musicprobe.metrics.clap import fad
    from musicprobe.metrics.concept_judge import concept_judge, judge_report
    from musicprobe.synth.concepts import concept_edits
    from musicprobe.zoo import load, load_concept

    base, clap = base or load("mini-ldm"), clap or load("mini-clap")
    methods = methods or method_grid(quick)
    rows: dict[str, list[dict]] = defaultdict(list)
    edits: dict[str, list[np.ndarray]] = defaultdict(list)
    targets: list[np.ndarray] = []
    lam_rows: dict[float, list[dict]] = defaultdict(list)
    step_rows: dict[str, list[dict]] = defaultdict(list)
    judges: dict[str, dict] = {}
    it = {"steps": 40} if quick else {}
    for name in concepts:
        concept = load_concept(name, base)
        refs = concept.reference()
        pairs = concept_edits(name, n_sources, seed=source_seed(name))
        judge = concept_judge(clap, refs.audio, refs.sr, name)
        judges[name] = judge_report(judge, [e.pair.target.audio for e in pairs], [e.pair.source.audio for e in pairs],
                                    base.sr)
        kept: dict[str, np.ndarray] = {}
        for i, e in enumerate(tqdm(pairs, desc=f"{name} sources", disable=not progress)):
            targets.append(e.pair.target.audio)
            kept[f"{i}|source"], kept[f"{i}|target"] = e.pair.source.audio, e.pair.target.audio
            for label, (kind, overrides) in methods.items():
                m, audio = run_one(make_editor(kind, overrides, base, concept, clap), kind, e, refs, clap, judge)
                rows[label].append(m)
                edits[label].append(audio)
                kept[f"{i}|{label}"] = audio
        for i, e in enumerate(pairs[:sweep_sources]):
            for lam in lams:
                ed = make_editor("plus", {"lam": lam, "pcon_weight": 0.0, **it}, base, concept, clap)
                m, kept[f"{i}|lam {lam}"] = run_one(ed, "plus", e, refs, clap, judge)
                lam_rows[lam].append(m)
            for step in finetune_steps:
                for label, kind in (("SteerMusic+ PDS + reg", "plus"), ("DreamSound", "dreamsound")):
                    ed = make_editor(kind, dict(methods[label][1]), base, concept, clap, step)
                    m, kept[f"{i}|{label} @ {step}"] = run_one(ed, kind, e, refs, clap, judge)
                    step_rows[f"{label} @ {step}"].append(m)
        if save_edits is not None:
            Path(save_edits).mkdir(parents=True, exist_ok=True)
            np.savez_compressed(Path(save_edits) / f"{name}.npz", sr=np.array(base.sr), **kept)
    n = min(len(a) for v in edits.values() for a in v)
    table = {label: _mean(rs) for label, rs in rows.items()}
    for label in table:
        table[label]["fad_to_targets"] = (fad(clap, [t[:n] for t in targets], [a[:n] for a in edits[label]],
                                              base.sr)["fad"] if len(targets) > 1 else None)
    spread = {label: {k: float(np.std([r[k] for r in rs])) for k in KEYS} for label, rs in rows.items()}
    lam_table = {str(k): _mean(v) for k, v in lam_rows.items()}
    step_table = {k: _mean(v) for k, v in step_rows.items()}
    return {
        "concepts": list(concepts),
        "n_sources": n_sources,
        "methods": {k: v[1] for k, v in methods.items()},
        "table": table,
        "std": spread,
        "paired": paired_differences(rows),
        "lam_sweep": lam_table,
        "finetune_steps": step_table,
        "paper_direction": verdict(table, lam_table, step_table),
        "concept_judge": judges,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "models": {"mini-ldm": base.meta.get("train_steps"), "decoder": base.codec.decoder},
    }


# DDS settings from mini-LDM's defaults to ones that edit hard (the reference's lr is 0.02 with 400 iterations)
STRENGTHS: dict[str, dict] = {
    "defaults": {},
    "lr 0.02": {"lr": 0.02},
    "lr 0.02, 200 iterations": {"lr": 0.02, "steps": 200},
    "lr 0.04": {"lr": 0.04},
}


# the methods the strength sweep compares: the paper's PDS, the ablation with phi' on both branches, and text DDS
SWEPT = (("plus", "SteerMusic+ PDS", {"lam": 0.0, "pcon_weight": 0.0}),
         ("plus", "SteerMusic+ DDS in phi'", {"lam": 0.0, "pcon_weight": 0.0, "source_model": "personal"}),
         ("text", "SteerMusic (text)", TEXT_DDS))


def strength_sweep(concept_name: str, n_sources: int = 2, strengths: dict[str, dict] | None = None,
                   base: Any = None, clap: Any = None) -> dict:
    """SteerMusic+ (PDS, and the ablation with the concept model on both branches) and SteerMusic (text) at
    increasing edit strength on the first ``n_sources`` sources: where, if anywhere, the concept judge starts to hear
    the concept, and what structure is left then."""
    from musicprobe.metrics.concept_judge import concept_judge
    from musicprobe.synth.concepts import concept_edits
    from musicprobe.zoo import load, load_concept

    base, clap = base or load("mini-ldm"), clap or load("mini-clap")
    concept = load_concept(concept_name, base)
    refs = concept.reference()
    judge = concept_judge(clap, refs.audio, refs.sr, concept_name)
    pairs = concept_edits(concept_name, n_sources, seed=source_seed(concept_name))
    out: dict[str, dict] = {}
    for label, overrides in (strengths or STRENGTHS).items():
        for kind, name, fixed in SWEPT:
            ed = make_editor(kind, {**fixed, **overrides}, base, concept, clap)
            out[f"{name}, {label}"] = _mean([run_one(ed, kind, e, refs, clap, judge)[0] for e in pairs])
    return out


FULL = "SteerMusic+ (PDS + reg + PCon)"


def paired_differences(rows: dict[str, list[dict]]) -> dict:
    """Per-edit differences of the full SteerMusic+ against each baseline (mean and standard deviation): the
    spread the direction tests take their margins from."""
    out = {}
    full = rows.get(FULL)
    if not full:
        return out
    for label, rs in rows.items():
        if label == FULL:
            continue
        for key in ("cqt1_pcc", "concept_distance", "concept_presence"):
            if not all(key in r for r in (*full, *rs)):
                continue
            d = np.array([a[key] - b[key] for a, b in zip(full, rs)])
            out[f"{key}: SteerMusic+ - {label}"] = {"mean": float(d.mean()), "std": float(d.std())}
    return out


def verdict(table: dict, lams: dict, steps: dict) -> dict:
    """The paper's directions on the measured tables (absent rows give no verdict)."""
    out = {}
    full = table.get(FULL)
    if full:
        for base in ("DreamSound", "Textual inversion"):
            if base in table:
                out[f"SteerMusic+ keeps more structure than {base} (CQT-1 PCC)"] = (
                    full["cqt1_pcc"] > table[base]["cqt1_pcc"])
        if "SteerMusic (text)" in table:
            for judge, key, sign in JUDGES:
                if key in full and key in table["SteerMusic (text)"]:
                    out[f"SteerMusic+ sounds more like the concept than SteerMusic (text) ({judge})"] = (
                        sign * full[key] > sign * table["SteerMusic (text)"][key])
    if len(lams) >= 2:
        ks = sorted(lams, key=float)
        lo, hi = lams[ks[0]], lams[ks[-1]]
        out["lam < 0 keeps more structure than lam > 0"] = lo["cqt1_pcc"] > hi["cqt1_pcc"]
        for judge, key, sign in JUDGES:
            if key in lo and key in hi:
                out[f"lam > 0 moves nearer the concept than lam < 0 ({judge})"] = sign * hi[key] > sign * lo[key]
    for label in ("SteerMusic+ PDS + reg", "DreamSound"):
        got = sorted((int(k.rsplit("@ ", 1)[1]), v) for k, v in steps.items() if k.startswith(label + " @"))
        if len(got) >= 2:
            few, many = got[0][1], got[-1][1]
            for judge, key, sign in JUDGES:
                if key in few and key in many:
                    out[f"{label}: more fine-tuning, nearer the concept ({judge})"] = sign * many[key] > sign * few[key]
            out[f"{label}: more fine-tuning, less structure"] = many["cqt1_pcc"] < few["cqt1_pcc"]
    return out


# the two judges of "sounds like the concept": (name, metric key, +1 if higher is nearer the concept)
JUDGES = (("CDPAM stand-in", "concept_distance", -1), ("concept judge", "concept_presence", +1))


def rescore_saved(folder: str | Path, concept: str, clap: Any = None) -> dict:
    """Judge the edits a run saved (``save_edits``) for bundled ``concept`` again with the concept judge: mean
    ``concept_presence`` per method and sweep entry, with the judge's own report on the run's true targets and
    sources."""
    from musicprobe.metrics.concept_judge import concept_judge, judge_report
    from musicprobe.zoo import load
    from musicprobe.zoo.personalize import ConceptSet

    z = np.load(Path(folder) / f"{concept}.npz")
    sr = int(z["sr"])
    clap = clap or load("mini-clap")
    refs = ConceptSet.synthetic(concept)
    judge = concept_judge(clap, refs.audio, refs.sr, concept)
    by_label: dict[str, list[float]] = defaultdict(list)
    for key in z.files:
        if "|" in key:
            by_label[key.split("|", 1)[1]].append(float(judge.probability(z[key], sr)))
    n = len(by_label.get("source", []))
    report = judge_report(judge, [z[f"{i}|target"] for i in range(n)], [z[f"{i}|source"] for i in range(n)], sr)
    means = {k: float(np.mean(v)) for k, v in by_label.items()}
    return {"concept": concept, "judge": report, "concept_presence": means, "per_edit": dict(by_label)}
