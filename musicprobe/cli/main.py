"""Entry point of the ``musicprobe`` command."""

from __future__ import annotations

import argparse
import json
import sys

from musicprobe.errors import MusicProbeError


def _cmd_demo(a: argparse.Namespace) -> None:
    from musicprobe.cli.demo import run_demo

    run_demo(a.out, fast=a.fast)


def _cmd_synth(a: argparse.Namespace) -> None:
    from musicprobe.synth import write_corpus

    path = write_corpus(
        a.out,
        a.n,
        a.seed,
        duration=a.duration,
        edits=a.edits,
        stems=a.stems,
        fmt=a.format,
        workers=a.workers,
        progress=True,
    )
    print(f"wrote {path}")


def _cmd_metrics(a: argparse.Namespace) -> None:
    from musicprobe.metrics.suite import evaluate_files, format_table

    result = evaluate_files(a.source, a.edit, a.reference)
    if a.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"notes from: {result['notes']}")
        print(format_table(result))


def _cmd_bench(a: argparse.Namespace) -> None:
    from musicprobe.cli.bench import run_bench

    kw = {"n": a.n} if a.name == "synth" and a.n else {}
    result = run_bench(a.name, **kw)
    print(json.dumps(result, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


def _cmd_info(a: argparse.Namespace) -> None:
    from musicprobe.metrics import METRICS
    from musicprobe.synth import GENRES, INSTRUMENTS, MOODS

    print("instruments:", ", ".join(INSTRUMENTS))
    print("genres:     ", ", ".join(GENRES))
    print("moods:      ", ", ".join(MOODS))
    print("metrics:    ", ", ".join(METRICS))


def _cmd_data(a: argparse.Namespace) -> None:
    from musicprobe.data import list_samples, verify

    if a.action == "verify":
        res = verify()
        bad = [k for k, ok in res.items() if not ok]
        print(f"{len(res) - len(bad)}/{len(res)} files match the manifest")
        if bad:
            raise MusicProbeError(f"checksum mismatch: {', '.join(bad)}")
    else:
        print("\n".join(list_samples()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicprobe", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run the main job on the bundled data and write an HTML report")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--fast", action="store_true", help="one pair, fewer figures (used by the tests)")
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("synth", help="write a synthetic corpus with ground truth")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--duration", type=float, default=5.0)
    s.add_argument("--edits", type=int, default=0, help="number of edit pairs (instrument/genre/mood)")
    s.add_argument("--stems", action="store_true")
    s.add_argument("--format", default="wav", choices=["wav", "flac", "ogg"])
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=_cmd_synth)

    m = sub.add_parser("metrics", help="model-free metrics between a source and an edit")
    m.add_argument("source")
    m.add_argument("edit")
    m.add_argument("--reference", help="the true target, if known")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_metrics)

    b = sub.add_parser("bench", help="benchmarks (speed, memory, quality)")
    b.add_argument("name")
    b.add_argument("--json", action="store_true")
    b.add_argument("--n", type=int, default=0)
    b.set_defaults(func=_cmd_bench)

    i = sub.add_parser("info", help="list instruments, genres, moods and metrics")
    i.set_defaults(func=_cmd_info)

    da = sub.add_parser("data", help="the bundled data_samples")
    da.add_argument("action", choices=["list", "verify"])
    da.set_defaults(func=_cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MusicProbeError as exc:
        print(f"musicprobe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
