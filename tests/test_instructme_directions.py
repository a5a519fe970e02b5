"""InstructME on the shipped mini-InstructME: the paper's directions that hold here, with margins.

Two held-out triplets per operation (10 edits; clips from the held-out corpus seed), 20 DDIM steps, instruction
guidance 2: the quick settings of ``musicprobe bench instructme``. Measured on these triplets: instruction
accuracy 0.8 (InstructME) vs 0.4 (SDEdit on mini-LDM told a caption of the true target), CRA against the true
target 0.46 vs 0.26, log-mel distance to it 0.98 vs 1.94, mean peak of the edits 1.19. On 16 triplets per operation
(README) the IA gap is 0.66 vs 0.28, 6 standard errors. Instruction accuracy is binary per edit, so the margin here
is one edit in ten.

Not asserted because they do not hold on the mini models (README): chord conditioning raising CRA (full minus
no-chord -0.015 +- 0.012 per edit; the null chord token moves CRA by 0.003) and multi-scale aggregation raising
PCH / IOI (ties).
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


def test_the_edits_stay_near_the_corpus_level(comparison):
    """DDIM's static thresholding (``x0_clip``) bounds the edits: measured 1.19 on average here (per-edit spread
    0.73 on 80 edits, so about 0.23 on 10), where the unclipped sampler averaged 1.9 (up to 14.6) on 40 edits of
    the first version; the margin is two standard errors."""
    assert comparison["table"]["InstructME"]["peak"] < 1.65, comparison["table"]["InstructME"]
