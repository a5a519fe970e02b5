import json
import re
import tomllib
from pathlib import Path

import yaml

from musicprobe.cli.main import main
from musicprobe.data import edit_pairs, list_samples, load_sample, verify

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_samples_match_their_checksums_and_size_limit():
    result = verify()
    assert result and all(result.values())
    size = sum(f.stat().st_size for f in (ROOT / "data_samples").rglob("*") if f.is_file())
    assert size < 10e6
    assert len(list_samples()) >= 8
    assert {p.kind for p in edit_pairs()} == {"instrument", "genre", "mood"}
    s = load_sample("pop_piano")
    assert s.sr == 16000 and s.meta["instruments"]["melody"] == "piano" and s.audio.size == 80000


def test_demo_writes_report_and_metrics(tmp_path, capsys):
    """The main job: a MusRec edit with four variants, an attention map and the inversion error curve."""
    assert main(["demo", "--fast", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert html.count("<audio") >= 6 and "plotly" in html.lower() and "audio-to-audio attention" in html
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = metrics["metrics"]
    assert set(rows) == {"true target (ideal edit)", "no injection", "K x 3", "V x 3", "KV x 3"}
    ideal = rows["true target (ideal edit)"]
    assert ideal["chroma_ref"] == 1.0 and ideal["clap_target"] > ideal["clap_source"] + 0.3  # mini-CLAP hears flute
    inv = metrics["inversion"]
    assert inv["rf-solver"]["nfe"] == inv["euler"]["nfe"] and inv["rf-solver"]["mel_mse"] < inv["euler"]["mel_mse"]
    for name in ("source.wav", "true_target.wav", "edit_none.wav", "edit_kv.wav"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_unknown_benchmark_is_a_clear_error(capsys):
    assert main(["bench", "synht"]) == 2
    assert "Did you mean 'synth'" in capsys.readouterr().err


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted
    assert not any(re.match(r"torchaudio", p) for p in listed)


def test_readme_has_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
