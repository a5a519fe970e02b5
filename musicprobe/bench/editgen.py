"""EditGen on mini-MusicGen (the paper's comparison on our corpus): no control vs replace / refine / reweight with
hard and with soft blending, on prompt pairs built from the corpus's caption template.

Each pair edits one word of ``"a {mood} {genre} piece with {lead} playing the melody"`` (instrument, genre and
mood pairs), or keeps the prompt and reweights its instrument word by 2 (reweight pairs). Per condition: CLAP
text-to-audio (to the target prompt) and audio-to-audio (to the source generation), melody accuracy, dynamics
(onset-strength correlation; RMS as the second view), rhythm (beat F1 at 70 ms) and seconds per edit.

The paper's directions: soft blending is at least as good as hard on both CLAP scores (0.849 vs 0.836 text-audio,
0.414 vs 0.400 audio-audio), and controlled edits keep melody, dynamics and rhythm better than re-generating the
target prompt with the same seed.

"Same seed" is run both ways (``row_noise``): ``shared``, ours (every row draws with the same Gumbel noise, so the
re-generation already shares the source's tokens wherever the two prompts agree), and ``independent``, the
reference code's (each row of the batch its own draw: only the attention control links an edit to its source).
Per coupling the result holds the mean table, the per-condition spread and the per-pair differences of the
controlled edits from the re-generation (``paired``: mean and standard deviation over the word-swap pairs).

The paper's own comparison is with Prompt-to-Prompt in a text-to-audio diffusion model (Auffusion). With
``diffusion=True`` the same pairs run through :class:`~musicprobe.editors.p2p_diffusion.DiffusionP2P` on mini-LDM
(no control / replace / refine; reweight pairs: reweight), under ``diffusion`` in the result, with the paper's
verdict: EditGen (replace, soft) keeps melody, dynamics and rhythm better than the diffusion baseline (replace).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

KEYS = ("clap_target", "clap_audio", "melody_acc", "dynamics_onset", "dynamics_rms", "rhythm_f1", "chroma",
        "seconds")
LEADS = ("piano", "guitar", "flute", "violin", "trumpet", "organ")  # one-word lead instruments
KINDS = ("instrument", "genre", "mood", "reweight")
TEMPLATE = "a {mood} {genre} piece with {lead} playing the melody"


@dataclass(frozen=True)
class PromptPair:
    kind: str
    source: str
    target: str
    word: str = ""  # reweight: the word scaled
    seed: int = 0


def prompt_pairs(n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[PromptPair]:
    """``n`` prompt pairs cycling through ``kinds``, each with its own generation seed (reproducible)."""
    from musicprobe.synth import GENRES, MOODS
    from musicprobe.synth.genres import MOOD_OPPOSITE

    rng = np.random.default_rng(seed)
    genres = [g for g in GENRES if g != "waltz"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        f = {"mood": str(rng.choice(list(MOODS))), "genre": str(rng.choice(genres)), "lead": str(rng.choice(LEADS))}
        src = TEMPLATE.format(**f)
        if kind == "instrument":
            tgt = TEMPLATE.format(**{**f, "lead": str(rng.choice([x for x in LEADS if x != f["lead"]]))})
        elif kind == "genre":
            tgt = TEMPLATE.format(**{**f, "genre": str(rng.choice([g for g in genres if g != f["genre"]]))})
        elif kind == "mood":
            tgt = TEMPLATE.format(**{**f, "mood": MOOD_OPPOSITE[f["mood"]]})
        else:
            tgt = src
        out.append(PromptPair(kind, src, tgt, f["lead"] if kind == "reweight" else "", seed=1000 + i))
    return out


def conditions(kind: str) -> dict[str, dict]:
    """Condition label -> EditGenConfig overrides for a pair of ``kind``."""
    if kind == "reweight":
        return {f"reweight {b}": {"mode": "reweight", "blending": b, "weight": 2.0} for b in ("soft", "hard")}
    grid = {"no control": {"mode": "none"}}
    for mode in ("replace", "refine"):
        for b in ("soft", "hard"):
            grid[f"{mode} {b}"] = {"mode": mode, "blending": b}
    return grid


ROW_NOISES = ("shared", "independent")
PRESERVATION = ("melody_acc", "dynamics_onset", "rhythm_f1", "chroma")


def diffusion_conditions(kind: str) -> dict[str, dict]:
    """Condition label -> DiffusionP2PConfig overrides for a pair of ``kind`` (the paper's diffusion baseline)."""
    if kind == "reweight":
        return {"diffusion reweight": {"mode": "reweight", "weight": 2.0}}
    return {f"diffusion {m}": {"mode": m} for m in ("none", "replace", "refine")}


def editgen_comparison(n_pairs: int = 16, model=None, clap=None, progress: bool = True,
                       frames: int | None = None, row_noise: tuple[str, ...] = ("shared",),
                       diffusion: bool = False, diffusion_steps: int = 50) -> dict:
    """Mean metrics per condition over ``n_pairs`` prompt pairs (word-swap pairs and reweight pairs apart), for each
    sampling coupling in ``row_noise``; the first coupling's table is also the top-level ``table``. ``diffusion``
    adds the paper's baseline, Prompt-to-Prompt on mini-LDM (``diffusion_steps`` DDIM steps)."""
    from tqdm.auto import tqdm

    from musicprobe.editors.editgen import EditGen, EditGenConfig
    from musicprobe.errors import check_known
    from musicprobe.zoo import load

    for rn in row_noise:
        check_known("row_noise", rn, ROW_NOISES)
    mg, clap = model or load("mini-musicgen"), clap or load("mini-clap")
    editor = EditGen(mg, clap=clap)
    rows: dict[str, dict[str, list[dict]]] = {rn: defaultdict(list) for rn in row_noise}
    baseline = _diffusion_editor(clap) if diffusion else None
    drows: dict[str, list[dict]] = defaultdict(list)
    for pair in tqdm(prompt_pairs(n_pairs), desc="editgen pairs", disable=not progress):
        if baseline is not None:
            for label, over in diffusion_conditions(pair.kind).items():
                cfg = baseline.config.replace(seed=pair.seed, word=pair.word, steps=diffusion_steps, **over)
                t0 = time.perf_counter()
                res = baseline.edit_prompts(pair.source, pair.target, config=cfg)
                drows[label].append(dict(res.metrics, seconds=time.perf_counter() - t0, kind=pair.kind))
        for rn in row_noise:
            for label, over in conditions(pair.kind).items():
                cfg = EditGenConfig(seed=pair.seed, word=pair.word, frames=frames, row_noise=rn, **over)
                t0 = time.perf_counter()
                res = editor.edit_prompts(pair.source, pair.target, config=cfg)
                rows[rn][label].append(dict(res.metrics, seconds=time.perf_counter() - t0, kind=pair.kind))
    by_noise = {rn: summarise(r) for rn, r in rows.items()}
    first = by_noise[row_noise[0]]
    out = {"n_pairs": n_pairs, "pairs_per_kind": _count(rows[row_noise[0]]), "row_noise": row_noise[0], **first,
           "by_row_noise": by_noise}
    if baseline is not None:
        out["diffusion"] = diffusion_summary(drows, rows[row_noise[0]])
    return out


def _diffusion_editor(clap):
    from musicprobe.editors.p2p_diffusion import DiffusionP2P
    from musicprobe.zoo import load

    return DiffusionP2P(load("mini-ldm"), clap=clap)


def diffusion_summary(drows: dict[str, list[dict]], erows: dict[str, list[dict]]) -> dict:
    """The diffusion baseline's table and spread, its controlled edits' per-pair differences from its own
    re-generation, EditGen's (replace, soft) per-pair differences from it, and the verdicts."""
    from musicprobe.bench.paired import paired_difference

    table = {label: {k: float(np.nanmean([r[k] for r in rs])) for k in KEYS} for label, rs in drows.items()}
    spread = {label: {k: float(np.nanstd([r[k] for r in rs])) for k in KEYS} for label, rs in drows.items()}
    base = drows.get("diffusion none", [])
    paired = {label: paired_difference(rs, base, PRESERVATION) for label, rs in drows.items()
              if label in ("diffusion replace", "diffusion refine")}
    editgen = {"replace soft - diffusion replace": paired_difference(erows.get("replace soft", []),
                                                                     drows.get("diffusion replace", []),
                                                                     PRESERVATION)}
    return {"table": table, "spread": spread, "paired": paired, "editgen_minus_diffusion": editgen,
            "verdict": diffusion_verdict(table, erows)}


def diffusion_verdict(dtable: dict[str, dict], erows: dict[str, list[dict]]) -> dict[str, bool]:
    """The paper's comparison (EditGen's replace, soft blending, against the diffusion baseline's replace) and the
    issue's direction read on the diffusion baseline itself (its replace against its re-generation)."""
    out = {}
    theirs, own = dtable.get("diffusion replace"), dtable.get("diffusion none")
    ours = erows.get("replace soft")
    for key in ("melody_acc", "dynamics_onset", "rhythm_f1"):
        if theirs and ours:
            mean = float(np.nanmean([r[key] for r in ours]))
            out[f"EditGen replace soft keeps {key} better than diffusion P2P replace"] = bool(mean > theirs[key])
        if theirs and own:
            out[f"diffusion P2P replace keeps {key} better than its no control"] = bool(theirs[key] > own[key])
    return out


def summarise(rows: dict[str, list[dict]]) -> dict:
    """Table (means), spread (standard deviations), paired differences from no control, verdict of one coupling."""
    table = {label: {k: float(np.nanmean([r[k] for r in rs])) for k in KEYS} for label, rs in rows.items()}
    spread = {label: {k: float(np.nanstd([r[k] for r in rs])) for k in KEYS} for label, rs in rows.items()}
    return {"table": table, "spread": spread, "paired": paired_differences(rows), "verdict": verdict(table)}


def paired_differences(rows: dict[str, list[dict]]) -> dict[str, dict[str, list[float]]]:
    """Per controlled word-swap condition and preservation metric: ``[mean, sd, n]`` of (condition - no control)
    over the pairs (the same source generation)."""
    from musicprobe.bench.paired import paired_difference

    base = rows.get("no control", [])
    return {label: paired_difference(rs, base, PRESERVATION) for label, rs in rows.items()
            if label != "no control" and not label.startswith("reweight") and len(rs) == len(base)}


def _count(rows: dict[str, list[dict]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for label in ("no control", "reweight soft"):
        for r in rows.get(label, []):
            out[r["kind"]] += 1
    return dict(out)


def verdict(table: dict[str, dict]) -> dict[str, bool]:
    """The paper's directions on a comparison table (word-swap conditions)."""
    out = {}
    for key, what in (("clap_target", "text-to-audio"), ("clap_audio", "audio-to-audio")):
        soft = np.mean([table[f"{m} soft"][key] for m in ("replace", "refine") if f"{m} soft" in table])
        hard = np.mean([table[f"{m} hard"][key] for m in ("replace", "refine") if f"{m} hard" in table])
        out[f"soft >= hard on {what} CLAP"] = bool(soft >= hard)
    base = table.get("no control")
    if base:
        for key in ("melody_acc", "dynamics_onset", "rhythm_f1"):
            out[f"replace soft keeps {key} better than no control"] = bool(table["replace soft"][key] > base[key])
    return out
