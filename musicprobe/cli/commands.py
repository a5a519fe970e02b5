"""Implementations of ``musicprobe invert``, ``musicprobe edit ...``, ``musicprobe probe-layers`` and ``zoo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musicprobe.errors import ConfigError


def load_flow_model(name: str):
    """A zoo name (``mini-flux``) or a folder with mini-flux weights."""
    from musicprobe.zoo import MODELS, load

    if name in MODELS:
        return load(name)
    if Path(name).is_dir():
        from musicprobe.models.miniflux import MiniFlux

        return MiniFlux.load(name)
    raise ConfigError(f"unknown model {name!r}: give a zoo name ({', '.join(MODELS)}) or a weights folder")


def read_audio(path: str):
    """``(audio, sr)`` at the file's own rate, mono (editors resample to their model's rate and say so)."""
    from musicprobe.audio.io import load_audio

    return load_audio(path, sr=None)


def _print(summary: dict, as_json: bool) -> None:
    print(json.dumps(summary, indent=1) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


def run_invert(a: argparse.Namespace) -> dict:
    from musicprobe.inversion import reconstruct, solvers_for

    model = load_flow_model(a.model)
    if a.solver not in solvers_for(model):
        raise ConfigError(f"--solver {a.solver} does not apply to {a.model}; it takes {', '.join(solvers_for(model))}")
    y, sr = read_audio(a.audio)
    trace = reconstruct(model, y, a.prompt, sr=sr, solver=a.solver, steps=a.steps, guidance=a.guidance)
    summary = trace.summary()
    if a.out:
        from musicprobe.audio.io import save_audio

        out = trace.save(a.out)
        save_audio(out / "reconstruction.wav", model.decode(trace.reconstruction), model.sr)
        trace.plot().write_html(out / "drift.html", include_plotlyjs=True)
    _print(summary, a.json)
    return summary


def _blocks(text: str):
    if text in ("latter_half", "all"):
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return [int(p) if p.isdigit() else p for p in parts]


def run_edit(a: argparse.Namespace) -> dict:
    from musicprobe.audio.io import save_audio

    if a.method == "musickv":
        res, extra = _edit_musickv(a)
    else:
        res, extra = _edit_musrec(a), {}
    save_audio(a.out, res.edited, res.sr)
    if getattr(a, "report", None):
        from musicprobe.report import HtmlReport

        folder = res.save(a.report)
        rep = HtmlReport(f"{res.method} edit: {res.source_prompt!r} -> {res.target_prompt!r}")
        rep.audio("source", res.source, res.sr).audio("edited", res.edited, res.sr)
        rep.table({res.label: res.metrics}).figure(res.plot("mel"))
        rep.save(folder / "report.html")
    summary = {"out": a.out, **extra, **res.summary(), "seconds": round(res.seconds, 2), "sr": res.sr}
    _print(summary, a.json)
    return summary


def _edit_musrec(a: argparse.Namespace):
    from musicprobe.editors import MusRec, MusRecConfig

    model = load_flow_model(a.model)
    cfg = MusRecConfig(
        inject=a.inject,
        inject_steps=a.inject_steps,
        blocks=_blocks(a.blocks),
        tokens=a.tokens,
        inject_uncond=not a.no_uncond_injection,
        steps=a.steps,
        source_guidance=a.source_guidance,
        target_guidance=a.target_guidance,
        alignment=a.alignment,
    )
    editor = MusRec(model, cfg)
    y, sr = read_audio(a.audio)
    ref = read_audio(a.reference_audio) if a.reference_audio else None
    if ref is not None and ref[1] != sr:
        from musicprobe.audio.io import resample

        ref = (resample(ref[0], ref[1], sr), sr)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr, reference=None if ref is None else ref[0])


def _edit_musickv(a: argparse.Namespace):
    from musicprobe.editors import MusicKV, MusicKVConfig
    from musicprobe.hooks import ScheduleSpec
    from musicprobe.zoo import load

    model = load_flow_model(a.model)
    clap = load("mini-clap")
    if a.layers:
        layers = [x.strip() for x in a.layers.split(",") if x.strip()]
    elif a.scores:
        from musicprobe.probing import LayerScores

        layers = LayerScores.load(a.scores).top_k(a.k)
    else:
        from musicprobe.probing import vital_layers

        layers, _ = vital_layers(model, clap, a.k, method=a.probe)
    spec = ScheduleSpec(kind=a.inject, tokens=a.tokens, curve=a.curve, strength=a.strength, start=a.start, end=a.end)
    cfg = MusicKVConfig(layers=layers, schedule=spec, steps=a.steps, source_branch=a.source_branch)
    editor = MusicKV(model, cfg, clap=clap)
    if a.generate:
        if a.audio:
            raise ConfigError("give either the source audio or --generate, not both")
        return editor.edit_generated(a.source_prompt, a.target_prompt, seed=a.seed), {"layers": layers}
    if not a.audio:
        raise ConfigError("give the source audio, or --generate to edit a generated clip")
    y, sr = read_audio(a.audio)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr), {"layers": layers}


def run_zoo(a: argparse.Namespace) -> None:
    from musicprobe.zoo import available

    if a.action == "list":
        for name, ok in available().items():
            print(f"{name}: {'installed' if ok else 'no weights (musicprobe zoo train ' + name + ')'}")
        return
    from musicprobe.zoo.recipes import train

    path = train(a.name, a.out, steps=a.steps or None, n_clips=a.clips, workers=a.workers)
    print(f"weights in {path}")


def run_probe_layers(a: argparse.Namespace) -> None:
    from musicprobe.probing import patch_layers, probe_layers
    from musicprobe.zoo import load

    model = load_flow_model(a.model)
    seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 0,1")
    probe = probe_layers if a.method == "bypass" else patch_layers
    kw = {"prompts": probe_prompts(a.prompts)} if a.method == "bypass" and a.prompts else {}
    scores = probe(model, load("mini-clap"), seeds=seeds, target=a.target, steps=a.steps, progress=True, **kw)
    scores.save(a.out)
    if a.html:
        scores.plot().write_html(a.html, include_plotlyjs=True)
    for point, s in scores.ranking():
        print(f"{point:<26} {s:.3f}")


def probe_prompts(text: str) -> list[str]:
    return [p.strip() for p in text.split("|") if p.strip()]
