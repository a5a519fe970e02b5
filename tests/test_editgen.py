"""The token family and EditGen on a tiny random mini-MusicGen: delay pattern, the sampling loop, Prompt-to-Prompt
alignment and control (known answers), word maps, configs and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_tiny_musicgen

from musicprobe.editors.editgen import EditGen, EditGenConfig
from musicprobe.editors.p2p import (
    PromptToPrompt,
    changed_words,
    cross_plan,
    depth_alpha,
    needleman_wunsch,
    word_tokens,
)
from musicprobe.errors import ConfigError, MusicProbeError, UnknownNameError
from musicprobe.models.delay import TokenSampling, apply_delay, teacher_forcing, undo_delay


@pytest.fixture(scope="module")
def mg():
    return make_tiny_musicgen()


@pytest.fixture(scope="module")
def tok():
    from musicprobe.models.text import _load

    return _load()[0]


def test_delay_pattern_known_layout_and_round_trip():
    codes = torch.tensor([[[1, 2, 3], [4, 5, 6]]])  # (B=1, K=2, T=3)
    d = apply_delay(codes, pad=9)
    assert d.tolist() == [[[1, 2, 3, 9], [9, 4, 5, 6]]]
    assert torch.equal(undo_delay(d), codes)
    inputs, targets = teacher_forcing(codes, pad=9)
    assert inputs.tolist() == [[[9, 1, 2, 3], [9, 9, 4, 5]]]
    assert targets.tolist() == [[[1, 2, 3, -100], [-100, 4, 5, 6]]]


def test_token_model_protocol(mg):
    from musicprobe.hooks import Probe
    from musicprobe.models.protocols import TokenModel, family_of

    assert isinstance(mg, TokenModel) and family_of(mg) == "token"
    probe = Probe.for_model(mg)
    assert probe.points(kind="cross_attn") == ["layers.0.cross_attn", "layers.1.cross_attn"]


def test_cached_loop_matches_full_recompute(mg):
    """Greedy generation with the key/value cache picks the argmax of the uncached ``step`` at every step."""
    greedy = TokenSampling(top_k=1)
    codes = mg.generate("a piano", seed=0, frames=6, guidance=2.0, sampling=greedy)
    inputs, _ = teacher_forcing(codes, mg.pad_id)
    delayed = apply_delay(codes, mg.pad_id)
    for i in range(delayed.shape[-1]):
        logits = mg.step(inputs[..., : i + 1], "a piano", guidance=2.0)
        for k in range(mg.n_codebooks):
            if delayed[0, k, i] != mg.pad_id:
                assert int(logits[0, k].argmax()) == int(delayed[0, k, i])


def test_same_seed_same_draws_alone_or_in_a_batch(mg):
    both = mg.generate(["a piano", "a flute"], seed=3, frames=8)
    alone = mg.generate("a flute", seed=3, frames=8)
    assert torch.equal(both[1], alone[0])
    assert not torch.equal(mg.generate("a flute", seed=4, frames=8), alone)


def test_independent_rows_keep_the_source_row_and_decouple_the_others(mg):
    """The reference's sampling: row 0 draws as alone with the seed; other rows draw their own noise, so two rows of
    one prompt part (with shared noise they would stay identical)."""
    independent = TokenSampling(rows="independent")
    alone = mg.generate("a piano", seed=3, frames=12)
    both = mg.generate(["a piano", "a piano"], seed=3, frames=12, sampling=independent)
    assert torch.equal(both[0], alone[0])
    assert not torch.equal(both[1], both[0])
    shared = mg.generate(["a piano", "a piano"], seed=3, frames=12)
    assert torch.equal(shared[1], shared[0])
    with pytest.raises(ConfigError, match="rows must be one of"):
        TokenSampling(rows="paired")


def test_gumbel_draw_known_answer_per_row():
    logits = torch.zeros(2, 1, 3)
    gumbel = torch.tensor([[[0.0, 1.0, 0.0]], [[2.0, 0.0, 0.0]]])  # (rows, K, V): each row its own noise
    assert TokenSampling().draw(logits, gumbel).tolist() == [[1], [0]]
    assert TokenSampling().draw(logits, gumbel[0, 0][None]).tolist() == [[1], [1]]  # (K, V): shared


def test_forced_rows_follow_their_codes(mg):
    target = torch.randint(0, 16, (1, 3, 8), generator=torch.Generator().manual_seed(0))
    force = torch.cat([target, torch.full_like(target, -1)])
    out = mg.generate(["a piano", "a flute"], seed=0, frames=8, force=force)
    assert torch.equal(out[0], target[0])
    with pytest.raises(ConfigError, match="force must be"):
        mg.generate(["a"], frames=8, force=target[..., :4])


def test_encode_decode_shapes(mg):
    y = np.random.default_rng(0).standard_normal(mg.n_samples).astype(np.float32) * 0.1
    codes = mg.encode(y, mg.sr)
    assert codes.shape == (1, 3, mg.frames) and codes.dtype == torch.long
    assert mg.decode(codes).shape == (mg.n_samples,)
    assert mg.decode(codes[..., :20]).shape == (20 * mg.config.codec.hop_length,)  # shorter generations decode too
    assert mg.log_mel(codes[..., :20]).shape == (mg.config.codec.n_mels, 20)
    with pytest.raises(ConfigError, match="codes must be"):
        mg.decode(codes[:, :2])


def test_needleman_wunsch_known_alignments():
    assert needleman_wunsch([1, 2, 3], [1, 2, 3]) == [0, 1, 2]
    assert needleman_wunsch([1, 2, 3], [1, 7, 2, 3]) == [0, -1, 1, 2]  # an inserted token is new
    assert needleman_wunsch([1, 2, 3, 4], [1, 9, 3, 4]) == [0, -1, 2, 3]  # a replaced token is new


def test_word_tokens_follow_the_tokenizer(tok):
    wt = word_tokens("a glockenspiel plays", tok, 24)
    ids = tok("a glockenspiel plays")["input_ids"]
    assert [w for w, _ in wt] == ["a", "glockenspiel", "plays"]
    assert wt[0][1] == [1] and wt[-1][1] == [len(ids) - 2]  # [CLS] first, [SEP] last
    assert wt[1][1] == [2, 3, 4, 5, 6]  # g ##lock ##ens ##pie ##l: a word maps to all its pieces


def test_alignment_errors_name_the_words(tok):
    with pytest.raises(ConfigError, match="same number of words.*'a calm piano'.*refine"):
        changed_words("a calm piano", "a flute")
    with pytest.raises(ConfigError, match="nothing to replace"):
        changed_words("a calm piano", "a calm piano")
    with pytest.raises(ConfigError, match=r"words: a, calm, piano\); got 'flute'"):
        cross_plan("reweight", "a calm piano", "a calm piano", tok, 24, word="flute")
    with pytest.raises(ConfigError, match=r"\[-2, 2\]"):
        cross_plan("reweight", "a calm piano", "a calm piano", tok, 24, word="piano", weight=3.0)


def test_depth_alpha_conventions():
    assert [depth_alpha(j, 4, "soft") for j in range(4)] == [0.0, 0.25, 0.5, 0.75]
    assert [depth_alpha(j, 4, "soft", depth="reference") for j in range(4)] == [0.25, 0.5, 0.75, 0.0]
    assert [depth_alpha(j, 4, "hard", cutoff=0.75) for j in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert depth_alpha(3, 4, "none") == 0.0


def test_full_control_with_unit_reweight_reproduces_the_source(mg):
    """Copying every attention probability of the source row (reweight c=1, no blending) makes the edited row
    compute exactly what the source row computes; c=-2 changes its logits; the source row is untouched."""
    from musicprobe.hooks.rows import RowRoles

    ed = EditGen(mg, clap=None)
    p = "a calm piano melody"
    base = EditGenConfig(mode="reweight", word="piano", blending="none", frames=6, seed=1)

    def run(weight: float) -> torch.Tensor:
        seen = []
        ctrl = ed.controller(p, p, base.replace(weight=weight))
        with ed.probe.with_roles(RowRoles(prompts=2, cfg=True)), ed.probe.intervene(ctrl):
            mg.generate([p, p], seed=1, frames=6, logits_hook=lambda i, lg: seen.append(lg.clone()))
        return torch.stack(seen)  # (steps, rows, K, V)

    same, changed = run(1.0), run(-2.0)
    codes, _ = ed.generate_rows([p, p], base.replace(weight=1.0, guidance=1.0))  # without CFG: no uncond half
    assert torch.equal(codes[0], codes[1])
    torch.testing.assert_close(same[:, 1], same[:, 0], atol=1e-5, rtol=0)
    assert (changed[:, 1] - changed[:, 0]).abs().max() > 1e-3
    torch.testing.assert_close(changed[:, 0], same[:, 0], atol=1e-5, rtol=0)
    assert ed.probe.active_hooks() == []


def test_replace_controls_only_the_edited_row(mg):
    ed = EditGen(mg, clap=None)
    c = EditGenConfig(mode="replace", frames=12, seed=2)
    codes, _ = ed.generate_rows(["a calm piano melody", "a calm flute melody"], c)
    free = mg.generate(["a calm piano melody", "a calm flute melody"], seed=2, frames=12)
    assert torch.equal(codes[0], free[0])  # the source row is never edited
    assert ed.probe.active_hooks() == []


def test_probe_is_clean_after_an_error_inside_generation(mg):
    ed = EditGen(mg, clap=None)

    def boom(i, logits):
        raise RuntimeError("boom")

    from musicprobe.hooks.rows import RowRoles

    ctrl = ed.controller("a calm piano", "a calm flute", EditGenConfig())
    with pytest.raises(RuntimeError, match="boom"), ed.probe.with_roles(RowRoles(2, cfg=True)), \
            ed.probe.intervene(ctrl):
        mg.generate(["a calm piano", "a calm flute"], frames=4, logits_hook=boom)
    assert ed.probe.active_hooks() == []
    with pytest.raises(ConfigError, match="with_roles"), ed.probe.intervene(ctrl):
        mg.generate(["a calm piano", "a calm flute"], frames=4)
    assert ed.probe.active_hooks() == []


def test_word_maps_are_attention_over_generated_time(mg, tmp_path):
    ed = EditGen(mg, clap=None)
    maps = ed.word_maps("a calm piano melody", EditGenConfig(frames=10))
    m = maps.maps[0]
    assert maps.words[0] == ["a", "calm", "piano", "melody"]
    assert m.shape == (2, 4, 10 + 3 - 1)  # layers x words x generated steps
    assert (m >= 0).all() and (m.sum(1) <= 1 + 1e-5).all()  # words share at most all of the attention
    back = type(maps).load(maps.save(tmp_path / "maps.json"))
    np.testing.assert_allclose(back.maps[0], m, atol=1e-5)
    assert back.plot().data[0].z.shape == (4, 12)
    with pytest.raises(UnknownNameError, match="Did you mean .piano."):
        maps.word_curve("pianos")


def test_edit_prompts_result_has_editgen_metrics(mg, tmp_path):
    ed = EditGen(mg, clap=None)
    res = ed.edit_prompts("a calm piano melody", "a calm flute melody",
                          config=EditGenConfig(frames=mg.frames, word_maps=True))
    for k in ("melody_acc", "dynamics_onset", "dynamics_rms", "rhythm_f1", "chroma"):
        assert k in res.metrics
    assert res.label == "replace (soft)" and res.trace.prompts[1] == "a calm flute melody"
    back = type(res).load(res.save(tmp_path / "r"))
    assert back.trace.words == res.trace.words


def test_edit_a_given_clip_teacher_forces_the_source(mg):
    y = np.random.default_rng(1).standard_normal(mg.n_samples).astype(np.float32) * 0.1
    res = EditGen(mg, EditGenConfig(mode="refine"), clap=None).edit(
        y, "a calm piano melody", "a calm piano melody with drums", sr=mg.sr)
    assert res.edited.shape == res.source.shape == (mg.n_samples,)
    short = y[: int(0.8 * mg.n_samples)]  # a clip shorter than the window keeps its length
    res = EditGen(mg, EditGenConfig(mode="replace"), clap=None).edit(
        short, "a calm piano melody", "a calm flute melody", sr=mg.sr)
    assert res.edited.shape == res.source.shape == short.shape


@pytest.mark.parametrize("bad, match", [
    ({"mode": "replce"}, "Did you mean .replace."),
    ({"blending": "smooth"}, "blending"),
    ({"weight": 2.5}, r"\[-2, 2\]"),
    ({"cutoff": 0.0}, "cutoff"),
    ({"top_k": 0}, "top_k"),
    ({"guidance": 0.5}, "guidance"),
    ({"row_noise": "paired"}, "rows must be one of"),
])
def test_config_validates(bad, match):
    with pytest.raises(MusicProbeError, match=match):
        EditGenConfig(**bad)


def test_config_json_round_trip():
    c = EditGenConfig(mode="reweight", word="piano", weight=-1.5, blending="hard")
    assert EditGenConfig.from_json(c.to_json()) == c


def test_reweight_needs_the_same_prompt(mg):
    with pytest.raises(ConfigError, match="same source and target prompt"):
        EditGen(mg, clap=None).controller("a piano", "a flute", EditGenConfig(mode="reweight", word="piano"))


def test_p2p_checks_its_arguments():
    from musicprobe.editors.p2p import CrossPlan

    with pytest.raises(ConfigError, match="cross_blend"):
        PromptToPrompt(CrossPlan("none"), cross_blend=2.0)


def test_bench_prompt_pairs_change_one_word_or_reweight_one():
    from musicprobe.bench.editgen import conditions, prompt_pairs, verdict

    pairs = prompt_pairs(8)
    assert [p.kind for p in pairs] == ["instrument", "genre", "mood", "reweight"] * 2
    for p in pairs:
        s, t = p.source.split(), p.target.split()
        if p.kind == "reweight":
            assert p.source == p.target and p.word in s
        else:
            assert len(s) == len(t) and sum(a != b for a, b in zip(s, t)) == 1, p
    assert prompt_pairs(8) == pairs  # reproducible
    assert set(conditions("genre")) == {"no control", "replace soft", "replace hard", "refine soft", "refine hard"}
    row = dict.fromkeys(("clap_target", "clap_audio", "melody_acc", "dynamics_onset", "rhythm_f1"), 0.5)
    table = {"no control": row, **{f"{m} {b}": dict(row) for m in ("replace", "refine") for b in ("soft", "hard")}}
    table["replace soft"]["melody_acc"] = 0.6
    table["replace hard"]["clap_target"] = table["refine hard"]["clap_target"] = 0.7
    v = verdict(table)
    assert v["replace soft keeps melody_acc better than no control"]
    assert not v["replace soft keeps rhythm_f1 better than no control"]  # equal is not better
    assert not v["soft >= hard on text-to-audio CLAP"] and v["soft >= hard on audio-to-audio CLAP"]


def test_bench_paired_differences_known_answer():
    from musicprobe.bench.editgen import paired_differences

    base = [dict(melody_acc=0.1, dynamics_onset=0.0, rhythm_f1=0.5, chroma=0.2),
            dict(melody_acc=0.3, dynamics_onset=0.2, rhythm_f1=0.5, chroma=float("nan"))]
    edit = [dict(melody_acc=0.2, dynamics_onset=0.1, rhythm_f1=0.1, chroma=0.4),
            dict(melody_acc=0.2, dynamics_onset=0.5, rhythm_f1=0.5, chroma=0.1)]
    out = paired_differences({"no control": base, "replace soft": edit, "reweight soft": edit[:1]})
    assert set(out) == {"replace soft"}  # reweight pairs have no re-generation to compare with
    assert out["replace soft"]["melody_acc"] == pytest.approx([0.0, 0.1, 2])
    assert out["replace soft"]["dynamics_onset"] == pytest.approx([0.2, 0.1, 2])
    assert out["replace soft"]["rhythm_f1"] == pytest.approx([-0.2, 0.2, 2])
    assert out["replace soft"]["chroma"] == pytest.approx([0.2, 0.0, 1])  # the NaN pair is left out
