"""Personalised editing on the trained mini-LDM and its bundled concepts: the directions that hold, with margins.

Measured (3 seeds, 20 DDIM steps with static thresholding, CFG 4, "a calm pop piece with sks <class> playing the
melody"): the CDPAM stand-in of the base model's generations is 1.06 (lute) / 1.23 (marimba); the concept models'
at 50 / 100 / 200 fine-tuning steps 0.52 / 0.38 / 0.14 (lute) and 1.03 / 0.89 / 0.82 (marimba); the
textual-inversion token 0.41 / 0.38. (Without thresholding: 1.02 / 1.16; 0.43 / 0.35 / 0.13 and 0.88 / 0.68 /
0.58; 0.44 / 0.38.) The editing directions of SteerMusic+'s Table 2 are measured by ``musicprobe bench steermusic-plus``
(README); the ones that hold there are asserted below on few sources with margins from its per-edit spread.
"""

from __future__ import annotations

import numpy as np
import pytest

from musicprobe.inversion import generate_latents
from musicprobe.metrics.clap import concept_distance
from musicprobe.metrics.concept_judge import concept_judge
from musicprobe.zoo import load, load_concept

SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def base():
    return load("mini-ldm")


def generated(model, concept) -> list[np.ndarray]:
    prompt = f"a calm pop piece with {concept.concept.instance_phrase} playing the melody"
    z = generate_latents(model, [prompt] * len(SEEDS), SEEDS, steps=20, guidance=4.0)
    return [model.decode(z[i : i + 1]).reshape(-1) for i in range(len(SEEDS))]


@pytest.mark.parametrize("name", ["lute", "marimba"])
def test_fine_tuning_teaches_the_concept_and_more_steps_teach_more(base, name):
    clap = load("mini-clap")
    concept = load_concept(name, base)
    refs = concept.reference()
    audio = {s: generated(concept.model(s), concept) for s in (50, 200)}
    audio["base"] = generated(base, concept)
    audio["ti"] = generated(concept.token_model(), concept)
    d = {k: float(np.mean(concept_distance(clap, a, base.sr, refs.audio, refs.sr))) for k, a in audio.items()}
    assert d[50] < d["base"] - 0.12, d  # measured 0.54 (lute), 0.20 (marimba)
    assert d["ti"] < d["base"] - 0.25, d  # measured 0.65, 0.85
    assert d[200] < d[50] - 0.15, d  # measured 0.38 (lute), 0.21 (marimba)
    if name == "lute":
        # the concept judge, which listens for the lead, hears the lute in the fine-tuned model's mixes
        # (measured 0.67 at 200 steps against 0.00 for the base model, 0.97 against 0.10 without thresholding;
        # for the marimba it hears nothing from either, see the README)
        judge = concept_judge(clap, refs.audio, refs.sr, name)
        heard = {k: float(np.mean(judge.probability(audio[k], base.sr))) for k in (200, "base")}
        assert heard[200] > heard["base"] + 0.5, heard
