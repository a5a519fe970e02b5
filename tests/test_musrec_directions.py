"""MusRec on the trained mini-flux: the trade-off directions the paper reports, with margins, on fixed seeds.

Three held-out instrument edits (seeds disjoint from training), 25 RF-Solver steps, K+V/V/K injection into the
single-stream blocks. ``musicprobe bench musrec`` runs the same sweep on 16 pairs.
"""

from __future__ import annotations

import pytest

from musicprobe.bench.musrec import musrec_sweep


@pytest.fixture(scope="module")
def sweep():
    variants = [("none", 0), ("k", 5), ("v", 5), ("kv", 2), ("kv", 5), ("kv", 10)]
    return musrec_sweep(n_pairs=3, variants=variants, progress=False)["table"]


def test_v_and_kv_preserve_the_melody_better_than_k_and_no_injection(sweep):
    for better in ("v@5", "kv@5"):
        for worse in ("k@5", "none@0"):
            assert sweep[better]["chroma"] > sweep[worse]["chroma"] + 0.05, (better, worse)


def test_longer_injection_preserves_more_and_edits_less(sweep):
    chroma = [sweep[f"kv@{s}"]["chroma"] for s in (2, 5, 10)]
    clap = [sweep[f"kv@{s}"]["clap_target"] for s in (2, 5, 10)]
    assert chroma[0] < chroma[1] < chroma[2], chroma
    assert clap[0] > clap[1] > clap[2], clap
    assert sweep["none@0"]["clap_target"] > sweep["kv@10"]["clap_target"] + 0.1
