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

    result = evaluate_files(a.source, a.edit, a.reference, allow_length_mismatch=a.allow_length_mismatch)
    if a.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"notes from: {result['notes']}")
        print(format_table(result))


def _cmd_bench(a: argparse.Namespace) -> None:
    from musicprobe.cli.bench import run_bench

    kw = {"n": a.n} if a.n else {}
    if a.quick:
        kw["quick"] = True
    if a.model:
        kw["model"] = a.model
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


def _cmd_invert(a: argparse.Namespace) -> None:
    from musicprobe.cli.commands import run_invert

    run_invert(a)


def _cmd_edit(a: argparse.Namespace) -> None:
    from musicprobe.cli.commands import run_edit

    run_edit(a)


def _cmd_probe_layers(a: argparse.Namespace) -> None:
    from musicprobe.cli.commands import run_probe_layers

    run_probe_layers(a)


def _cmd_zoo(a: argparse.Namespace) -> None:
    from musicprobe.cli.commands import run_zoo

    run_zoo(a)


def _window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offset", type=float, default=0.0, help="start of the window to use, in seconds")
    p.add_argument("--duration", type=float, default=None, help="length of the window, in seconds (default: to the "
                   "end; the mini models take at most 5.12 s)")


def _out_sr_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-sr", default="input", choices=["input", "model"],
                   help="write the edit at the input file's rate (default, resampled from the model's) or the model's")
    from musicprobe.audio.io import OVERFLOW

    p.add_argument("--overflow", default="warn", choices=list(OVERFLOW),
                   help="an edit louder than full scale: warn (clip and say so; default), clip, normalize (scale to "
                   "a peak of 0.99) or error")


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None,
                   help="for a backend --model: cuda, cuda:N or cpu (default: cuda if present)")
    p.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"],
                   help="for a backend --model (default: fp16 on cuda, fp32 on cpu)")


MODEL_HELP = ("zoo name, {what} weights folder, or a real pipeline: {backends}[:<folder or hub id>] "
              "(tiny:<backend> for its tiny random-init pipeline)")


def _edit_output_options(p: argparse.ArgumentParser, model: str, what: str, backends: str) -> None:
    """What the config-driven edit commands share: the true target, the model, outputs and the audio window."""
    p.add_argument("--reference-audio", help="the true target, if known (adds similarity-to-target metrics)")
    p.add_argument("--model", default=model, help=MODEL_HELP.format(what=what, backends=backends))
    _backend_options(p)
    p.add_argument("--out", required=True, help="output audio file (.wav, .flac, .ogg); never one of the inputs")
    p.add_argument("--report", help="folder for an HTML report and the result files")
    p.add_argument("--json", action="store_true")
    _window_options(p)
    _out_sr_option(p)
    p.set_defaults(func=_cmd_edit)


