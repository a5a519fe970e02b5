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
    assert main(["demo", "--fast", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert html.count("<audio") >= 3 and "plotly" in html.lower()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = next(iter(metrics["pairs"].values()))["metrics"]
    ideal, unrelated = rows["ideal edit (true target)"], rows["unrelated clip"]
    assert ideal["chroma_similarity"] > unrelated["chroma_similarity"]


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
