"""MusicKV on the trained mini-flux: the probe's ranking is causal, with margins.

Two held-out instrument edits (seeds disjoint from training and from the probe set), 12 RF-Solver steps, the
reference code's ramp schedule and source branch, K+V on audio tokens, three layers. The vital layers are the
paper's bypass ranking shipped with the weights (``probing_bypass.json``, checked to belong to these weights);
their control is the bottom three of the same ranking.

What is asserted and why: injecting into the three most vital layers keeps clearly more of the melody than
injecting into the three least vital ones, at a better trade-off (measured here: CQT-1 PCC 0.65 vs 0.54,
chroma 0.97 vs 0.93, trade-off 0.96 vs 0.69). The paper's stronger claim, vital above *random* layers, holds on
the mean of 16 pairs (``musicprobe bench musickv``: trade-off 1.09 vs 0.99) but not on every subset: on the
first 6 pairs at 25 steps random sets scored 1.16 against 1.04, so no CI-sized test can assert it honestly.
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


def test_vital_layers_keep_more_melody_than_the_least_vital_layers(table):
    vital, least = table["vital_bypass"], table["least_bypass"]
    assert vital["cqt1_pcc"] > least["cqt1_pcc"] + 0.06, (vital, least)
    assert vital["chroma"] > least["chroma"] + 0.02, (vital, least)
    assert vital["tradeoff"] > least["tradeoff"] + 0.15, (vital, least)


def test_the_least_vital_layers_carry_no_more_structure_than_random_ones(table):
    least, rand = table["least_bypass"], table["random"]
    assert least["cqt1_pcc"] < rand["cqt1_pcc"] and least["tradeoff"] < rand["tradeoff"], (least, rand)


def test_injection_moves_between_no_injection_and_all_layers(table):
    none, every = table["none"], table["all"]
    assert every["cqt1_pcc"] > none["cqt1_pcc"] and every["clap_target"] < none["clap_target"] - 0.05


# ---- mini-SAO: the paper's own architecture class (self-attention K/V, DPM-Solver++ on Stable Audio's grid) -------
# Measured on the first 2 held-out pairs at 12 steps (bypass-vital / random / least-vital / none / all): chroma
# 0.68 / 0.53 / 0.62 / 0.14 / 0.86, mini-CLAP 0.67 / 0.68 / 0.64 / 0.69 / 0.46; on pairs 3-4 chroma 0.56 / 0.46 /
# 0.41; on 16 pairs at 25 steps (bench musickv --model mini-sao) vital beats random by +0.07 chroma at -0.01
# mini-CLAP. CQT-1 PCC has no robust direction on mini-SAO with the bypass probe (see the README), so it is not
# asserted here.


def test_shipped_mini_sao_scores_belong_to_the_shipped_weights():
    for method in ("bypass", "patching"):
        scores = LayerScores.load(shipped_scores_path(method, "mini-sao"))
        assert scores.settings["model_key"] == model_key(load("mini-sao"))
        assert len(scores.points) == 10 and all(p.endswith(".self_attn") for p in scores.points)


@pytest.fixture(scope="module")
def sao_table():
    return musickv_comparison(n_pairs=2, steps=12, methods=("bypass",), progress=False, model="mini-sao")["table"]


def test_on_mini_sao_vital_self_attention_layers_keep_more_harmony_than_random_ones_at_equal_clap(sao_table):
    vital, rand, least = sao_table["vital_bypass"], sao_table["random"], sao_table["least_bypass"]
    assert vital["chroma"] > rand["chroma"] + 0.08, (vital, rand)
    assert vital["clap_target"] > rand["clap_target"] - 0.03, (vital, rand)
    assert vital["chroma"] > least["chroma"] + 0.03, (vital, least)


def test_on_mini_sao_injection_spans_from_the_plain_edit_to_all_layers(sao_table):
    none, every = sao_table["none"], sao_table["all"]
    assert every["chroma"] > none["chroma"] + 0.5 and every["clap_target"] < none["clap_target"] - 0.1
