"""Implementations of ``musicprobe invert``, ``musicprobe edit ...``, ``musicprobe probe-layers`` and ``zoo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musicprobe.errors import ConfigError


def _eps_editors() -> dict:
    from musicprobe.editors import ZETA, DDIMEdit, SDEdit, SteerMusic
    from musicprobe.editors.p2p_diffusion import DiffusionP2P

    return {
        "sdedit": (SDEdit, "SDEdit: noise the source to a strength, denoise under the target prompt (epsilon models)"),
        "ddim": (DDIMEdit, "DDIM inversion under the source prompt, regeneration under the target (epsilon models)"),
        "zeta": (ZETA, "ZETA: edit-friendly DDPM inversion, regeneration with the stored noise (epsilon models)"),
        "steermusic": (SteerMusic, "SteerMusic: Delta Denoising Score in the latent (epsilon models)"),
        "p2p-diffusion": (DiffusionP2P, "Prompt-to-Prompt in a diffusion model after DDIM inversion "
                                        "(EditGen's baseline; epsilon models)"),
    }


EPS_EDITORS = _eps_editors()


def load_model(name: str, family: str | None = "flow", *, device=None, dtype=None):
    """A zoo name, a weights folder (its ``config.json`` names the model) or a backend spec
    (:func:`musicprobe.zoo.resolve.model_from_spec`: ``stable-audio:/path``, ``tiny:audioldm2`` ...) of the
    ``family`` a command needs (``"flow"``: mini-flux, mini-SAO, Stable Audio, FluxMusic; ``"eps"``: mini-LDM,
    AudioLDM2; ``"token"``: mini-MusicGen, MusicGen; ``None``: any)."""
    from musicprobe.models.protocols import family_of
    from musicprobe.zoo import WITH_DECODER, load
    from musicprobe.zoo.resolve import model_from_spec

    if Path(name).is_dir() and (Path(name) / "config.json").exists():
        zoo_name = json.loads((Path(name) / "config.json").read_text()).get("name", "mini-flux")
        model = load(zoo_name, name)
    else:
        model = model_from_spec(name, device=device, dtype=dtype)
    got = family_of(model)
    if family is not None and got != family:
        words = {"flow": "a flow", "eps": "an epsilon", "token": "a token"}
        raise ConfigError(f"{name} is {words[got]} model; this command needs {words[family]} model "
                          f"(zoo models: {', '.join(WITH_DECODER)})")
    return model


def model_of(a: argparse.Namespace, family: str | None):
    """The ``--model`` of a command, on its ``--device`` / ``--dtype`` where the command has them."""
    return load_model(a.model, family, device=getattr(a, "device", None), dtype=getattr(a, "dtype", None))


def read_audio(path: str, offset: float = 0.0, duration: float | None = None):
    """``(audio, sr)`` at the file's own rate, mono (editors resample to their model's rate)."""
    from musicprobe.audio.io import load_audio

    return load_audio(path, sr=None, offset=offset, duration=duration)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def check_output(
    path: str | None,
    inputs: list[str | None],
    *,
    folder: bool = False,
    what: str = "--out",
    suffixes: tuple[str, ...] = AUDIO_SUFFIXES,
) -> None:
    """Refuse, before any work, an output that would overwrite an input, has the wrong extension, or cannot be
    written (a read-only folder, a file where a folder must be)."""
    import os

    if path is None:
        return
    out = Path(path).expanduser().resolve()
    for given in inputs:
        if given and Path(given).expanduser().resolve() == out:
            raise ConfigError(f"{what} {path} is the input file: choose another name (inputs are never overwritten)")
    if not folder and out.suffix.lower() not in suffixes:
        raise ConfigError(f"{what} {path}: give a file name ending in {', '.join(suffixes)}")
    if folder and out.exists() and not out.is_dir():
        raise ConfigError(f"{what} {path} exists and is not a folder")
    if not folder and out.is_dir():
        raise ConfigError(f"{what} {path} is a folder: give a file name")
    parent = out if folder else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: {parent} is a file, so nothing can be written below it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: the folder {parent} is not writable")


def _print(summary: dict, as_json: bool) -> None:
    print(json.dumps(summary, indent=1) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


def run_invert(a: argparse.Namespace) -> dict:
    from musicprobe.inversion import reconstruct, solvers_for

    check_output(a.out, [a.audio], folder=True)
    model = model_of(a, None)
    if a.solver not in solvers_for(model):
        raise ConfigError(f"--solver {a.solver} does not apply to {a.model}; it takes {', '.join(solvers_for(model))}")
    y, sr = read_audio(a.audio, a.offset, a.duration)
    y = _fit_window(model, y, sr, a.audio)
    trace = reconstruct(model, y, a.prompt, sr=sr, solver=a.solver, steps=a.steps, guidance=a.guidance)
    summary = trace.summary()
    if a.out:
        from musicprobe.audio.io import save_audio

        out = trace.save(a.out)
        save_audio(out / "reconstruction.wav", model.decode(trace.reconstruction), model.sr)
        trace.plot().write_html(out / "drift.html", include_plotlyjs=True)
    _print(summary, a.json)
    return summary


def _fit_window(model, y, sr: int, name: str):
    """Refuse audio longer than the model's window (naming it), as the editors do."""
    from musicprobe.errors import AudioError

    window = getattr(model, "n_samples", None)
    if window is not None and len(y) / sr > window / model.sr + 0.01:
        raise AudioError(
            f"{name}: {len(y) / sr:.2f} s is longer than the {window / model.sr:.2f} s {type(model).__name__} "
            "handles at once; choose a window with --offset and --duration"
        )
    return y


