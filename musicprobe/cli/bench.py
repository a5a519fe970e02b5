"""``musicprobe bench ...``: speed and quality measurements (never timed assertions in tests)."""

from __future__ import annotations

import inspect
import os
import tempfile
import time

from musicprobe.errors import ConfigError, check_known


def bench_synth(n: int = 40, workers: int | None = None) -> dict:
    """Clips of 5 s rendered and written per second, single process and with ``workers`` processes."""
    from musicprobe.synth import write_corpus

    workers = workers or os.cpu_count() or 1
    out: dict = {"clip_seconds": 5.0, "n": n}
    for w in sorted({1, workers}):
        with tempfile.TemporaryDirectory() as d:
            write_corpus(d, 2, seed=1)  # warm caches (wavetables, imports)
            t = time.perf_counter()
            write_corpus(d, n, seed=0, workers=w)
            dt = time.perf_counter() - t
        out[f"clips_per_s_workers{w}"] = round(n / dt, 2)
    return out


def bench_metrics(repeats: int = 3) -> dict:
    """Seconds per full ``compare`` of two 5 s clips (after warm-up)."""
    from musicprobe.metrics import compare
    from musicprobe.synth import instrument_edit, make_clip

    pair = instrument_edit(make_clip(3, genre="pop", lead="piano"), "flute")
    compare(pair.source.audio, pair.target.audio)
    t = time.perf_counter()
    for _ in range(repeats):
        compare(pair.source.audio, pair.target.audio)
    return {"seconds_per_compare": round((time.perf_counter() - t) / repeats, 3)}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def _hook_targets(with_mini_flux: bool):
    """(name, probe, call(t)) per benchmarked model: the tiny models of every family, then the trained mini-flux
    and mini-SAO (one CFG-doubled call each)."""
    import torch

    from musicprobe.hooks import Probe
    from musicprobe.models import TINY_MODELS, tiny_model

    for name in TINY_MODELS:
        tm = tiny_model(name)
        x = tm.make_inputs("A")

        def call(t: float, tm=tm, x=x):
            xi = dict(x)
            if "timestep" in xi:
                xi["timestep"] = torch.full_like(torch.as_tensor(xi["timestep"], dtype=torch.float32), t)
            return tm(**xi)

        yield name, Probe(tm.model), call
    if with_mini_flux:
        from musicprobe.zoo import load

        for zoo_name in ("mini-flux", "mini-sao"):
            m = load(zoo_name)
            noise, prompt = m.noise(0), m.encode_prompt("a happy pop piece with piano playing the melody")
            yield zoo_name, Probe.for_model(m), lambda t, m=m, noise=noise, prompt=prompt: m.velocity(
                noise, t, prompt, 4.0)


def bench_hooks(repeats: int = 30, steps: int = 10, quick: bool = False) -> dict:
    """Per model: time of (idle hooks on every attention layer) / stock, (pattern capture on two layers) / stock,
    and the bytes a capture of every attention pattern holds with and without reduction over ``steps``."""
    import torch

    torch.set_num_threads(1)
    results = {}
    for name, probe, call in _hook_targets(with_mini_flux=not quick):
        call(1.0)  # warm-up
        stock = _median_time(lambda: call(1.0), repeats)  # noqa: B023
        idle_names = [f"{p}.hook_pattern" for p in probe.points(kind="attention")]
        with probe.capture(idle_names, steps=[10**9]):  # installed everywhere, never fires
            idle = _median_time(lambda: call(1.0), repeats)  # noqa: B023
        with probe.capture(idle_names[:2]):
            cap = _median_time(lambda: call(1.0), repeats)  # noqa: B023
        sizes = {}
        for label, kw in (("raw", {"heads": "all"}), ("reduced", {"heads": "mean", "reduce_steps": True})):
            with probe.capture(idle_names, **kw) as cache:
                for i in range(steps):
                    call(1.0 - i / steps)
            sizes[label] = cache.nbytes
        results[name] = {
            "stock_ms": round(stock * 1e3, 3),
            "idle_ratio": round(idle / stock, 3),
            "capture_2_layers_ratio": round(cap / stock, 3),
            "capture_bytes_raw": sizes["raw"],
            "capture_bytes_reduced": sizes["reduced"],
        }
    return {
        "repeats": repeats,
        "steps": steps,
        "goals": {"idle_ratio": 1.02, "capture_2_layers_ratio": 1.3},
        "models": results,
    }


def bench_zoo(n: int = 128, quick: bool = False) -> dict:
    """Quality bars of the zoo models (see :mod:`musicprobe.bench.zoo`).

    Adherence is judged on ``n`` generated clips (the bar asks for at least 64; 128 halves the sampling error,
    about +-0.03 at 0.85).
    """
    from musicprobe.bench.zoo import zoo_report

    return zoo_report(
        n_gen=16 if quick else n, n_heldout=64 if quick else 256, n_inversion=2 if quick else 8, quick=quick
    )


