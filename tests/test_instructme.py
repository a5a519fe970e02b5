"""InstructME: triplet data with exact targets, the chunk transformer, chord matrix, the network, the editor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_tiny_instructme, sine

from musicprobe.editors.instructions import parse_instruction
from musicprobe.errors import AudioError, ConfigError, MusicProbeError
from musicprobe.models.chunked import ChunkedSelfAttention, band_mask, window_starts
from musicprobe.synth import make_clip
from musicprobe.synth.captions import instruction
from musicprobe.synth.instruct import (
    OPERATIONS,
    StemState,
    apply,
    operation_choices,
    phrasings,
    random_chain,
    random_triplet,
)


@pytest.fixture(scope="module")
def clip():
    return make_clip(21, genre="pop", lead="flute", mood="happy", duration=5.12)


# ---- data ---------------------------------------------------------------------------------------------------
def test_triplets_have_exact_targets(clip):
    state = StemState.of_clip(clip)
    np.testing.assert_allclose(state.mix, clip.audio, atol=1e-6)
    after, t = apply(state, "remove", track="bass")
    np.testing.assert_allclose(t.source - t.target, clip.rendering.stems["bass"], atol=1e-6)
    _, t = apply(state, "extract", track="chords")
    np.testing.assert_allclose(t.target, clip.rendering.stems["chords"], atol=1e-6)
    _, t = apply(after, "add", track="bass")  # adding back what was removed restores the mix
    np.testing.assert_allclose(t.target, clip.audio, atol=1e-5)
    new, t = apply(state, "replace", track="melody", new="violin")
    for track in ("chords", "bass", "drums"):  # only the replaced track differs
        np.testing.assert_array_equal(new.stems[track], state.stems[track])
    assert not np.allclose(new.stems["melody"], state.stems["melody"])
    assert t.present_after[0] == "violin" and t.args == {"track": "melody", "instrument": "flute", "new": "violin"}


def test_remix_keeps_melody_progression_and_tempo(clip):
    choices = operation_choices(StemState.of_clip(clip), "remix")
    assert choices and all(c["genre"] != "pop" for c in choices)
    after, t = apply(StemState.of_clip(clip), "remix", genre=choices[0]["genre"])
    assert after.plan.genre == choices[0]["genre"] == t.genre_after
    assert after.plan.melody == clip.plan.melody and after.plan.progression == clip.plan.progression
    assert after.plan.tempo == pytest.approx(clip.plan.tempo, abs=0.02) or not (
        0 < after.plan.tempo_pos < 1)  # kept unless the new genre's range forbids it
    assert not np.allclose(t.target, t.source)


def test_phrasings_start_with_the_corpus_instruction_and_parse_back():
    assert phrasings("remove", track="bass", instrument="bass")[0] == instruction("remove", instrument="bass")
    assert phrasings("replace", instrument="piano", new="flute")[0] == instruction(
        "replace", instrument="piano", new_instrument="flute")
    cases = [("add", dict(track="chords", instrument="organ"), ("organ",)), ("add", dict(track="drums"), ("drums",)),
             ("remove", dict(track="drums"), ("drums",)), ("extract", dict(instrument="synth lead"), ("synth lead",)),
             ("replace", dict(instrument="violin", new="trumpet"), ("violin", "trumpet"))]
    for op, kw, names in cases:
        for text in phrasings(op, **kw):
            p = parse_instruction(text)
            assert (p.op, p.instruments) == (op, names), text
    for text in phrasings("remix", genre="reggae"):
        assert parse_instruction(text).genre == "reggae"


@pytest.mark.parametrize("text,words", [
    ("make it louder", ["add / remove / extract / replace / remix", "add drums"]),
    ("add a kazoo", ["does not name an instrument", "piano"]),
    ("remix it", ["names none of", "jazz"]),
    ("replace the piano", ["one to replace it with"]),
    ("   ", ["empty"]),
])
def test_bad_instructions_name_what_exists(text, words):
    with pytest.raises(ConfigError) as e:
        parse_instruction(text)
    for w in words:
        assert w in str(e.value)


def test_random_triplets_and_chains_are_deterministic_and_chain_exactly(clip):
    a = [random_triplet(clip, op, np.random.default_rng(3)) for op in OPERATIONS]
    b = [random_triplet(clip, op, np.random.default_rng(3)) for op in OPERATIONS]
    assert [t.instruction for t in a] == [t.instruction for t in b]
    assert all(np.array_equal(x.target, y.target) for x, y in zip(a, b))
    chain = random_chain(clip, 3, np.random.default_rng(5))
    assert len({t.op for t in chain}) == 3
    for first, second in zip(chain, chain[1:]):
        np.testing.assert_array_equal(first.target, second.source)


# ---- chunk transformer ------------------------------------------------------------------------------------------
def test_window_starts_cover_with_half_overlap():
    assert window_starts(8, 10) == [0]
    assert window_starts(40, 20) == [0, 10, 20]
    assert window_starts(45, 20) == [0, 10, 20, 25]  # the last window flush right
    for w, c in ((79, 10), (158, 20), (33, 8)):
        s = window_starts(w, c)
        covered = np.zeros(w, int)
        for x in s:
            covered[x : x + c] += 1
        assert covered.min() >= 1 and s[-1] + c == w


def _attention_module(dim=16, heads=2):
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    return Attention(dim, heads=heads, dim_head=dim // heads).eval()


def test_chunked_attention_is_plain_attention_on_one_window():
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = _attention_module()
    x = torch.randn(2, 4 * 6, 16)
    with torch.no_grad():
        ours = ChunkedSelfAttention(height=4, chunk=8)(attn, x)
        stock = AttnProcessor2_0()(attn, x)
    torch.testing.assert_close(ours, stock)


def test_chunked_attention_equals_windowed_overlap_add_and_is_local():
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn, height, width, chunk = _attention_module(), 2, 12, 4
    x = torch.randn(1, height * width, 16)
    grid = x.view(1, height, width, 16)
    with torch.no_grad():
        ours = ChunkedSelfAttention(height, chunk)(attn, x).view(1, height, width, 16)
        total, weight = torch.zeros_like(ours), torch.zeros(width)
        tri = torch.tensor([1.0, 2.0, 2.0, 1.0])
        for s in window_starts(width, chunk):  # each window alone through stock attention, then overlap-add
            win = grid[:, :, s : s + chunk].reshape(1, height * chunk, 16)
            out = AttnProcessor2_0()(attn, win).view(1, height, chunk, 16)
            total[:, :, s : s + chunk] += out * tri.view(1, 1, chunk, 1)
            weight[s : s + chunk] += tri
        torch.testing.assert_close(ours, total / weight.view(1, 1, width, 1), rtol=1e-5, atol=1e-5)
        far = grid.clone()
        far[:, :, -1] += 5.0  # a column more than 1.5 windows away cannot reach column 0
        moved = ChunkedSelfAttention(height, chunk)(attn, far.reshape(1, -1, 16)).view(1, height, width, 16)
    torch.testing.assert_close(moved[:, :, :2], ours[:, :, :2])
    assert not torch.allclose(moved[:, :, -1], ours[:, :, -1])


def test_band_mask_aligns_columns_with_chord_frames():
    m = band_mask(height=2, width=4, frames=4, band=0)
    assert torch.equal(m[:4], torch.eye(4, dtype=torch.bool)) and torch.equal(m[4:], m[:4])
    m = band_mask(height=1, width=8, frames=4, band=0)  # two columns per chord frame
    assert m.sum(1).tolist() == [1] * 8 and m.float().argmax(1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


# ---- chord matrix -----------------------------------------------------------------------------------------------
def test_chord_matrix_known_answers():
    from musicprobe.metrics.harmony import CHORD_CLASSES, chord_matrix

    sr = 16000
    c_major = sine(261.63, 2.0) + sine(329.63, 2.0) + sine(392.0, 2.0)
    a_minor = sine(220.0, 2.0) + sine(261.63, 2.0) + sine(329.63, 2.0)
    y = np.concatenate([c_major, a_minor, np.zeros(sr, np.float32)])
    m = chord_matrix(y, sr, step=0.5, n_steps=10)
    assert m.shape == (len(CHORD_CLASSES), 10)
    np.testing.assert_allclose(m.sum(0), 1.0, atol=1e-5)
    labels = [CHORD_CLASSES[i] for i in m.argmax(0)]
    assert labels[1:3] == ["C:maj", "C:maj"] and labels[5:7] == ["A:min", "A:min"] and labels[-1] == "N"


# ---- the network --------------------------------------------------------------------------------------------
def test_network_conditions_on_source_chords_and_instruction():
    ime = make_tiny_instructme()
    net = ime.network
    x, src = torch.randn(1, 16, 16, 16), torch.randn(1, 16, 16, 16)
    text = ime.encode_prompt("add drums")
    chords = torch.rand(1, 37, 4)
    with torch.no_grad():
        base = net(x, torch.tensor([500]), src, text, chords)
        assert base.shape == x.shape
        for other in (net(x, torch.tensor([500]), src + 1, text, chords),
                      net(x, torch.tensor([500]), src, ime.encode_prompt("remove the bass"), chords),
                      net(x, torch.tensor([500]), src, text, torch.rand(1, 37, 4))):
            assert not torch.allclose(other, base)
        null = net(x, torch.tensor([500]), src, text, None)
        dropped = net(x, torch.tensor([500]), src, text, chords, drop_chords=torch.tensor([True]))
    torch.testing.assert_close(dropped, null)
    with pytest.raises(ConfigError, match="columns"):
        net(x, torch.tensor([500]), src, text, torch.rand(1, 37, 5))


def test_ablations_change_the_architecture():
    no_msa = make_tiny_instructme(multiscale=False)
    assert no_msa.network.source is None and no_msa.network.unet.config.in_channels == 32
    no_chord = make_tiny_instructme(chord=False)
    assert not hasattr(no_chord.network, "chord_proj")
    procs = no_chord.network.unet.attn_processors
    assert all(type(p).__name__ != "ChordCrossAttention" for p in procs.values())
    with torch.no_grad():  # chords are ignored without chord conditioning
        x = torch.randn(1, 16, 16, 16)
        t = no_chord.encode_prompt("add drums")
        a = no_chord.network(x, torch.tensor([10]), x, t, torch.rand(1, 37, 4))
        b = no_chord.network(x, torch.tensor([10]), x, t, None)
    torch.testing.assert_close(a, b)


def test_chords_in_the_up_path_start_closed_and_fine_tune_from_an_export(tmp_path):
    """``chord_up`` adds chord attention to every up block: initialised from a bottleneck-only export it predicts
    exactly what the export does (its output projections at zero); opened, the up path hears the chords."""
    from musicprobe.models.miniinstructme import MiniInstructME
    from musicprobe.zoo.trainer import initialise_from

    make_tiny_instructme().save(tmp_path / "base")
    base = MiniInstructME.load(tmp_path / "base")  # as exported (fp16 weights)
    up = make_tiny_instructme(seed=1, chord_up=True)
    gated = {n: type(p).__name__ for n, p in up.network.unet.attn_processors.items() if n.startswith("up_blocks")}
    assert gated and {v for k, v in gated.items() if ".attn2." in k} == {"GatedChordCrossAttention"}
    meta = initialise_from(up.network, tmp_path / "base", log=lambda *_: None)
    assert meta["new_tensors"] and all(".chord_" in k for k in meta["new_tensors"])
    x, src, t = torch.randn(1, 16, 16, 16), torch.randn(1, 16, 16, 16), torch.tensor([500])
    text, chords, other = base.encode_prompt("add drums"), torch.rand(1, 37, 4), torch.rand(1, 37, 4)
    with torch.no_grad():
        torch.testing.assert_close(up.network(x, t, src, text, chords), base.network(x, t, src, text, chords),
                                   rtol=0, atol=0)
        for m in up.network.unet.modules():
            if hasattr(m, "chord_out"):
                torch.nn.init.normal_(m.chord_out.weight, std=0.2, generator=torch.Generator().manual_seed(0))
        mid_only = base.network(x, t, src, text, other) - base.network(x, t, src, text, chords)
        with_up = up.network(x, t, src, text, other) - up.network(x, t, src, text, chords)
    assert with_up.abs().max() > 2 * mid_only.abs().max()  # measured 4x on this random network
    with pytest.raises(ConfigError, match="do not fit this network"):
        initialise_from(make_tiny_instructme(block_out_channels=(32, 32, 32)).network, tmp_path / "base")
    with pytest.raises(ConfigError, match="needs chord=True"):
        make_tiny_instructme(chord=False, chord_up=True)


def test_the_up_paths_chord_attention_learns_from_its_first_step():
    """The zero output projection gets a gradient at once (a zero scalar gate in front of random features did not:
    the keys / values get none while it is zero and its own gradient averaged out); after one step the keys and
    values get theirs too."""
    ime = make_tiny_instructme(chord_up=True)
    x, src, t = torch.randn(2, 16, 16, 16), torch.randn(2, 16, 16, 16), torch.tensor([500, 700])
    text, chords = ime.encode_prompt(["add drums", "remove the bass"]), torch.rand(2, 37, 4)
    outs = [m for m in ime.network.modules() if hasattr(m, "chord_out")]
    assert outs and all(not m.chord_out.weight.detach().any() for m in outs)

    def step():
        ime.network.zero_grad(set_to_none=False)
        ime.network(x, t, src, text, chords).pow(2).mean().backward()

    step()
    assert all(float(m.chord_out.weight.grad.abs().max()) > 0 for m in outs)
    assert all(float(m.chord_v.weight.grad.abs().max()) == 0 for m in outs)
    with torch.no_grad():
        for m in outs:
            m.chord_out.weight -= 0.1 * m.chord_out.weight.grad
    step()
    assert all(float(m.chord_v.weight.grad.abs().max()) > 0 for m in outs)


def test_the_unet_hooks_like_any_unet_and_capture_leaves_the_output_unchanged():
    from musicprobe.hooks import Probe

    ime = make_tiny_instructme()
    probe = Probe.for_model(ime)
    names = probe.points(kind="self_attn")
    assert "down.1.layer0.self_attn" in names and "mid.0.layer0.self_attn" in names
    x = torch.randn(1, 16, 16, 16)
    args = (x, torch.tensor([300]), x * 0.5, ime.encode_prompt("add drums"), torch.rand(1, 37, 4))
    with torch.no_grad():
        stock = ime.network(*args)
        with probe.capture(["down.1.layer0.self_attn.hook_pattern", "mid.0.layer0.cross_attn.hook_pattern"]) as c:
            hooked = ime.network(*args)
    torch.testing.assert_close(hooked, stock, rtol=0, atol=0)
    chord_map = c["mid.0.layer0.cross_attn.hook_pattern"]
    assert chord_map.shape[-1] == 4  # the bottleneck attends to the 4 chord frames, not to text


# ---- the editor -------------------------------------------------------------------------------------------------
def test_editor_keeps_length_is_seeded_and_edits_long_clips_in_one_pass():
    from musicprobe.editors.instructme import InstructME, InstructMEConfig

    ime = make_tiny_instructme()
    ed = InstructME(ime, InstructMEConfig(steps=2), clap=None)
    y = make_clip(4, duration=1.5).audio
    a = ed.edit(y, "add drums", sr=16000)
    b = ed.edit(y, "add drums", sr=16000)
    assert len(a.edited) == len(y) and np.array_equal(a.edited, b.edited)
    assert a.provenance["instruction"] == {"op": "add", "instruments": ["drums"], "genre": ""}
    c = ed.edit(y, "add drums", sr=16000, config=InstructMEConfig(steps=2, seed=1))
    assert not np.array_equal(a.edited, c.edited)
    long = np.tile(y, 4)  # 6 s: 6x the tiny model's training window, one pass
    r = ed.edit(long, "remove the bass", sr=16000, reference=long)
    assert len(r.edited) == len(long) and {"cra", "pch", "ioi", "cra_source"} <= set(r.metrics)


def test_the_bound_editor_clips_its_clean_estimates_to_the_data_range():
    """The source-bound model declares mini-LDM's latent range, so the shared DDIM sampler thresholds InstructME's
    clean estimates (sampled latents stay inside it); ``x0_clip=False`` walks unclipped."""
    from musicprobe.inversion import Sampler

    ime = make_tiny_instructme()
    y = make_clip(4, duration=1.5).audio
    z = ime.encode(y, 16000)
    bound = ime.bind(z, ime.chords(y, 16000, z.shape[-1] // 4))
    lo, hi = bound.x0_range
    assert (lo, hi) == ime.x0_range == ime.codec.standard_range()
    clipped = Sampler(bound, "ddim", 3, 2.0).sample(bound.noise(0), "add drums").final
    raw = Sampler(bound, "ddim", 3, 2.0, x0_clip=False).sample(bound.noise(0), "add drums").final
    assert float(clipped.min()) >= lo - 1e-5 and float(clipped.max()) <= hi + 1e-5
    assert not torch.allclose(clipped, raw)


def test_editor_refuses_bad_input_before_running():
    from musicprobe.editors.instructme import InstructME, InstructMEConfig

    ed = InstructME(make_tiny_instructme(), InstructMEConfig(steps=1, max_seconds=3.0), clap=None)
    y = make_clip(4, duration=1.5).audio
    with pytest.raises(ConfigError, match="trained on"):
        ed.edit(y, "make it louder", sr=16000)
    with pytest.raises(AudioError, match="max_seconds"):
        ed.edit(np.tile(y, 3), "add drums", sr=16000)
    with pytest.raises(AudioError, match="silent|silence"):
        ed.edit(np.zeros(16000, np.float32), "add drums", sr=16000)
    with pytest.raises(MusicProbeError, match="bind"):
        ed.model.eps(torch.zeros(1, 16, 16, 16), 10, "add drums")


def test_instruction_correct_truth_table():
    from musicprobe.metrics.presence import instruction_correct

    add = {"track": "drums", "instrument": "drums"}
    assert instruction_correct("add", add, {"piano", "drums"}) and not instruction_correct("add", add, {"piano"})
    assert instruction_correct("remove", add, {"piano"}) and not instruction_correct("remove", add, {"drums"})
    ext = {"track": "melody", "instrument": "flute"}
    assert instruction_correct("extract", ext, {"flute"}) and not instruction_correct("extract", ext, {"flute", "bass"})
    rep = {"track": "melody", "instrument": "flute", "new": "violin"}
    assert instruction_correct("replace", rep, {"violin", "bass"})
    assert not instruction_correct("replace", rep, {"violin", "flute"})
    assert instruction_correct("remix", {"genre": "jazz"}, set(), "jazz")
    assert not instruction_correct("remix", {"genre": "jazz"}, set(), "rock")


def test_layer_probing_runs_on_a_bound_source():
    """A bound mini-InstructME is an epsilon model: the bypass probe ranks its attention layers (4-D UNet latents;
    this once broke the probe's latent-change score)."""
    from conftest import make_tiny_clap

    from musicprobe.probing import probe_layers

    ime = make_tiny_instructme()
    y = make_clip(4, duration=1.0).audio
    z = ime.encode(y, 16000)
    bound = ime.bind(z, ime.chords(y, 16000, z.shape[-1] // 4))
    scores = probe_layers(bound, make_tiny_clap(), prompts=("add drums", "remove the bass"), steps=2)
    assert "mid.0.layer0.self_attn" in scores.points and np.isfinite(scores.score).all()
    assert scores.score.max() > 0


def test_bench_verdict_reads_the_issue_and_the_paper():
    from musicprobe.bench.instructme import verdict

    row = dict(ia=0.5, cra=0.5, pch=0.5, ioi=0.5, fad=0.1)
    table = {"InstructME": dict(row, cra=0.6, pch=0.7), "w/o chord": dict(row), "SDEdit": dict(row, ia=0.2),
             "w/o MSA": dict(row, pch=0.8, fad=0.2)}
    v = verdict(table)
    assert v["chord conditioning raises CRA"] and v["chord conditioning raises PCH (paper's Table 4)"]
    assert not v["chord conditioning raises IOI (paper's Table 4)"]  # equal is not raised
    assert not v["MSA raises PCH (issue)"] and not v["MSA raises IOI (issue)"]
    assert v["MSA lowers FAD (paper's Table 4)"] and v["trained editor beats zero-shot on IA"]
    assert verdict({"w/o chord": row}) == {}


def test_paired_difference_known_answer():
    from musicprobe.bench.paired import paired_difference

    a = [dict(cra=0.5, ia=1.0), dict(cra=0.7, ia=float("nan")), dict(cra=0.2, ia=0.0)]
    b = [dict(cra=0.4, ia=0.0), dict(cra=0.4, ia=1.0), dict(cra=0.2, ia=0.0)]
    out = paired_difference(a, b, ["cra", "ia"])
    assert out["cra"] == pytest.approx([0.4 / 3, np.std([0.1, 0.3, 0.0]), 3])
    assert out["ia"] == pytest.approx([0.5, 0.5, 2])
    with pytest.raises(ValueError, match="3 rows against 2"):
        paired_difference(a, b[:2], ["cra"])
