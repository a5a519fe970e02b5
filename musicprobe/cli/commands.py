"""Implementations of ``musicprobe invert``, ``musicprobe edit ...`` and ``musicprobe zoo ...``."""

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
        from musicprobe.zoo import MiniFlux

        return MiniFlux.load(name)
    raise ConfigError(f"unknown model {name!r}: give a zoo name ({', '.join(MODELS)}) or a weights folder")


def _read(path: str, sr: int):
    from musicprobe.audio.io import load_audio

    y, _ = load_audio(path, sr=sr)
    return y


def run_invert(a: argparse.Namespace) -> dict:
    from musicprobe.inversion import reconstruct

    if a.solver == "ddim":
        raise ConfigError(
            "--solver ddim needs an epsilon-prediction model; mini-flux is a rectified-flow model "
            "(use euler or rf-solver; DDIM is in musicprobe.inversion.reconstruct_ddim)"
        )
    model = load_flow_model(a.model)
    y = _read(a.audio, model.sr)
    trace = reconstruct(model, y, a.prompt, solver=a.solver, steps=a.steps, guidance=a.guidance)
    summary = trace.summary()
    if a.out:
        from musicprobe.audio.io import save_audio

        out = trace.save(a.out)
        save_audio(out / "reconstruction.wav", model.decode(trace.reconstruction), model.sr)
        trace.plot().write_html(out / "drift.html", include_plotlyjs=True)
    print(json.dumps(summary, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return summary


def _blocks(text: str):
    if text in ("latter_half", "all"):
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return [int(p) if p.isdigit() else p for p in parts]


def run_edit(a: argparse.Namespace) -> dict:
    if a.method == "musickv":
        return run_edit_musickv(a)
    from musicprobe.audio.io import save_audio
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
    y = _read(a.audio, model.sr)
    ref = _read(a.reference_audio, model.sr) if a.reference_audio else None
    res = MusRec(model, cfg).edit(y, a.source_prompt, a.target_prompt, reference=ref)
    save_audio(a.out, res.edited, res.sr)
    if a.report:
        from musicprobe.report import HtmlReport

        folder = res.save(a.report)
        rep = HtmlReport(f"MusRec edit: {a.source_prompt!r} -> {a.target_prompt!r}")
        rep.audio("source", res.source, res.sr).audio("edited", res.edited, res.sr)
        rep.table({res.label: res.metrics}).figure(res.plot("mel"))
        rep.save(folder / "report.html")
    summary = {"out": a.out, **res.summary(), "seconds": round(res.seconds, 2)}
    print(json.dumps(summary, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return summary


def run_zoo(a: argparse.Namespace) -> None:
    from musicprobe.zoo import available

    if a.action == "list":
        for name, ok in available().items():
            print(f"{name}: {'installed' if ok else 'no weights (musicprobe zoo train ' + name + ')'}")
        return
    from musicprobe.zoo.recipes import train

    path = train(a.name, a.out, steps=a.steps or None, n_clips=a.clips, workers=a.workers)
    print(f"weights in {path}")


def run_edit_musickv(a: argparse.Namespace) -> dict:
    from musicprobe.audio.io import save_audio
    from musicprobe.editors import MusicKV, MusicKVConfig
    from musicprobe.zoo import load

    model = load_flow_model(a.model)
    clap = load("mini-clap")
    if a.layers:
        layers = [x.strip() for x in a.layers.split(",") if x.strip()]
    else:
        from musicprobe.bench.musickv import vital_layers
        from musicprobe.zoo import weights_dir

        path = Path(a.scores) if a.scores else weights_dir("mini-flux") / "probing.json"
        layers, _ = vital_layers(model, clap, a.k, path if path.exists() else None)
    cfg = MusicKVConfig(
        layers=layers,
        kind=a.inject,
        tokens=a.tokens,
        curve=a.curve,
        strength=a.strength,
        start=a.start,
        end=a.end,
        steps=a.steps,
    )
    editor = MusicKV(model, cfg, clap=clap)
    if a.generate:
        res = editor.edit_generated(a.source_prompt, a.target_prompt, seed=a.seed)
    else:
        if not a.audio:
            raise ConfigError("give the source audio, or --generate to edit a generated clip")
        res = editor.edit(_read(a.audio, model.sr), a.source_prompt, a.target_prompt)
    save_audio(a.out, res.edited, res.sr)
    summary = {"out": a.out, "layers": layers, **res.summary(), "seconds": round(res.seconds, 2)}
    print(json.dumps(summary, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return summary


def run_probe_layers(a: argparse.Namespace) -> None:
    from musicprobe.probing import patch_layers, probe_layers
    from musicprobe.zoo import load

    model = load_flow_model(a.model)
    seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    probe = probe_layers if a.method == "bypass" else patch_layers
    scores = probe(model, load("mini-clap"), seeds=seeds, target=a.target, steps=a.steps, progress=True)
    scores.save(a.out)
    if a.html:
        scores.plot().write_html(a.html, include_plotlyjs=True)
    for point, s in scores.ranking():
        print(f"{point:<26} {s:.3f}")