def _blocks(text: str):
    if text in ("latter_half", "all"):
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return [int(p) if p.isdigit() else p for p in parts]


def run_edit(a: argparse.Namespace) -> dict:
    from musicprobe.audio.io import resample, save_audio

    inputs = [getattr(a, "audio", None), getattr(a, "reference_audio", None), getattr(a, "scores", None)]
    check_output(a.out, inputs)
    check_output(getattr(a, "report", None), inputs, folder=True, what="--report")
    in_sr = None
    if getattr(a, "audio", None):
        import soundfile as sf

        try:
            in_sr = sf.info(a.audio).samplerate
        except Exception:  # unreadable files get their error from load_audio
            in_sr = None
    if a.method == "musickv":
        res, extra = _edit_musickv(a)
    elif a.method == "editgen":
        res, extra = _edit_editgen(a), {}
    elif a.method == "instructme":
        res, extra = _edit_instructme(a), {}
    elif a.method == "steermusic-plus":
        res, extra = _edit_steermusic_plus(a)
    elif a.method in EPS_EDITORS:
        res, extra = _edit_eps(a), {}
    else:
        res, extra = _edit_musrec(a), {}
    out_sr = res.sr if (a.out_sr == "model" or in_sr is None) else in_sr
    save_audio(a.out, resample(res.edited, res.sr, out_sr), out_sr, overflow=getattr(a, "overflow", "warn"))
    extra["out_sr"] = out_sr
    if getattr(a, "report", None):
        from musicprobe.report import HtmlReport

        folder = res.save(a.report)
        rep = HtmlReport(f"{res.method} edit: {res.source_prompt!r} -> {res.target_prompt!r}")
        rep.audio("source", res.source, res.sr).audio("edited", res.edited, res.sr)
        rep.table({res.label: res.metrics}).figure(res.plot("mel"))
        rep.save(folder / "report.html")
    summary = {"out": a.out, **extra, **res.summary(), "seconds": round(res.seconds, 2), "model_sr": res.sr}
    _print(summary, a.json)
    return summary


def _edit_musrec(a: argparse.Namespace):
    from musicprobe.editors import MusRec, MusRecConfig

    model = model_of(a, "flow")
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
    y, sr, ref = _read_pair(a)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr, reference=ref)


def _read_pair(a: argparse.Namespace):
    """The source audio and, if given, the true target at the source's rate."""
    y, sr = read_audio(a.audio, a.offset, a.duration)
    if not getattr(a, "reference_audio", None):
        return y, sr, None
    from musicprobe.audio.io import resample

    ref, ref_sr = read_audio(a.reference_audio, a.offset, a.duration)
    return y, sr, resample(ref, ref_sr, sr)


def _edit_eps(a: argparse.Namespace):
    from musicprobe.cli.options import config_from_args

    editor_cls = EPS_EDITORS[a.method][0]
    cfg = config_from_args(editor_cls.config_class, a)
    editor = editor_cls(model_of(a, "eps"), cfg)
    y, sr, ref = _read_pair(a)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr, reference=ref)


def _edit_steermusic_plus(a: argparse.Namespace):
    """SteerMusic+: the concept folder's fine-tuned model steers the clip towards the concept."""
    from musicprobe.cli.options import config_from_args
    from musicprobe.editors.steermusic_plus import SteerMusicPlus, SteerMusicPlusConfig
    from musicprobe.zoo import load_concept

    base = model_of(a, "eps")
    concept = load_concept(a.concept, base)
    c = concept.concept
    if c.token not in a.target_prompt.split():
        raise ConfigError(f"the target prompt must name the concept with its token {c.token!r}, e.g. "
                          f"'... with {c.instance_phrase} playing the melody'")
    class_prompt = a.target_prompt.replace(c.token + " ", "", 1)
    refs = concept.reference()
    editor = SteerMusicPlus(base, concept.model(a.finetune_step or None), config_from_args(SteerMusicPlusConfig, a),
                            references=(refs.audio, refs.sr))
    y, sr, ref = _read_pair(a)
    res = editor.edit_concept(y, a.source_prompt, a.target_prompt, class_prompt, sr=sr, reference=ref)
    return res, {"concept": c.name, "class_prompt": class_prompt}


