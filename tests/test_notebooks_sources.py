"""Each notebook has one readable source beside it (a jupytext percent script) that matches the .ipynb nbval runs."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_its_percent_script_agree(nb_path):
    script = nb_path.with_suffix(".py")
    assert script.exists(), f"{script.name} is missing: run `jupytext --set-formats ipynb,py:percent {nb_path.name}`"
    nb, py = jupytext.read(nb_path), jupytext.read(script)
    cells = [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert cells == [(c.cell_type, c.source.strip()) for c in py.cells], (
        f"{nb_path.name} and {script.name} differ: run `jupytext --sync notebooks/{nb_path.name}`"
    )


def test_every_notebook_is_numbered_and_has_a_fast_parameters_cell():
    assert len(NOTEBOOKS) >= 5
    numbers = [int(p.name[:2]) if re.match(r"\d\d_", p.name) else -1 for p in NOTEBOOKS]
    assert -1 not in numbers and numbers[0] == 0, [p.name for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), numbers  # unique and in order; a number an issue reserves may be free
    for nb_path in NOTEBOOKS:
        nb = jupytext.read(nb_path)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "FAST" in params[0].source, nb_path.name