def build_parser() -> argparse.ArgumentParser:
    """The parser; every editor option's default is read from its config dataclass (one set of defaults)."""
    from musicprobe.editors import MusicKVConfig, MusRecConfig, musickv_schedule
    from musicprobe.zoo.recipes import RECIPES

    MR, MK = MusRecConfig(), musickv_schedule()
    MKC = MusicKVConfig(layers=["-"])
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
    m.add_argument("--allow-length-mismatch", action="store_true",
                   help="compare the shared part of clips of different lengths (refused by default)")
    m.set_defaults(func=_cmd_metrics)

    b = sub.add_parser("bench", help="benchmarks (speed, memory, quality)")
    b.add_argument("name")
    b.add_argument("--json", action="store_true")
    b.add_argument("--n", type=int, default=0, help="problem size (clips/pairs), where the benchmark has one")
    b.add_argument("--quick", action="store_true", help="a smaller, faster version where the benchmark has one")
    b.add_argument("--model", default=None, help="bench backends: KIND:FOLDER_OR_HUB_ID, that architecture with random "
                   "weights (on the GPU if any); zoo model, where the benchmark takes one (musickv, inversion: "
                   "mini-flux or mini-sao)")
    b.set_defaults(func=_cmd_bench)

    i = sub.add_parser("info", help="list instruments, genres, moods and metrics")
    i.set_defaults(func=_cmd_info)

    inv = sub.add_parser("invert", help="invert audio with a flow model and regenerate it; report the errors")
    inv.add_argument("audio")
    inv.add_argument("--prompt", default="", help="the prompt to invert under (the source caption)")
    inv.add_argument("--solver", default="rf-solver", choices=["euler", "rf-solver", "dpmpp-2m", "ddim"],
                     help="euler / rf-solver / dpmpp-2m for flow models (mini-flux, mini-sao); ddim for epsilon models")
    inv.add_argument("--steps", type=int, default=25)
    inv.add_argument("--guidance", type=float, default=1.0)
    inv.add_argument("--model", default="mini-flux", help="zoo name or a mini-flux weights folder")
    inv.add_argument("--out", help="folder for the trace, reconstruction.wav and drift.html")
    _window_options(inv)
    inv.add_argument("--json", action="store_true")
    inv.set_defaults(func=_cmd_invert)

    e = sub.add_parser("edit", help="edit audio with a method")
    esub = e.add_subparsers(dest="method", required=True)
    mr = esub.add_parser("musrec", help="MusRec: RF-Solver inversion + K/V injection in single-stream blocks")
    mr.add_argument("audio")
    mr.add_argument("--source-prompt", required=True)
    mr.add_argument("--target-prompt", required=True)
    mr.add_argument("--inject", default=MR.inject, choices=["none", "k", "v", "kv"])
    mr.add_argument("--inject-steps", type=int, default=MR.inject_steps)
    mr.add_argument(
        "--blocks", default=MR.blocks, help="'latter_half', 'all', or comma-separated single-block indices / names"
    )
    mr.add_argument("--tokens", default=MR.tokens, choices=["all", "audio"])
    mr.add_argument("--no-uncond-injection", action="store_true", help="keep source features out of the uncond branch")
    mr.add_argument("--steps", type=int, default=MR.steps)
    mr.add_argument("--source-guidance", type=float, default=MR.source_guidance)
    mr.add_argument("--target-guidance", type=float, default=MR.target_guidance)
    mr.add_argument("--alignment", default=MR.alignment, choices=["reference", "same_time"])
    mr.add_argument("--reference-audio", help="the true target, if known (adds similarity-to-target metrics)")
    mr.add_argument("--model", default="mini-flux", help=MODEL_HELP.format(what="mini-flux", backends="fluxmusic"))
    _backend_options(mr)
    mr.add_argument("--out", required=True, help="output audio file (.wav, .flac, .ogg); never one of the inputs")
    _window_options(mr)
    _out_sr_option(mr)
    mr.add_argument("--report", help="folder for an HTML report and the result files")
    mr.add_argument("--json", action="store_true")
    mr.set_defaults(func=_cmd_edit)

    mk = esub.add_parser("musickv", help="MusicKV: K/V injection into vital layers with a time-varying weight")
    mk.add_argument("audio", nargs="?", help="source audio (omit with --generate to edit a generated clip)")
    mk.add_argument("--source-prompt", required=True)
    mk.add_argument("--target-prompt", required=True)
    mk.add_argument("--layers", default="", help="comma-separated attention points; default: top-k of probing")
    mk.add_argument("--k", type=int, default=3, help="number of vital layers when --layers is not given")
    mk.add_argument("--probe", default="bypass", choices=["bypass", "patching"], help="probing method for the top-k")
    mk.add_argument("--scores", help="a probe-layers JSON to pick the vital layers from")
    mk.add_argument("--curve", default=MK.curve, choices=["constant", "window", "ramp", "ramp_down", "cosine"])
    mk.add_argument("--strength", type=float, default=MK.strength)
    mk.add_argument("--start", type=int, default=MK.start)
    mk.add_argument("--end", type=int, default=MK.end)
    mk.add_argument("--inject", default=MK.kind, choices=["k", "v", "kv"])
    mk.add_argument("--tokens", default=None, choices=["all", "audio"],
                    help="tokens whose K/V are injected; default: all on mini-sao (the reference: global token too), "
                         "audio on mini-flux (not the text of its joint attention)")
    mk.add_argument("--steps", type=int, default=MKC.steps)
    mk.add_argument("--source-branch", default=MKC.source_branch, choices=["regenerate", "inversion"])
    mk.add_argument("--generate", action="store_true", help="generated-audio path: source generated from --seed")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--model", default="mini-flux", help="mini-flux (MM-DiT), mini-sao (Stable Audio DiT), a folder, "
                    "or a real pipeline: stable-audio[:<folder or hub id>], fluxmusic:<folder> (tiny:<backend>: tiny)")
    _backend_options(mk)
    mk.add_argument("--solver", default=None, choices=["euler", "rf-solver", "dpmpp-2m"],
                    help="default: the model's (dpmpp-2m on mini-sao, as the reference; rf-solver on mini-flux)")
    mk.add_argument("--out", required=True, help="output audio file (.wav, .flac, .ogg); never one of the inputs")
    _window_options(mk)
    _out_sr_option(mk)
    mk.add_argument("--json", action="store_true")
    mk.set_defaults(func=_cmd_edit)

    from musicprobe.cli.commands import EPS_EDITORS
    from musicprobe.cli.options import add_config_options

    for name, (editor_cls, help_text) in EPS_EDITORS.items():
        ep = esub.add_parser(name, help=help_text)
        ep.add_argument("audio")
        ep.add_argument("--source-prompt", required=True)
        ep.add_argument("--target-prompt", required=True)
        add_config_options(ep, editor_cls.config_class)
        _edit_output_options(ep, "mini-ldm", "a mini-LDM", "audioldm2")

    from musicprobe.editors.steermusic_plus import SteerMusicPlusConfig

    sp = esub.add_parser("steermusic-plus", help="SteerMusic+: personalised editing towards a fine-tuned concept "
                         "(mini-LDM + a concept folder)")
    sp.add_argument("audio")
    sp.add_argument("--concept", required=True, help="a bundled concept (lute, marimba) or a folder written by "
                    "`musicprobe zoo personalize`")
    sp.add_argument("--finetune-step", type=int, default=0, help="which fine-tuning checkpoint (default: 100)")
    sp.add_argument("--source-prompt", required=True)
    sp.add_argument("--target-prompt", required=True, help="names the concept with its token, e.g. 'a calm pop "
                    "piece with sks string instrument playing the melody'")
    add_config_options(sp, SteerMusicPlusConfig)
    _edit_output_options(sp, "mini-ldm", "a mini-LDM", "audioldm2")

    from musicprobe.editors.editgen import EditGenConfig

    eg = esub.add_parser("editgen", help="EditGen: prompt-to-prompt attention control in mini-MusicGen / MusicGen")
    eg.add_argument("audio", nargs="?", help="source audio (teacher-forces the source row); omit it to edit the "
                    "generation of --source-prompt (the paper's setting)")
    eg.add_argument("--source-prompt", required=True)
    eg.add_argument("--target-prompt", required=True)
    add_config_options(eg, EditGenConfig, skip=("capture", "frames", "word_maps"))
    _edit_output_options(eg, "mini-musicgen", "a mini-MusicGen", "musicgen")

    from musicprobe.editors.instructme import InstructMEConfig

    im = esub.add_parser("instructme", help="InstructME: a trained instruction editor (add / remove / extract / "
                         "replace / remix)")
    im.add_argument("audio")
    im.add_argument("--instruction", required=True, help="e.g. 'add drums', 'replace the piano with flute'")
    add_config_options(im, InstructMEConfig, skip=("capture", "solver", "source_guidance"))
    _edit_output_options(im, "mini-instructme", "a mini-InstructME", "none (InstructME has no public model)")

    pl = sub.add_parser("probe-layers", help="per-layer probing scores of a model (bypass or patching)")
    pl.add_argument("--model", default="mini-flux")
    pl.add_argument(
        "--method",
        default="bypass",
        choices=["bypass", "patching"],
        help="bypass: change when a layer is removed (the paper's); patching: structure its injected K/V carries",
    )
    pl.add_argument("--target", default="attention", choices=["attention", "blocks", "both"])
    pl.add_argument("--seeds", default="0,1")
    pl.add_argument("--steps", type=int, default=12)
    pl.add_argument("--prompts", default="", help="bypass probe set: prompts separated by '|' (default: four)")
    pl.add_argument("--out", required=True, help="scores JSON")
    pl.add_argument("--html", help="also write the bar chart as HTML")
    pl.set_defaults(func=_cmd_probe_layers)

    z = sub.add_parser("zoo", help="the mini model zoo: list, train")
    zsub = z.add_subparsers(dest="action", required=True)
    zl = zsub.add_parser("list", help="zoo models and whether their weights are installed")
    zl.set_defaults(func=_cmd_zoo)
    zt = zsub.add_parser("train", help="train a zoo model (resumable; CPU or GPU)")
    zt.add_argument("name", choices=list(RECIPES))
    zt.add_argument("--out", required=True, help="run folder (checkpoint, loss curve, exported weights)")
    zt.add_argument("--steps", type=int, default=0)
    zt.add_argument("--clips", type=int, default=0, help="training clips (default: the recipe's own)")
    zt.add_argument("--workers", type=int, default=2)
    zt.add_argument("--init-from", default=None, help="continue from an exported model (zoo name or weights folder) "
                    "with the recipe's fine-tuning settings (mini-instructme and its ablations)")
    zt.set_defaults(func=_cmd_zoo)

    zp = zsub.add_parser("personalize", help="teach mini-LDM a personal concept (DreamBooth LoRA + textual "
                         "inversion) from a few recordings")
    zp.add_argument("concept", help="a folder of recordings (wav, flac, ogg) or a corpus concept (lute, marimba)")
    zp.add_argument("--class-word", default="", help="the concept's class, e.g. 'string instrument' (a folder needs "
                    "it)")
    zp.add_argument("--out", required=True, help="the concept folder to write (LoRA checkpoints, token, provenance)")
    zp.add_argument("--steps", type=int, default=200)
    zp.add_argument("--checkpoints", default="50,100,200")
    zp.add_argument("--ti-steps", type=int, default=200)
    zp.add_argument("--prior-clips", type=int, default=8, help="class clips the base model generates for prior "
                    "preservation (0: none)")
    zp.add_argument("--model", default="mini-ldm")
    zp.set_defaults(func=_cmd_zoo)

    da = sub.add_parser("data", help="the bundled data_samples")
    da.add_argument("action", choices=["list", "verify"])
    da.set_defaults(func=_cmd_data)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"musicprobe: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user's mistake prints one line (``musicprobe: error: ...``) and returns 2."""
    import warnings

    args = build_parser().parse_args(argv)
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.filterwarnings("ignore", module="librosa")
            args.func(args)
    except MusicProbeError as exc:
        print(f"musicprobe: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