def bench_inversion(n: int = 4, quick: bool = False, model: str = "mini-flux") -> dict:
    """Reconstruction error of Euler vs RF-Solver (and DPM-Solver++ on mini-sao) at equal model evaluations, on
    ``n`` held-out clips of zoo ``model``."""
    from musicprobe.bench.zoo import inversion_quality
    from musicprobe.zoo import load
    from musicprobe.zoo.recipes import heldout

    budgets = (10, 20) if quick else (10, 20, 50, 100)
    res = inversion_quality(load(model), heldout(64), n=2 if quick else n, budgets=budgets)
    return {"goal": "rf-solver mel MSE <= 0.5 x euler at equal NFE", "model": model, **res}


def bench_musrec(n: int = 16, quick: bool = False) -> dict:
    """MusRec on held-out instrument-edit pairs: none / K / V / K+V x injection steps (see musicprobe.bench)."""
    from musicprobe.bench.musrec import musrec_sweep

    return musrec_sweep(n_pairs=3 if quick else n, inject_steps=(2, 5) if quick else (2, 3, 5, 10))


def bench_musickv(n: int = 16, quick: bool = False, model: str = "mini-flux") -> dict:
    """MusicKV: vital vs random vs all layers on held-out instrument-edit pairs (``model``: mini-flux or mini-sao)."""
    from musicprobe.bench.musickv import musickv_comparison

    return musickv_comparison(n_pairs=3 if quick else n, steps=12 if quick else 25, model=model)


def bench_vocoder(n: int = 64, quick: bool = False) -> dict:
    """Round trip audio -> log-mel -> audio with Griffin-Lim and the mini-vocoder (see musicprobe.bench.vocoder)."""
    from musicprobe.bench.vocoder import vocoder_report

    return vocoder_report(n_heldout=8 if quick else n)


def bench_steermusic(n: int = 16, quick: bool = False) -> dict:
    """SDEdit, DDIM, ZETA and SteerMusic on mini-LDM (see musicprobe.bench.steermusic)."""
    from musicprobe.bench.steermusic import steermusic_comparison

    return steermusic_comparison(n_pairs=2 if quick else n, quick=quick)


def bench_steermusic_plus(n: int = 8, quick: bool = False) -> dict:
    """Textual inversion, DreamSound, SteerMusic (text) and SteerMusic+ step by step on two concepts, with the lam
    and fine-tuning-steps sweeps (see musicprobe.bench.steermusic_plus)."""
    from musicprobe.bench.steermusic_plus import steermusic_plus_comparison, strength_sweep

    if quick:
        return steermusic_plus_comparison(("lute",), n_sources=2, quick=True, sweep_sources=1)
    out = steermusic_plus_comparison(n_sources=n)
    out["strength_sweep"] = {c: strength_sweep(c) for c in out["concepts"]}
    return out


def bench_editgen(n: int = 16, quick: bool = False) -> dict:
    """EditGen on mini-MusicGen: no control vs replace / refine / reweight x soft / hard blending, with our shared
    sampling noise and with the reference's independent rows, and the paper's diffusion baseline (Prompt-to-Prompt on
    mini-LDM; see musicprobe.bench.editgen)."""
    from musicprobe.bench.editgen import ROW_NOISES, editgen_comparison

    return editgen_comparison(n_pairs=4 if quick else n, row_noise=ROW_NOISES, diffusion=True)


def bench_instructme(n: int = 16, quick: bool = False) -> dict:
    """mini-InstructME vs its ablations (no chord, no MSA, null chord) and SDEdit on held-out triplets per
    operation (see musicprobe.bench.instructme)."""
    from musicprobe.bench.instructme import instructme_comparison, long_input, multi_round

    steps = 20 if quick else 25  # the README's table: 16 per operation at 25 steps; --quick = the direction tests
    out = instructme_comparison(per_op=2 if quick else n, steps=steps)
    out["multi_round"] = multi_round(n_chains=2 if quick else 8, steps=steps)
    out["long_input"] = long_input(steps=steps, ops=("add",) if quick else ("add", "remove", "extract", "replace"))
    return out


def bench_backends(quick: bool = False, model: str | None = None) -> dict:
    """One edit per real-pipeline backend on its tiny full pipeline: seconds, peak memory, capture bytes (see
    musicprobe.bench.backends); ``model="KIND:SOURCE"``: that backend at its real architecture, random weights."""
    from musicprobe.bench.backends import backends_report

    return backends_report(("stable-audio", "musicgen") if quick else None, source=model)


BENCHES = {
    "synth": bench_synth,
    "metrics": bench_metrics,
    "hooks": bench_hooks,
    "zoo": bench_zoo,
    "inversion": bench_inversion,
    "musrec": bench_musrec,
    "musickv": bench_musickv,
    "vocoder": bench_vocoder,
    "steermusic": bench_steermusic,
    "steermusic-plus": bench_steermusic_plus,
    "editgen": bench_editgen,
    "instructme": bench_instructme,
    "backends": bench_backends,
}


def run_bench(name: str, **kw) -> dict:
    from musicprobe.editors.base import provenance

    check_known("benchmark", name, BENCHES)
    if "model" in kw and "model" not in inspect.signature(BENCHES[name]).parameters:
        with_model = [b for b, f in BENCHES.items() if "model" in inspect.signature(f).parameters]
        raise ConfigError(f"bench {name} has no --model; benchmarks that take one: {', '.join(with_model)}")
    settings = {k: v for k, v in kw.items() if k != "model"}
    return {"bench": name, "provenance": provenance(**settings), **BENCHES[name](**kw)}
