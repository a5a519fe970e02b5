"""Inputs a user can get wrong, on the CLI and the Python API: each gets exit code 2 (or the documented exception)
with a message naming the problem, no traceback, the source file unchanged and no partial output."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicprobe.audio.io import load_audio
from musicprobe.cli.main import main
from musicprobe.errors import AudioError, ConfigError, MusicProbeError

ROOT = Path(__file__).resolve().parents[1]
PIANO = ROOT / "data_samples" / "pop_piano.flac"
SRC_P, TGT_P = "a happy pop piece with piano playing the melody", "a happy pop piece with flute playing the melody"
SR = 16000


def _tone(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    out = {}

    def write(name, y, sr=SR, subtype=None):
        out[name] = d / name
        sf.write(out[name], y.T if y.ndim == 2 else y, sr, subtype=subtype)

    nan = _tone(2.0)
    nan[100] = np.nan
    write("nan.wav", nan, subtype="FLOAT")
    write("silent.wav", np.zeros(SR * 2, np.float32))
    tone = _tone(3.0)
    write("cancel.wav", np.stack([tone, -tone]))
    write("long.wav", _tone(60.0))
    write("short.wav", _tone(0.2))
    write("full.wav", _tone(4.0))
    blob = (d / "full.wav").read_bytes()
    out["truncated.wav"] = d / "truncated.wav"
    out["truncated.wav"].write_bytes(blob[: len(blob) // 2])
    out["text.wav"] = d / "text.wav"
    out["text.wav"].write_text("not audio")
    out["afile"] = d / "afile"
    out["afile"].write_text("a file, not a folder")
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


MUSREC = ["edit", "musrec", "{src}", "--source-prompt", SRC_P, "--target-prompt", TGT_P, "--steps", "2",
          "--inject-steps", "1", "--out", "{out}"]
KV = ["edit", "musickv", "{src}", "--source-prompt", SRC_P, "--target-prompt", TGT_P, "--steps", "2",
      "--layers", "single_blocks.0.attn", "--out", "{out}"]


def _with(base, src="piano", out="out.wav", extra=()):
    return [a.replace("{src}", src).replace("{out}", out) for a in base] + list(extra)


# (case, argv template, words the message must contain); "{src}"/"{out}" are filled in per case
CLI_CASES = [
    ("nan", _with(MUSREC, "nan.wav"), ["NaN"]),
    ("silence", _with(MUSREC, "silent.wav"), ["silent"]),
    ("unreadable", _with(MUSREC, "text.wav"), ["cannot read"]),
    ("missing", _with(MUSREC, "missing.wav"), ["not found"]),
    ("truncated", _with(MUSREC, "truncated.wav"), ["truncated"]),
    ("stereo cancels", _with(MUSREC, "cancel.wav"), ["cancel"]),
    ("too long", _with(MUSREC, "long.wav"), ["longer than", "5.12", "--offset"]),
    ("too short", _with(MUSREC, "short.wav"), ["too short"]),
    ("out is the input", _with(MUSREC, out="piano"), ["is the input file"]),
    ("out without extension", _with(MUSREC, out="edited"), ["ending in", ".wav"]),
    ("out below a file", _with(MUSREC, out="afile/x.wav"), ["is a file"]),
    ("report is a file", _with(MUSREC, extra=["--report", "afile"]), ["not a folder"]),
    ("empty target prompt", _with(MUSREC)[:6] + [""] + _with(MUSREC)[7:], ["target prompt is empty"]),
    ("double block for MusRec", _with(MUSREC, extra=["--blocks", "double_blocks.0"]), ["single-stream"]),
    ("block typo", _with(MUSREC, extra=["--blocks", "single_block.1"]), ["Did you mean"]),
    ("nan guidance", _with(MUSREC, extra=["--target-guidance", "nan"]), ["finite"]),
    ("inject steps past the end", _with(MUSREC, extra=["--inject-steps", "9"]), ["inject_steps"]),
    ("negative offset", _with(MUSREC, extra=["--offset", "-1"]), ["offset", ">= 0"]),
    ("zero duration", _with(MUSREC, extra=["--duration", "0"]), ["duration", "> 0"]),
    ("offset past the end", _with(MUSREC, extra=["--offset", "99"]), ["past the end"]),
    ("schedule end past the steps", _with(KV, extra=["--end", "7"]), ["end", "n_steps=2"]),
    ("unknown layer", [a.replace("single_blocks.0.attn", "single_blocks.9.attn") for a in _with(KV)],
     ["Did you mean"]),
    ("generate and audio", _with(KV, extra=["--generate"]), ["not both"]),
    ("invert nan guidance", ["invert", "piano", "--guidance", "nan", "--steps", "2"], ["finite"]),
    ("invert ddim on a flow model", ["invert", "piano", "--solver", "ddim"], ["euler, rf-solver"]),
    ("metrics lengths differ", ["metrics", "piano", "short.wav"], ["lasts", "0.20 s", "--allow-length-mismatch"]),
    ("probe seeds", ["probe-layers", "--seeds", "a,b", "--out", "s.json"], ["integers"]),
    ("probe output", ["probe-layers", "--out", "scores.txt"], [".json"]),
    ("unknown benchmark", ["bench", "musrek"], ["Did you mean 'musrec'"]),
]


@pytest.mark.parametrize("case,argv,words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, argv, words, files, tmp_path, capsys):
    os.chdir(tmp_path)
    names = {**{k: str(v) for k, v in files.items()}, "piano": str(tmp_path / "piano.flac")}
    (tmp_path / "piano.flac").write_bytes(PIANO.read_bytes())
    before = _digest(tmp_path / "piano.flac")
    resolved = [names.get(a, a) for a in argv]
    resolved = [str(files["afile"] / "x.wav") if a == "afile/x.wav" else a for a in resolved]
    assert main(resolved) == 2, case
    err = capsys.readouterr().err
    assert err.startswith("musicprobe: error:") and "Traceback" not in err, err
    for w in words:
        assert w in err, (case, w, err)
    assert _digest(tmp_path / "piano.flac") == before
    assert not any(p.suffix in (".wav", ".json") for p in tmp_path.iterdir()), list(tmp_path.iterdir())


def test_cli_choices_are_refused_by_argparse_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["edit", "musickv", "--generate", "--source-prompt", "a", "--target-prompt", "b", "--curve", "zig",
              "--out", "o.wav"])
    assert e.value.code == 2 and "invalid choice: 'zig'" in capsys.readouterr().err


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "musicprobe.cli.main", "edit", "musrec", str(tmp_path / "none.wav"),
                        "--source-prompt", "a", "--target-prompt", "b", "--out", str(tmp_path / "o.wav")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr


def test_off_rate_input_is_edited_and_written_at_its_own_rate(tmp_path, capsys):
    y, _ = load_audio(PIANO, sr=44100)
    src = tmp_path / "piano44k.wav"
    sf.write(src, y, 44100)
    argv = _with(MUSREC, str(src), str(tmp_path / "e.wav"), ["--json"])
    assert main(argv) == 0
    out, sr = load_audio(tmp_path / "e.wav", sr=None)
    assert sr == 44100 and abs(len(out) / sr - 5.0) < 0.01  # the input's 5 s, not the model's 5.12 s
    assert '"out_sr": 44100' in capsys.readouterr().out
    assert main(argv[:-1] + ["--out-sr", "model"]) == 0
    assert load_audio(tmp_path / "e.wav", sr=None)[1] == 16000


def test_long_files_are_edited_in_a_window_the_user_chooses(files, tmp_path, capsys):
    argv = _with(MUSREC, str(files["long.wav"]), str(tmp_path / "w.wav"),
                 ["--offset", "30", "--duration", "3"])
    assert main(argv) == 0
    out, sr = load_audio(tmp_path / "w.wav", sr=None)
    assert abs(len(out) / sr - 3.0) < 0.01


# ------------------------------------------------------------------------------------------------- the Python API
@pytest.fixture(scope="module")
def editor():
    from conftest import make_tiny_clap, make_tiny_flux

    from musicprobe.editors import MusRec, MusRecConfig

    return MusRec(make_tiny_flux(), MusRecConfig(steps=2, inject_steps=1), clap=make_tiny_clap())


def test_api_rate_and_scaling_are_honoured(editor):
    y = _tone(1.0)
    a = editor.edit(y, "piano", "flute", sr=SR)
    pcm = (y * 32767).astype(np.int16)  # integer PCM is scaled to [-1, 1], not fed in raw
    b = editor.edit(pcm, "piano", "flute", sr=SR)
    scaled = editor.edit(pcm.astype(np.float32) / 32768, "piano", "flute", sr=SR)
    assert np.array_equal(b.edited, scaled.edited) and np.abs(b.source - y).max() < 1e-4 and a.sr == SR
    y44 = _tone(1.0, 44100)
    c = editor.edit(y44, "piano", "flute", sr=44100)  # resampled to the model's 16 kHz, not read as 16 kHz
    assert c.sr == SR and abs(len(c.edited) - SR) < 20
    with pytest.raises(AudioError, match="reach"):
        editor.edit(pcm.astype(np.float32), "piano", "flute", sr=SR)
    with pytest.raises(TypeError, match="sr"):
        editor.edit(y, "piano", "flute")  # the rate is a required keyword


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda ed: ed.edit(_tone(3.0), "piano", "flute", sr=SR), AudioError, ["longer than", "1.02 s"]),
        (lambda ed: ed.edit(_tone(0.2), "piano", "flute", sr=SR), AudioError, ["too short"]),
        (lambda ed: ed.edit(_tone(1.0), "piano", "  ", sr=SR), ConfigError, ["target prompt is empty"]),
        (lambda ed: ed.edit(np.stack([_tone(1.0), -_tone(1.0)]), "p", "f", sr=SR), AudioError, ["cancel"]),
        (lambda ed: ed.edit(np.zeros(SR, np.float32), "p", "f", sr=SR), AudioError, ["silent"]),
    ],
    ids=["too long", "too short", "empty prompt", "stereo cancels", "silence"],
)
def test_api_bad_audio_and_prompts(editor, call, exc, words):
    with pytest.raises(exc) as e:
        call(editor)
    for w in words:
        assert w in str(e.value)


def test_api_configs_refuse_unknown_keys_and_non_finite_numbers():
    from musicprobe.editors import MusicKVConfig, MusRecConfig
    from musicprobe.hooks import InjectionSchedule

    with pytest.raises(ConfigError, match="finite"):
        MusRecConfig(target_guidance=math.nan)
    with pytest.raises(ConfigError, match="did you mean 'inject_steps'"):
        MusRecConfig.from_dict({"inject_step": 3})
    with pytest.raises(ConfigError, match="did you mean 'layer_scale'"):
        MusicKVConfig.from_dict({"layers": ["a"], "schedule": {"layer_scales": {}}})
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        MusRecConfig().replace(step=3)
    assert InjectionSchedule(["x"], curve="constant", end=3, n_steps=5).curve_values() == [1, 1, 1, 0, 0]


def test_api_load_audio_windows_and_truncation(files):
    with pytest.raises(AudioError, match="offset"):
        load_audio(files["full.wav"], offset=-1)
    with pytest.raises(AudioError, match="duration"):
        load_audio(files["full.wav"], duration=-1)
    with pytest.raises(AudioError, match="truncated"):
        load_audio(files["truncated.wav"])
    y, _ = load_audio(files["full.wav"], offset=1.0, duration=2.0)
    assert len(y) == 2 * SR


def test_prompts_cut_or_unknown_are_warned_about():
    from musicprobe.models.text import PromptWarning, check_prompt_tokens

    with pytest.warns(PromptWarning, match="keeps the first 24"):
        info = check_prompt_tokens("a calm piano piece " * 30, 24)
    assert info["kept"] == 24 and info["tokens"] > 24
    with pytest.warns(PromptWarning, match="笛子"):
        check_prompt_tokens("a piece with 笛子", 24)


def test_every_result_says_how_to_reproduce_it(editor):
    import torch

    res = editor.edit(_tone(1.0), "piano", "flute", sr=SR)
    assert res.provenance["threads"] == torch.get_num_threads() and res.provenance["torch"] == torch.__version__
    assert res.config["steps"] == 2 and isinstance(MusicProbeError("x"), Exception)