def _edit_editgen(a: argparse.Namespace):
    """EditGen: a given clip teacher-forces the source row; without one, the source prompt's generation is edited."""
    from musicprobe.cli.options import config_from_args
    from musicprobe.editors.editgen import EditGen, EditGenConfig

    cfg = config_from_args(EditGenConfig, a)
    editor = EditGen(model_of(a, "token"), cfg)
    if not a.audio:
        return editor.edit_prompts(a.source_prompt, a.target_prompt)
    y, sr, ref = _read_pair(a)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr, reference=ref)


def _edit_instructme(a: argparse.Namespace):
    """InstructME: the instruction edits the given clip (any length up to --max-seconds, in one pass)."""
    from musicprobe.cli.options import config_from_args
    from musicprobe.editors.instructme import InstructME, InstructMEConfig

    model = model_of(a, "eps")
    if not hasattr(model, "bind"):
        raise ConfigError(f"{a.model} is not an instruction editor; use mini-instructme (or its ablations "
                          "mini-instructme-no-chord / mini-instructme-no-msa)")
    editor = InstructME(model, config_from_args(InstructMEConfig, a))
    y, sr, ref = _read_pair(a)
    return editor.edit(y, a.instruction, sr=sr, reference=ref)


def _edit_musickv(a: argparse.Namespace):
    from musicprobe.editors import MusicKV, MusicKVConfig, musickv_tokens
    from musicprobe.hooks import ScheduleSpec
    from musicprobe.inversion import default_solver
    from musicprobe.zoo import load

    model = model_of(a, "flow")
    clap = load("mini-clap")
    if a.layers:
        layers = [x.strip() for x in a.layers.split(",") if x.strip()]
    elif a.scores:
        from musicprobe.probing import LayerScores

        layers = LayerScores.load(a.scores).top_k(a.k)
    else:
        from musicprobe.probing import vital_layers

        layers, _ = vital_layers(model, clap, a.k, method=a.probe)
    spec = ScheduleSpec(kind=a.inject, tokens=a.tokens or musickv_tokens(model), curve=a.curve, strength=a.strength,
                        start=a.start, end=a.end)
    solver = a.solver or default_solver(model, fallback=MusicKVConfig.solver)
    cfg = MusicKVConfig(layers=layers, schedule=spec, steps=a.steps, source_branch=a.source_branch, solver=solver)
    editor = MusicKV(model, cfg, clap=clap)
    if a.generate:
        if a.audio:
            raise ConfigError("give either the source audio or --generate, not both")
        return editor.edit_generated(a.source_prompt, a.target_prompt, seed=a.seed), {"layers": layers}
    if not a.audio:
        raise ConfigError("give the source audio, or --generate to edit a generated clip")
    y, sr = read_audio(a.audio, a.offset, a.duration)
    return editor.edit(y, a.source_prompt, a.target_prompt, sr=sr), {"layers": layers}


def run_zoo(a: argparse.Namespace) -> None:
    from musicprobe.zoo import available

    if a.action == "list":
        for name, ok in available().items():
            print(f"{name}: {'installed' if ok else 'no weights (musicprobe zoo train ' + name + ')'}")
        return
    if a.action == "personalize":
        run_personalize(a)
        return
    from musicprobe.zoo.recipes import train

    path = train(a.name, a.out, steps=a.steps or None, n_clips=a.clips, workers=a.workers, init_from=a.init_from)
    print(f"weights in {path}")


def run_personalize(a: argparse.Namespace) -> None:
    """``musicprobe zoo personalize``: a concept folder from recordings (or a corpus concept)."""
    from musicprobe.synth.concepts import CONCEPTS
    from musicprobe.zoo.personalize import ConceptSet, PersonalizeConfig, personalize

    check_output(a.out, [a.concept], folder=True)
    if Path(a.concept).is_dir():
        concepts = ConceptSet.from_folder(a.concept, a.class_word)
    elif a.concept in CONCEPTS:
        concepts = ConceptSet.synthetic(a.concept)
    else:
        raise ConfigError(f"--concept {a.concept}: not a folder of recordings nor a corpus concept "
                          f"({', '.join(CONCEPTS)})")
    try:
        cps = tuple(int(x) for x in a.checkpoints.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--checkpoints: integers separated by commas, got {a.checkpoints!r}") from None
    cfg = PersonalizeConfig(steps=a.steps, checkpoints=cps, ti_steps=a.ti_steps, prior_clips=a.prior_clips)
    path = personalize(model_of(a, "eps"), concepts, a.out, cfg)
    print(f"concept {concepts.concept.name!r} in {path}: use it with --concept {path} and the token "
          f"{concepts.concept.instance_phrase!r} in the target prompt")


def run_probe_layers(a: argparse.Namespace) -> None:
    from musicprobe.probing import patch_layers, probe_layers
    from musicprobe.zoo import load

    try:
        seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds: give integers separated by commas, e.g. --seeds 0,1 (got {a.seeds!r})") from None
    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 0,1")
    check_output(a.out, [], suffixes=(".json",))
    check_output(a.html, [], what="--html", suffixes=(".html",))
    model = model_of(a, "flow")
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
