"""SteerMusic against the baselines on the trained mini-LDM: the directions of the paper's Table 1 that hold here,
with margins.

Two held-out edits (one instrument, one genre; seeds disjoint from training), the quick settings of
``musicprobe bench steermusic`` (20 DDIM/DDPM steps; 50 DDS iterations at lr 0.015, CFG 50, clean estimates clipped
to the data range). Measured on these pairs: SteerMusic CQT-1 PCC 0.61 and chroma 0.97 against 0.41 / 0.75 for the
next best; LPAPS stand-in 0.33 against 0.60 for the next lowest (SDEdit at 0.5); SDEdit at strength 0.75 keeps the
least (CQT-1 PCC 0.17). On the 16 pairs of the full benchmark (README) three of the paper's four directions hold;
the fourth, mini-CLAP adherence within 0.03 of the best method, does not (0.53 against DDIM's 0.63; on these two
pairs 0.64 against 0.63, too few to assert), so it is not asserted.
"""

from __future__ import annotations

import pytest

from musicprobe.bench.steermusic import paper_direction, steermusic_comparison


@pytest.fixture(scope="module")
def result():
    return steermusic_comparison(n_pairs=2, quick=True, progress=False)


@pytest.fixture(scope="module")
def table(result):
    return result["table"]


def test_the_verdict_reads_each_direction_and_each_kind_of_edit(result):
    row = dict.fromkeys(("cqt1_pcc", "lpaps", "clap_target"), 0.5)
    table = {"SteerMusic": {**row, "cqt1_pcc": 0.9, "clap_target": 0.58}, "DDIM": {**row, "clap_target": 0.6},
             "SDEdit s=0.5": {**row, "cqt1_pcc": 0.1, "lpaps": 0.2}}
    assert paper_direction(table) == {"SteerMusic highest CQT-1 PCC": True, "SteerMusic lowest LPAPS": False,
                                      "SteerMusic CLAP within 0.03 of the best": True,
                                      "SDEdit keeps the least (lowest CQT-1 PCC)": True}
    assert paper_direction({"DDIM": row}) == {}
    by_kind = result["by_kind"]
    assert set(by_kind) == {"instrument", "genre"}  # one pair each: each kind's table is that pair's row
    for label, row in result["table"].items():
        for key in ("cqt1_pcc", "clap_target"):
            assert row[key] == pytest.approx((by_kind["instrument"][label][key] + by_kind["genre"][label][key]) / 2)
    assert result["paper_direction_by_kind"]["genre"] == paper_direction(by_kind["genre"])


def test_steermusic_keeps_the_melody_and_harmony_best(table):
    steer = table["SteerMusic"]
    for label, row in table.items():
        if label != "SteerMusic":
            assert steer["cqt1_pcc"] > row["cqt1_pcc"] + 0.08, (label, steer, row)
            assert steer["chroma"] > row["chroma"] + 0.1, (label, steer, row)


def test_steermusic_has_the_lowest_lpaps(table):
    """Table 1's LPAPS direction, which holds on mini-LDM since DDS clips its clean estimates (16 pairs: 0.29
    against SDEdit 0.5's 0.38; unclipped it was 0.47); measured 0.27 below the next lowest on these two pairs."""
    steer = table["SteerMusic"]
    for label, row in table.items():
        if label != "SteerMusic":
            assert steer["lpaps"] < row["lpaps"] - 0.1, (label, steer, row)


def test_steermusic_still_edits(table):
    """It moves towards the target: adherence above the weakest baseline's, and closer to the true target."""
    steer = table["SteerMusic"]
    assert steer["clap_target"] > table["SDEdit s=0.5"]["clap_target"] + 0.05, table
    assert steer["chroma_ref"] > max(r["chroma_ref"] for k, r in table.items() if k != "SteerMusic") + 0.1, table


def test_sdedit_keeps_the_least_and_less_with_more_strength(table):
    worst = min(table, key=lambda k: table[k]["cqt1_pcc"])
    assert worst.startswith("SDEdit"), table
    assert table["SDEdit s=0.75"]["cqt1_pcc"] < table["SDEdit s=0.5"]["cqt1_pcc"] - 0.1, table
    assert table["SDEdit s=0.75"]["clap_target"] > table["SDEdit s=0.5"]["clap_target"] + 0.1, table
