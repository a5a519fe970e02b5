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


BENCHES = {"synth": bench_synth, "metrics": bench_metrics}


def run_bench(name: str, **kw) -> dict:
    check_known("benchmark", name, BENCHES)
    return {"bench": name, **BENCHES[name](**kw)}
