"""InstructME on the shipped mini-InstructME: the paper's directions that hold here, with margins.

Two held-out triplets per operation (10 edits; clips from the held-out corpus seed), 20 DDIM steps, instruction
guidance 2: the quick settings of ``musicprobe bench instructme``. Measured on these triplets: instruction
accuracy 0.6 (InstructME) vs 0.4 (SDEdit on mini-LDM told a caption of the true target), CRA against the true
target 0.43 vs 0.26, log-mel distance to it 1.13 vs 1.94. On 16 triplets per operation (README) the IA gap is
0.56 vs 0.28, 3.5 standard errors. Instruction accuracy is binary per edit, so the margin here is one edit in ten.

Not asserted because they do not hold on the mini models (README): chord conditioning raising CRA (0.373 vs 0.361
without, inside the spread; the null chord token changes the prediction by < 1e-5) and multi-scale aggregation
raising PCH / IOI / lowering FAD (ties to two decimals).
"""

from __future__ import annotations

import pytest

from musicprobe.bench.instructme import instructme_comparison


@pytest.fixture(scope="module")
def comparison():
    return instructme_comparison(per_op=2, steps=20, progress=False,
                                 conditions=("InstructME", "SDEdit", "source (no edit)", "target via codec"))


def test_the_reference_rows_bracket_what_an_editor_can_score(comparison):
    """Handing back the source does not do what was asked; the true target through the codec does, and sits
    nearest the target (what the codec leaves of it is the ceiling of any model on this latent)."""
    table = comparison["table"]
    source, ceiling = table["source (no edit)"], table["target via codec"]
    assert source["ia"] <= 0.2 and ceiling["ia"] >= 0.8, (source, ceiling)
    assert ceiling["mel_dist"] < 0.3 < source["mel_dist"] - 0.5, (source, ceiling)
    assert ceiling["cra"] > max(source["cra"], table["InstructME"]["cra"]), table


def test_the_judge_accepts_the_true_targets(comparison):
    """Instruction accuracy means something only if the true targets pass it."""
    assert comparison["probe_ia_of_true_targets"] >= 0.8, comparison["probe_ia_of_true_targets"]


def test_the_trained_editor_follows_instructions_more_often_than_zero_shot(comparison):
    table = comparison["table"]
    assert table["InstructME"]["ia"] >= table["SDEdit"]["ia"] + 0.1, table


def test_the_trained_editor_lands_nearer_the_true_target(comparison):
    """Trained on exact targets, it keeps what the instruction leaves alone: the chords and the log-mel of the
    true target, where SDEdit re-generates the whole clip from the caption."""
    ime, sd = comparison["table"]["InstructME"], comparison["table"]["SDEdit"]
    assert ime["cra"] > sd["cra"] + 0.08, (ime, sd)
    assert ime["mel_dist"] < sd["mel_dist"] - 0.3, (ime, sd)
