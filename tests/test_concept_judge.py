"""The concept judge: fitted from a concept's recordings only, it must hear the concept on the melody of clips it
never saw, and refuse recordings it cannot use."""

import numpy as np
import pytest

from musicprobe.errors import ConfigError
from musicprobe.metrics.concept_judge import auc, concept_judge, judge_mixes, judge_report
from musicprobe.synth.concepts import concept_clips, concept_edits


@pytest.fixture(scope="module")
def clap():
    from musicprobe.zoo import load

    return load("mini-clap")


def test_auc_known_answers():
    assert auc([2, 3], [1, 2]) == pytest.approx(3.5 / 4)  # one tie counts half
    assert auc([5], [1, 2, 3]) == 1.0
    assert auc([0], [1]) == 0.0


def test_fitting_mixes_put_the_concept_over_the_band_at_the_lead_level():
    refs = [c.audio for c in concept_clips("lute", 2)]
    audios, labels = judge_mixes(refs, n_clips=3, seed=11)
    assert list(labels) == [1, 0, 0] * 3
    assert len({a.shape for a in audios}) == 1
    assert all(np.isfinite(a).all() and np.abs(a).max() > 0 for a in audios)
    # the same seed gives the same fitting set; another seed another
    again, _ = judge_mixes(refs, n_clips=3, seed=11)
    other, _ = judge_mixes(refs, n_clips=3, seed=12)
    assert np.array_equal(audios[0], again[0]) and not np.array_equal(audios[0], other[0])


@pytest.mark.parametrize("name, other", [("lute", "marimba"), ("marimba", "lute")])
def test_judge_hears_the_concept_on_held_out_true_targets(clap, name, other):
    refs = concept_clips(name)
    judge = concept_judge(clap, [c.audio for c in refs], refs[0].sr, name)
    edits = concept_edits(name, 6, seed=777)
    report = judge_report(judge, [e.pair.target.audio for e in edits], [e.pair.source.audio for e in edits], 16000,
                          [e.pair.target.audio for e in concept_edits(other, 6, seed=778)])
    # measured on 12 held-out pairs: ROC area 0.99 (lute) / 0.96 (marimba) against the sources, 0.75 / 0.79
    # against the other concept's targets
    assert report["auc_vs_sources"] >= 0.85
    assert report["targets"] > report["sources"] + 0.3
    assert report["auc_vs_others"] > 0.5


def test_judge_takes_any_rate_and_refuses_unusable_recordings(clap):
    import librosa

    refs = [c.audio for c in concept_clips("lute", 3)]
    up = [librosa.resample(r, orig_sr=16000, target_sr=32000) for r in refs]
    a = concept_judge(clap, refs, 16000, n_clips=12)
    b = concept_judge(clap, up, 32000, n_clips=12)
    probe = concept_edits("lute", 2, seed=777)
    pa = a.probability([e.pair.target.audio for e in probe], 16000)
    pb = b.probability([e.pair.target.audio for e in probe], 16000)
    assert np.allclose(pa, pb, atol=0.2)
    with pytest.raises(ConfigError, match="no reference"):
        concept_judge(clap, [], 16000)
    with pytest.raises(ConfigError, match="n_clips must be at least 2"):
        concept_judge(clap, refs, 16000, n_clips=1)
    with pytest.raises(ConfigError, match="silent"):
        concept_judge(clap, [np.zeros(16000, np.float32)], 16000)
