"""Quality of the zoo models, as measured by ``musicprobe bench zoo`` (bars from the zoo issue).

- mini-CLAP on held-out clips: text->audio retrieval top-1 (query: a clip's caption; correct when the retrieved
  clip has the same instrument / genre) and zero-shot classification (prompt ensembles);
- adherence of mini-flux (Euler), mini-SAO (DPM-Solver++ on its sigma grid), mini-LDM (DDIM) and mini-MusicGen
  (top-k 250, CFG 3, batches of 16 prompts): generated clips
  classified by mini-CLAP against the prompted instrument and genre;
- novelty: nearest-neighbour log-mel distance of generated clips to the training corpus, against the same
  distance for held-out real clips (generated clips should not sit closer to training clips than new real ones);
- inversion: RF-Solver vs Euler (and DPM-Solver++ on mini-SAO) reconstruction of held-out clips at equal model
  evaluations; DDIM on mini-LDM.
"""

from __future__ import annotations

import time
from itertools import product

import numpy as np
import torch

from musicprobe.inversion import generate_latents
from musicprobe.metrics.clap import class_embeddings, label_space
from musicprobe.zoo.corpus import MelCorpus

BARS = {
    "clap_retrieval_lead": 0.9,
    "clap_retrieval_genre": 0.8,
    "adherence_lead": 0.85,
    "adherence_genre": 0.7,
    "rf_over_euler_mel_mse": 0.5,
}


# the zoo models beside mini-flux: sampler steps for adherence (None: a token model), the key of their inversion
# rows (None: no inversion) and the guidance they generate with
OTHER_MODELS = {
    "mini-sao": (25, "inversion", 4.0),
    "mini-ldm": (50, "ddim_inversion", 4.0),
    "mini-musicgen": (None, None, 3.0),
}
OTHER_BARS = {"adherence_lead": 0.80, "adherence_genre": 0.70}  # the epsilon/token-family and mini-SAO goals


def _std_mels(clap, corpus: MelCorpus) -> np.ndarray:
    c = clap.config.codec
    return (corpus.mels.astype(np.float32) - c.mel_mean) / c.mel_std


def clap_quality(clap, corpus: MelCorpus) -> dict[str, float]:
    a = clap.embed_mel(_std_mels(clap, corpus))
    t = clap.embed_text([caps[0] for caps in corpus.captions])
    top = (t @ a.T).argmax(-1).numpy()
    out = {}
    for field in ("lead", "genre", "mood"):
        lab = np.array(corpus.labels[field])
        out[f"clap_retrieval_{field}"] = float(np.mean(lab[top] == lab))
        values, cls = class_embeddings(clap, field)
        pred = np.array(values)[(a @ cls.T).argmax(-1).numpy()]
        out[f"clap_zeroshot_{field}"] = float(np.mean(pred == lab))
    return out


