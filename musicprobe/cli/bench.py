"""``musicprobe bench ...``: speed and quality measurements (never timed assertions in tests)."""

from __future__ import annotations

import os
import tempfile
import time

from musicprobe.errors import check_known


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


def bench_hooks(repeats: int = 30, steps: int = 10) -> dict:
    """Per tiny model: time of (idle hooks on every attention layer) / stock, (pattern capture on two layers) /
    stock, and the bytes a capture of every attention pattern holds with and without reduction over ``steps``."""
    import torch

    from musicprobe.hooks import Probe
    from musicprobe.models import TINY_MODELS, tiny_model

    torch.set_num_threads(1)
    results = {}
    for name in TINY_MODELS:
        tm = tiny_model(name)
        probe = Probe(tm.model)
        x = tm.make_inputs("A")
        tm(**x)  # warm-up
        stock = _median_time(lambda: tm(**x), repeats)  # noqa: B023
        attn = probe.points(kind="attention")
        idle_names = [f"{p}.hook_pattern" for p in attn]
        with probe.capture(idle_names, steps=[10**9]):  # installed everywhere, never fires
            idle = _median_time(lambda: tm(**x), repeats)  # noqa: B023
        with probe.capture(idle_names[:2]):
            cap = _median_time(lambda: tm(**x), repeats)  # noqa: B023
        sizes = {}
        for label, kw in (("raw", {"heads": "all"}), ("reduced", {"heads": "mean", "reduce_steps": True})):
            with probe.capture(idle_names, **kw) as cache:
                for i in range(steps):
                    xi = dict(x)
                    if "timestep" in xi:
                        xi["timestep"] = torch.full_like(
                            torch.as_tensor(xi["timestep"], dtype=torch.float32), 1.0 - i / steps
                        )
                    tm(**xi)
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
    """Quality bars of the zoo models (see :mod:`musicprobe.zoo.evaluate`).

    Adherence is judged on ``n`` generated clips (the bar asks for at least 64; 128 halves the sampling error,
    about +-0.03 at 0.85).
    """
    from musicprobe.zoo.evaluate import zoo_report

    return zoo_report(
        n_gen=16 if quick else n, n_heldout=64 if quick else 256, n_inversion=2 if quick else 8, quick=quick
    )


def bench_inversion(n: int = 4, quick: bool = False) -> dict:
    """Reconstruction error of Euler vs RF-Solver at equal model evaluations, on ``n`` held-out clips."""
    from musicprobe.zoo import load
    from musicprobe.zoo.evaluate import inversion_quality
    from musicprobe.zoo.recipes import heldout

    mf = load("mini-flux")
    budgets = (10, 20) if quick else (10, 20, 50, 100)
    res = inversion_quality(mf, heldout(64), n=2 if quick else n, budgets=budgets)
    return {"goal": "rf-solver mel MSE <= 0.5 x euler at equal NFE", **res}


def bench_musrec(n: int = 16, quick: bool = False) -> dict:
    """MusRec on held-out instrument-edit pairs: none / K / V / K+V x injection steps (see musicprobe.bench)."""
    from musicprobe.bench.musrec import musrec_sweep

    return musrec_sweep(n_pairs=3 if quick else n, inject_steps=(2, 5) if quick else (2, 3, 5, 10))


def bench_musickv(n: int = 16, quick: bool = False) -> dict:
    """MusicKV: vital vs random vs all layers on held-out instrument-edit pairs."""
    from musicprobe.bench.musickv import musickv_comparison

    return musickv_comparison(n_pairs=3 if quick else n, steps=12 if quick else 25)


BENCHES = {
    "synth": bench_synth,
    "metrics": bench_metrics,
    "hooks": bench_hooks,
    "zoo": bench_zoo,
    "inversion": bench_inversion,
    "musrec": bench_musrec,
    "musickv": bench_musickv,
}


def run_bench(name: str, **kw) -> dict:
    check_known("benchmark", name, BENCHES)
    return {"bench": name, **BENCHES[name](**kw)}
