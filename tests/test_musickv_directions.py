"""MusicKV on the trained mini-flux: vital layers beat random layers of the same count, with margins.

Two held-out instrument edits (seeds disjoint from training and from the probe set), 12 RF-Solver steps, the
reference code's ramp schedule and source branch, K+V on audio tokens, three layers. The vital layers are the
paper's bypass ranking shipped with the weights (``probing_bypass.json``, checked to belong to these weights).
``musicprobe bench musickv`` runs the same comparison on 16 pairs and 25 steps.
"""

from __future__ import annotations

import pytest

from musicprobe.bench.musickv import musickv_comparison
from musicprobe.probing import LayerScores, model_key, shipped_scores_path
from musicprobe.zoo import load


def test_shipped_probing_scores_belong_to_the_shipped_weights():
    scores = LayerScores.load(shipped_scores_path("bypass"))
    assert scores.settings["model_key"] == model_key(load("mini-flux"))
    assert len(scores.points) == 8 and scores.seeds == [0] * 4 + [1] * 4


@pytest.fixture(scope="module")
def table():
    return musickv_comparison(n_pairs=2, steps=12, methods=("bypass",), progress=False)["table"]


def test_vital_layers_keep_more_melody_than_random_layers_at_similar_adherence(table):
    vital, rand = table["vital_bypass"], table["random"]
    assert vital["cqt1_pcc"] > rand["cqt1_pcc"] + 0.05, (vital, rand)
    assert vital["chroma"] > rand["chroma"] + 0.03, (vital, rand)
    assert vital["clap_target"] > rand["clap_target"] - 0.05, (vital, rand)  # 16 pairs: -0.02
    assert vital["tradeoff"] > rand["tradeoff"] + 0.2 and vital["tradeoff"] > 1.0


def test_injection_moves_between_no_injection_and_all_layers(table):
    none, every = table["none"], table["all"]
    assert every["cqt1_pcc"] > none["cqt1_pcc"] and every["clap_target"] < none["clap_target"] - 0.05