def prompt_grid(n: int) -> list[tuple[str, str, str, str]]:
    """``n`` (prompt, lead, genre, mood) covering every valid lead x genre pair, moods cycling."""
    from musicprobe.synth.genres import GENRES

    pairs = [(lead, g) for g, spec in GENRES.items() for lead in spec.lead_choices]
    moods = label_space()["mood"]
    out = []
    for i, ((lead, genre), k) in enumerate(product(pairs, range((n + len(pairs) - 1) // len(pairs)))):
        mood = moods[(i + k) % len(moods)]
        out.append((f"a {mood} {genre} piece with {lead} playing the melody", lead, genre, mood))
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(out))[:n]
    return [out[i] for i in sorted(idx)]


def nn_distance(queries: np.ndarray, bank: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Mean-squared distance from each query to its nearest neighbour in ``bank`` (rows flattened)."""
    q = torch.as_tensor(queries.reshape(len(queries), -1), dtype=torch.float32)
    b = torch.as_tensor(bank.reshape(len(bank), -1), dtype=torch.float32)
    out = []
    for i in range(0, len(q), chunk):
        out.append(torch.cdist(q[i : i + chunk], b).min(-1).values ** 2 / q.shape[1])
    return torch.cat(out).numpy()


def generation_quality(
    model,
    clap,
    train: MelCorpus,
    held: MelCorpus,
    n_gen: int = 64,
    steps: int | None = 25,
    guidance: float = 4.0,
    decode: bool = True,
) -> dict[str, float]:
    """Adherence and novelty of ``n_gen`` generated clips of a zoo model (mini-flux: Euler, mini-LDM: DDIM,
    mini-SAO: DPM-Solver++, mini-MusicGen: top-k sampling)."""
    grid = prompt_grid(n_gen)
    t0 = time.perf_counter()
    lat = generated(model, [g[0] for g in grid], steps=steps, guidance=guidance)
    gen_secs = (time.perf_counter() - t0) / len(grid)
    c = model.config.codec
    mels = (np.stack([model.log_mel(x[None]) for x in lat]) - c.mel_mean) / c.mel_std
    # decode=True is the honest setting: score the audio a user hears, re-analysed by mini-CLAP
    emb = clap.embed_audio([model.decode(x[None]) for x in lat], model.sr) if decode else clap.embed_mel(mels)
    out = {"n_generated": len(grid), "gen_seconds_per_clip": gen_secs}
    for field, k in (("lead", 1), ("genre", 2)):
        values, cls = class_embeddings(clap, field)
        pred = np.array(values)[(emb @ cls.T).argmax(-1).numpy()]
        out[f"adherence_{field}"] = float(np.mean(pred == np.array([g[k] for g in grid])))
    bank = (train.mels.astype(np.float32) - c.mel_mean) / c.mel_std
    held_m = (held.mels[: len(grid)].astype(np.float32) - c.mel_mean) / c.mel_std
    d_gen, d_held = nn_distance(mels, bank), nn_distance(held_m, bank)
    out["nn_dist_generated_median"] = float(np.median(d_gen))
    out["nn_dist_heldout_median"] = float(np.median(d_held))
    out["frac_generated_closer_than_heldout_p5"] = float(np.mean(d_gen < np.percentile(d_held, 5)))
    return out


def generated(model, prompts: list[str], steps: int | None, guidance: float, batch: int = 16) -> torch.Tensor:
    """Latents (diffusion models: seeds 0..n-1, ``steps`` of the model's sampler) or codes (token models: batches
    of ``batch`` prompts, seed = the batch index) of ``prompts``, one row each."""
    from musicprobe.models.protocols import family_of

    if family_of(model) != "token":
        return generate_latents(model, prompts, list(range(len(prompts))), steps=steps, guidance=guidance)
    parts = [model.generate(prompts[i : i + batch], seed=i // batch, guidance=guidance)
             for i in range(0, len(prompts), batch)]
    return torch.cat(parts)


def inversion_quality(model, held: MelCorpus, n: int = 8, budgets: tuple[int, ...] = (10, 20, 50)) -> dict:
    """Reconstruction log-mel MSE of held-out clips. Flow models: Euler vs RF-Solver at equal model evaluations
    (``budgets`` per direction); epsilon models: DDIM at ``budgets`` steps."""
    from musicprobe.inversion import reconstruct, solvers_for

    c = model.config.codec
    flow = "euler" in solvers_for(model)
    solvers = (("euler", 1), ("rf-solver", 2)) if flow else (("ddim", 1),)
    if getattr(model, "default_solver", None) == "dpmpp-2m":
        solvers += (("dpmpp-2m", 1),)  # mini-SAO: its own sampler beside the flow solvers
    rows = []
    for i in range(n):
        mel = (held.mels[i].astype(np.float32) - c.mel_mean) / c.mel_std
        x0 = model.codec.mel_to_tokens(mel)[None] if flow else model.mel_to_latent(mel)[None]
        prompt = held.captions[i][0]
        for nfe in budgets:
            for solver, per in solvers:
                tr = reconstruct(model, latent=x0, prompt=prompt, solver=solver, steps=nfe // per)
                rows.append({"clip": i, "solver": solver, "nfe": nfe, "mel_mse": tr.metrics["mel_mse"]})
    out: dict = {"rows": rows}
    for nfe in budgets:
        means = {s: float(np.mean([r["mel_mse"] for r in rows if r["nfe"] == nfe and r["solver"] == s]))
                 for s, _ in solvers}
        out[f"nfe{nfe}"] = {f"{s.replace('-', '_')}_mel_mse": v for s, v in means.items()}
        if flow:
            out[f"nfe{nfe}"]["ratio"] = means["rf-solver"] / means["euler"]
    if flow:
        out["rf_over_euler_mel_mse"] = max(out[f"nfe{n}"]["ratio"] for n in budgets)
    return out


def zoo_report(n_gen: int = 64, n_heldout: int = 256, n_inversion: int = 8, quick: bool = False) -> dict:
    """Everything above with pass/fail against :data:`BARS`."""
    from musicprobe.zoo import available, load
    from musicprobe.zoo.corpus import TRAIN_SEED, cached_corpus
    from musicprobe.zoo.recipes import heldout

    mf, clap = load("mini-flux"), load("mini-clap")
    held = heldout(n_heldout)
    train = cached_corpus(mf.meta.get("corpus_clips", 2400), mf.meta.get("corpus_seed", TRAIN_SEED), workers=2)
    budgets = (10, 20) if quick else (10, 20, 50)
    res: dict = {"mini-clap": clap_quality(clap, held), "models": {"mini-flux": mf.meta, "mini-clap": clap.meta}}
    res["mini-flux"] = generation_quality(mf, clap, train, held, n_gen=n_gen)
    res["inversion"] = inversion_quality(mf, held, n=n_inversion, budgets=budgets)
    others = [name for name in OTHER_MODELS if available().get(name)]
    for name in others:
        steps, inversion_key, guidance = OTHER_MODELS[name]
        model = load(name)
        res[name] = generation_quality(model, clap, train, held, n_gen=n_gen, steps=steps, guidance=guidance)
        if inversion_key:
            res[name][inversion_key] = inversion_quality(model, held, n=n_inversion, budgets=budgets)
        res["models"][name] = model.meta
    flat = {**res["mini-clap"], **res["mini-flux"], "rf_over_euler_mel_mse": res["inversion"]["rf_over_euler_mel_mse"]}
    res["bars"] = {
        k: {
            "value": round(flat[k], 4),
            "bar": b,
            "pass": bool(flat[k] <= b) if k == "rf_over_euler_mel_mse" else bool(flat[k] >= b),
        }
        for k, b in BARS.items()
    }
    res["bars"]["not_copies"] = {
        "value": round(flat["nn_dist_generated_median"], 4),
        "bar": round(flat["nn_dist_heldout_median"], 4),
        "pass": flat["nn_dist_generated_median"] >= flat["nn_dist_heldout_median"],
    }
    for name in others:
        row = res[name]
        for key, bar in OTHER_BARS.items():
            res["bars"][f"{name} {key}"] = {"value": round(row[key], 4), "bar": bar, "pass": row[key] >= bar}
        d_gen, d_held = row["nn_dist_generated_median"], row["nn_dist_heldout_median"]
        res["bars"][f"{name} not_copies"] = {"value": round(d_gen, 4), "bar": round(d_held, 4), "pass": d_gen >= d_held}
    return res
