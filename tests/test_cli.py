"""Every ``edit``, ``invert``, ``probe-layers`` and ``zoo`` subcommand end to end on the bundled data (fast
settings), and the CLI's defaults against the config dataclasses they come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicprobe.audio.io import load_audio
from musicprobe.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "data_samples" / "pop_piano.flac")
TARGET_AUDIO = str(ROOT / "data_samples" / "targets")
PROMPTS = ["--source-prompt", "a happy pop piece with piano playing the melody",
           "--target-prompt", "a happy pop piece with flute playing the melody"]


def _json(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_edit_musrec_writes_the_edit_and_a_report(tmp_path, capsys):
    out = tmp_path / "edit.wav"
    argv = ["edit", "musrec", SRC, *PROMPTS, "--steps", "4", "--inject-steps", "2", "--out", str(out),
            "--report", str(tmp_path / "rep"), "--json"]
    assert main(argv) == 0
    summary = _json(capsys)
    y, sr = load_audio(out, sr=None)
    assert sr == 16000 == summary["out_sr"] == summary["model_sr"] and len(y) == 80000  # the input's 5 s
    assert summary["method"] == "musrec" and 0 <= summary["chroma"] <= 1
    assert (tmp_path / "rep" / "report.html").exists() and (tmp_path / "rep" / "result.json").exists()


def test_edit_musickv_without_layers_picks_the_vital_ones(tmp_path, capsys):
    """The bug of the core issue: without --layers the CLI must probe (or use the shipped scores) and run."""
    out = tmp_path / "kv.wav"
    assert main(["edit", "musickv", SRC, *PROMPTS, "--steps", "4", "--k", "2", "--out", str(out), "--json"]) == 0
    summary = _json(capsys)
    assert len(summary["layers"]) == 2 and all(layer.endswith(".attn") for layer in summary["layers"])
    assert out.stat().st_size > 10_000


def test_edit_musickv_generated_path_and_explicit_layers(tmp_path, capsys):
    out = tmp_path / "gen.wav"
    argv = ["edit", "musickv", "--generate", "--seed", "3", *PROMPTS, "--layers", "single_blocks.0.attn",
            "--steps", "3", "--curve", "constant", "--out", str(out), "--json"]
    assert main(argv) == 0
    assert _json(capsys)["layers"] == ["single_blocks.0.attn"] and out.exists()


@pytest.mark.parametrize(("method", "extra", "label"), [
    ("sdedit", ["--strength", "0.3"], "SDEdit s=0.3"),
    ("ddim", [], "DDIM inversion (3 steps)"),
    ("zeta", ["--t-start", "300"], "ZETA t_start=300"),
    ("steermusic", ["--x0-clip", "false"], "SteerMusic (3 it, CFG 50)"),
    ("p2p-diffusion", ["--mode", "refine", "--self-steps", "0.3"], "P2P refine (diffusion)"),
])
def test_every_epsilon_editor_runs_from_the_cli(tmp_path, capsys, method, extra, label):
    out = tmp_path / f"{method}.wav"
    assert main(["edit", method, SRC, *PROMPTS, "--steps", "3", *extra, "--out", str(out), "--json"]) == 0
    summary = _json(capsys)
    y, sr = load_audio(out, sr=None)
    assert summary["method"] == method and summary["label"] == label
    assert sr == 16000 and len(y) == 80000 and 0 <= summary["chroma"] <= 1  # the input's rate and 5 s


def test_an_epsilon_editor_refuses_a_bad_setting_before_any_work(tmp_path, capsys):
    out = tmp_path / "never.wav"
    assert main(["edit", "sdedit", SRC, *PROMPTS, "--strength", "1.5", "--out", str(out)]) == 2
    assert "strength must be in (0, 1], got 1.5" in capsys.readouterr().err and not out.exists()


def test_invert_reports_the_trace_and_writes_its_files(tmp_path, capsys):
    argv = ["invert", SRC, "--prompt", "a happy pop piece with piano playing the melody", "--steps", "3",
            "--out", str(tmp_path / "inv"), "--json"]
    assert main(argv) == 0
    summary = _json(capsys)
    assert summary["solver"] == "rf-solver" and summary["nfe"] == 12 and summary["mel_mse"] > 0
    for name in ("trace.json", "latents.npz", "reconstruction.wav", "drift.html"):
        assert (tmp_path / "inv" / name).exists(), name
    assert main(["invert", SRC, "--solver", "ddim", "--steps", "3"]) == 2
    assert "euler, rf-solver" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["bypass", "patching"])
def test_probe_layers_writes_scores(tmp_path, capsys, method):
    out = tmp_path / "scores.json"
    argv = ["probe-layers", "--method", method, "--seeds", "0", "--steps", "2", "--out", str(out),
            "--html", str(tmp_path / "s.html")]
    if method == "bypass":
        argv += ["--prompts", "a happy pop piece with piano playing the melody"]
    assert main(argv) == 0
    scores = json.loads(out.read_text())
    assert len(scores["points"]) == 8 and (tmp_path / "s.html").exists()
    assert capsys.readouterr().out.count(".attn") == 8


def test_zoo_list_names_every_model(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mini-flux", "mini-clap", "mini-vocoder", "mini-ldm", "mini-sao", "mini-musicgen",
                 "mini-instructme", "mini-instructme-no-chord", "mini-instructme-no-msa"):
        assert f"{name}: installed" in out


def test_edit_editgen_generates_and_edits_or_teacher_forces_a_clip(tmp_path, capsys):
    out = tmp_path / "eg.wav"
    argv = ["edit", "editgen", "--source-prompt", "a calm pop piece with piano playing the melody",
            "--target-prompt", "a calm pop piece with flute playing the melody", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "replace (soft)" and 0 <= summary["melody_acc"] <= 1 and out.exists()
    argv = ["edit", "editgen", SRC, "--source-prompt", "a pop piece with piano", "--target-prompt",
            "a pop piece with flute", "--mode", "refine", "--blending", "hard", "--out", str(out), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "refine (hard)"
    bad = ["edit", "editgen", "--source-prompt", "a piano", "--target-prompt", "a flute now", "--out", str(out)]
    assert main(bad) == 2
    assert "same number of words" in capsys.readouterr().err
    wrong = ["edit", "editgen", "--model", "mini-flux", "--source-prompt", "a", "--target-prompt", "b", "--out",
             str(out)]
    assert main(wrong) == 2
    assert "a flow model; this command needs a token model" in capsys.readouterr().err


def test_edit_instructme_follows_an_instruction_and_names_the_operations_it_knows(tmp_path, capsys):
    out = tmp_path / "im.wav"
    argv = ["edit", "instructme", SRC, "--instruction", "add drums", "--steps", "4", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "mini-instructme" and 0 <= summary["cra_source"] <= 1 and out.exists()
    assert len(load_audio(str(out))[0]) == len(load_audio(SRC)[0])
    argv = ["edit", "instructme", SRC, "--instruction", "remove the bass", "--steps", "2", "--chords", "false",
            "--model", "mini-instructme-no-msa", "--out", str(out), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "mini-instructme-no-msa (null chord)"
    assert main(["edit", "instructme", SRC, "--instruction", "make it louder", "--out", str(out)]) == 2
    assert "trained on add / remove / extract / replace / remix" in capsys.readouterr().err
    assert main(["edit", "instructme", SRC, "--instruction", "add drums", "--model", "mini-ldm", "--out",
                 str(out)]) == 2
    assert "not an instruction editor" in capsys.readouterr().err


def test_cli_defaults_come_from_the_config_dataclasses():
    from musicprobe.editors import MusicKVConfig, MusRecConfig, musickv_schedule

    parser = build_parser()
    mr = parser.parse_args(["edit", "musrec", "x.wav", "--source-prompt", "a", "--target-prompt", "b", "--out", "o"])
    c = MusRecConfig()
    assert (mr.inject, mr.inject_steps, mr.blocks, mr.tokens, mr.steps) == (
        c.inject, c.inject_steps, c.blocks, c.tokens, c.steps)
    assert (mr.source_guidance, mr.target_guidance, mr.alignment) == (
        c.source_guidance, c.target_guidance, c.alignment)
    assert mr.no_uncond_injection is (not c.inject_uncond)
    mk = parser.parse_args(["edit", "musickv", "--source-prompt", "a", "--target-prompt", "b", "--out", "o"])
    s, kc = musickv_schedule(), MusicKVConfig(layers=["x"])
    assert (mk.curve, mk.strength, mk.start, mk.end, mk.inject) == (s.curve, s.strength, s.start, s.end, s.kind)
    assert (mk.steps, mk.source_branch) == (kc.steps, kc.source_branch)
    assert mk.tokens is None and mk.solver is None  # chosen per model: musickv_tokens, the model's default_solver


def test_edit_musickv_on_mini_sao_uses_its_self_attention_and_sampler(tmp_path, capsys):
    out = tmp_path / "sao.wav"
    argv = ["edit", "musickv", "--model", "mini-sao", "--generate", *PROMPTS, "--k", "2", "--steps", "3",
            "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = _json(capsys)
    assert len(summary["layers"]) == 2 and all(layer.endswith(".self_attn") for layer in summary["layers"])
    assert out.stat().st_size > 10_000
    argv = ["invert", SRC, "--model", "mini-sao", "--solver", "dpmpp-2m", "--steps", "3", "--json"]
    assert main(argv) == 0
    assert _json(capsys)["nfe"] == 6  # one call per step, both directions


def test_a_model_of_the_wrong_family_or_a_bench_without_models_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "never.wav"
    assert main(["edit", "musickv", SRC, *PROMPTS, "--model", "mini-ldm", "--layers", "x", "--out", str(out)]) == 2
    assert "mini-ldm is an epsilon model; this command needs a flow model" in capsys.readouterr().err
    assert main(["bench", "synth", "--model", "mini-sao"]) == 2
    assert "bench synth has no --model; benchmarks that take one: inversion, musickv" in capsys.readouterr().err
