"""The hook system on every architecture's tiny model: parity, injection, swaps, cleanup, memory, maths."""

import gc
import math
import weakref

import pytest
import torch

from musicprobe.errors import ConfigError, MusicProbeError, UnknownNameError
from musicprobe.hooks import InjectionSchedule, Probe, RowRoles, attention_probs
from musicprobe.models import TINY_MODELS, tiny_model

ARCHS = list(TINY_MODELS)


@pytest.fixture(scope="module", params=ARCHS)
def tm(request):
    return tiny_model(request.param)


def run(tm, prompt="A", **kw):
    return tm(**tm.make_inputs(prompt, **kw))


def all_hooks_clean(model: torch.nn.Module) -> bool:
    for m in model.modules():
        hooked = m._forward_hooks or m._forward_pre_hooks or m._forward_hooks_with_kwargs
        if hooked or hasattr(m, "_musicprobe_handlers"):
            return False
    return True


def test_capture_everything_keeps_the_stock_output_exactly(tm):
    stock = run(tm)
    probe = Probe(tm.model)
    with probe.capture(probe.hook_names(), heads="all", dtype=torch.float32) as cache:
        out = run(tm)
    assert torch.equal(out, stock)
    assert len(cache.names()) == len(probe.hook_names())
    assert probe.active_hooks() == [] and all_hooks_clean(tm.model)


def test_captured_probabilities_match_an_independent_softmax_and_the_output(tm):
    probe = Probe(tm.model)
    names = [
        f"{p}.{q}"
        for p in probe.points(kind="attention")
        for q in ("hook_q", "hook_k", "hook_v", "hook_pattern", "hook_out")
    ]
    with probe.capture(names, heads="all", dtype=torch.float32) as cache:
        run(tm)
    for point in probe.points(kind="attention"):
        q, k, v = (cache[f"{point}.hook_{x}"] for x in "qkv")
        probs = cache[f"{point}.hook_pattern"]
        if k.shape[1] != q.shape[1]:  # grouped KV heads
            k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if tm.name == "musicgen" and point.endswith("self_attn"):
            L, S = scores.shape[-2:]
            scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
        expected = torch.softmax(scores, -1)
        assert torch.allclose(probs, expected, atol=1e-6), point
        assert torch.allclose(probs @ v, cache[f"{point}.hook_out"], atol=1e-5), point  # the model's own output


def test_injecting_a_runs_own_kv_reproduces_it_and_other_kv_changes_it(tm):
    probe = Probe(tm.model)
    layers = probe.points(kind="attention")
    with probe.record_kv(layers) as store:
        a = run(tm, "A")
    b = run(tm, "B", seed=1)
    sched = InjectionSchedule(layers=layers, kind="kv", n_steps=1)
    with probe.inject(store, sched):
        a_again = run(tm, "A")
        probe.reset_state()  # MusicGen counts decoder calls as steps: start the second run at step 0 again
        b_injected = run(tm, "B", seed=1)
    assert torch.allclose(a_again, a, atol=1e-6)
    assert not torch.allclose(b_injected, b, atol=1e-4)
    assert all_hooks_clean(tm.model)


def test_text_enters_only_through_kv_so_a_full_swap_reproduces_prompt_a(tm):
    probe = Probe(tm.model)
    kind = "joint_attn" if tm.name == "flux" else "cross_attn"
    layers = probe.points(kind=kind)
    with probe.record_kv(layers) as store:
        a = run(tm, "A")
    b = run(tm, "B")
    assert not torch.allclose(a, b, atol=1e-4)
    with probe.inject(store, InjectionSchedule(layers=layers, n_steps=1)):
        swapped = run(tm, "B")
    assert torch.allclose(swapped, a, atol=1e-6)


def test_blend_weight_interpolates_between_runs():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    layers = probe.points(kind="cross_attn")
    with probe.record_kv(layers) as store:
        a = run(tm, "A")
    b = run(tm, "B")
    dists = []
    for w in (0.0, 0.5, 1.0):
        with probe.inject(store, InjectionSchedule(layers=layers, strength=w, n_steps=1)):
            dists.append((run(tm, "B") - a).abs().max().item())
    assert dists[0] == pytest.approx((b - a).abs().max().item(), rel=1e-5)
    assert dists[0] > dists[1] > dists[2] and dists[2] < 1e-6


def test_audio_only_injection_keeps_the_edit_text_keys():
    tm = tiny_model("flux")
    probe = Probe(tm.model)
    layer = "single_blocks.0.attn"
    with probe.record_kv([layer]) as store:
        run(tm, "A")
    with probe.capture([f"{layer}.hook_k"], heads="all", dtype=torch.float32) as own:
        run(tm, "B")
    sched = InjectionSchedule(layers=[layer], kind="k", tokens="audio", n_steps=1)
    with probe.inject(store, sched), probe.capture([f"{layer}.hook_k"], heads="all", dtype=torch.float32) as cache:
        run(tm, "B")
    k = cache[f"{layer}.hook_k"]
    text_len = 6
    src_k = next(iter(store.data.values()))[0]
    assert torch.allclose(k[:, :, :text_len], own[f"{layer}.hook_k"][:, :, :text_len])
    assert torch.allclose(k[:, :, text_len:], src_k[:, :, text_len:])


def test_cfg_branch_selection_follows_each_familys_batch_order():
    for name, cond_half in (("stable_audio", 1), ("musicgen", 0)):
        tm = tiny_model(name)
        probe = Probe(tm.model)
        hook = f"{probe.points(kind='cross_attn')[0]}.hook_pattern"
        with probe.capture([hook], branch="all", dtype=torch.float32) as full:
            run(tm, batch=2)
        with probe.capture([hook], branch="cond", dtype=torch.float32) as cond:
            run(tm, batch=2)
        rows = full[hook].shape[0] // 2
        sel = slice(cond_half * rows, (cond_half + 1) * rows)
        assert torch.equal(cond[hook], full[hook][sel])
        with pytest.raises(MusicProbeError, match="CFG-doubled"), probe.capture([hook], branch="cond"):
            run(tm, batch=1 if name != "musicgen" else 1, n_tokens=3) if name == "musicgen" else run(tm, batch=1)


def test_steps_are_tracked_from_the_timestep_and_reduced_on_request():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    hook = "blocks.0.self_attn.hook_pattern"
    with (
        probe.capture([hook], dtype=torch.float32) as per_step,
        probe.capture([hook], reduce_steps=True, dtype=torch.float32) as mean,
    ):
        outs = []
        for t in (0.9, 0.5, 0.1):
            x = tm.make_inputs("A")
            x["timestep"] = torch.full((1,), t)
            outs.append(tm(**x))
    assert per_step.steps(hook) == [0, 1, 2]
    assert [k.time for k in sorted(per_step.keys(hook), key=lambda k: k.step)] == [0.9, 0.5, 0.1]
    assert torch.allclose(mean[hook], per_step.stack(hook).mean(0), atol=1e-6)
    with probe.capture([hook], steps=[1]) as only:
        for t in (0.9, 0.5, 0.1):
            x = tm.make_inputs("A")
            x["timestep"] = torch.full((1,), t)
            tm(**x)
    assert only.steps(hook) == [1]


def test_hooks_are_removed_even_when_the_run_raises(tm):
    probe = Probe(tm.model)
    procs_before = dict(getattr(tm.model, "attn_processors", {}))
    impl_before = getattr(getattr(tm.model, "config", None), "_attn_implementation", None)
    layers = probe.points(kind="attention")
    with probe.record_kv(layers) as store:
        run(tm)

    def explode(probs, call):
        raise RuntimeError("boom")

    with (
        pytest.raises(RuntimeError, match="boom"),
        probe.capture(probe.hook_names()),
        probe.inject(store, InjectionSchedule(layers=layers, n_steps=1)),
        probe.bypass(probe.points(kind="block")[:1], steps=[99]),
        probe.edit_attention(layers[:1], explode),
    ):
        assert probe.active_hooks()
        run(tm)
    assert probe.active_hooks() == []
    assert all_hooks_clean(tm.model)
    assert dict(getattr(tm.model, "attn_processors", {})) == procs_before
    if tm.name == "musicgen":
        from transformers.masking_utils import AttentionMaskInterface
        from transformers.modeling_utils import AttentionInterface

        assert not any(k.startswith("musicprobe") for k in AttentionInterface._global_mapping)
        assert not any(k.startswith("musicprobe") for k in AttentionMaskInterface._global_mapping)
        assert tm.model.decoder.config._attn_implementation == "sdpa"
    else:
        assert getattr(getattr(tm.model, "config", None), "_attn_implementation", None) == impl_before
    assert torch.equal(run(tm), run(tm))


def test_hooks_of_others_are_left_alone():
    tm = tiny_model("unet2d")
    probe = Probe(tm.model)
    seen = []
    mod = probe.resolve("down.1.layer0.cross_attn").module
    handle = mod.register_forward_hook(lambda m, a, o: seen.append(1))
    with probe.capture(["down.1.layer0.cross_attn.hook_pattern"]):
        run(tm)
    run(tm)
    assert len(seen) == 2 and len(mod._forward_hooks) == 1
    handle.remove()


def test_twenty_captured_runs_do_not_keep_memory():
    tm = tiny_model("flux")
    probe = Probe(tm.model)
    refs = []
    for _ in range(20):
        with probe.capture(probe.hook_names("hook_pattern")) as cache:
            run(tm)
        refs.append(weakref.ref(cache))
        del cache
    gc.collect()
    assert all(r() is None for r in refs)
    assert probe.interventions == [] and probe.active_hooks() == []


def test_block_bypass_is_identity_and_attention_bypass_removes_attention():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    blk = probe.resolve("blocks.1").module
    seen = {}

    def spy(module, args, kwargs, output):
        seen["in"], seen["out"] = kwargs.get("hidden_states", args[0] if args else None), output

    with probe.bypass(["blocks.1"]):
        h = blk.register_forward_hook(spy, with_kwargs=True)
        run(tm)
        h.remove()
    assert torch.equal(seen["in"], seen["out"])
    with probe.bypass(["blocks.0.self_attn"]):
        bypassed = run(tm)
    attn = probe.resolve("blocks.0.self_attn").module
    h = attn.register_forward_hook(lambda m, a, o: torch.zeros_like(o))
    manual = run(tm)
    h.remove()
    assert torch.equal(bypassed, manual) and not torch.equal(bypassed, run(tm))


def test_attention_edits_identity_and_uniform():
    tm = tiny_model("musicgen")
    probe = Probe(tm.model)
    stock = run(tm)
    layers = probe.points(kind="cross_attn")
    with probe.edit_attention(layers, lambda p, c: p):
        same = run(tm)

    def first_token_only(p, call):
        out = torch.zeros_like(p)
        out[..., 0] = 1.0
        return out

    with probe.edit_attention(layers, first_token_only):
        uniform = run(tm)
    assert torch.allclose(same, stock, atol=1e-5)
    assert not torch.allclose(uniform, stock, atol=1e-4)
    with pytest.raises(MusicProbeError, match="must return"), probe.edit_attention(layers, lambda p, c: p[..., :1]):
        run(tm)


def test_names_aliases_and_suggestions():
    probe = Probe(tiny_model("flux").model)
    assert probe.resolve("single_transformer_blocks.1.attn.processor").name == "single_blocks.1.attn"
    assert "single_blocks.1.attn.hook_pattern" in probe.hook_names("pattern")
    with pytest.raises(UnknownNameError, match="Did you mean 'single_blocks.1.attn'"):
        probe.resolve("single_block.1.attn")
    with pytest.raises(UnknownNameError, match="hook_pattern"):
        probe.capture(["single_blocks.1.attn.hook_patern"]).__enter__()
    with pytest.raises(ConfigError, match="not an attention layer"):
        probe.record_kv(["single_blocks.1"]).__enter__()
    assert (
        probe.estimate_capture_bytes(["single_blocks.1.attn.hook_pattern"], n_steps=10, q_len=22, k_len=22)
        == 10 * 22 * 22 * 2
    )


def test_injection_shape_mismatch_is_a_clear_error():
    tm = tiny_model("unet2d")
    probe = Probe(tm.model)
    layers = probe.points(kind="cross_attn")
    with probe.record_kv(layers) as store:
        run(tm, n_text=6)
    with (
        pytest.raises(MusicProbeError, match="share token counts"),
        probe.inject(store, InjectionSchedule(layers=layers, n_steps=1)),
    ):
        run(tm, "B", n_text=8)
    with pytest.raises(ConfigError, match="text tokens"):
        probe.inject(store, InjectionSchedule(layers=layers, tokens="audio", n_steps=1)).__enter__()


def test_missing_time_key_is_a_clear_error():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    layers = probe.points(kind="self_attn")
    with probe.record_kv(layers) as store:
        run(tm)
    x = tm.make_inputs("B")
    x["timestep"] = torch.full((1,), 0.123)
    with pytest.raises(MusicProbeError, match="time key"), probe.inject(store, InjectionSchedule(layers, n_steps=1)):
        tm(**x)


def test_schedule_validation_json_and_curves():
    s = InjectionSchedule.musickv(["blocks.0.self_attn"], n_steps=10)
    assert s.weight(0) == 0.0 and s.weight(9) == pytest.approx(0.9) and s.weight(10) == 0.0
    assert InjectionSchedule.from_json(s.to_json()) == s
    w = InjectionSchedule.first_steps(["x"], n_steps=25, inject_steps=5, kind="v")
    assert [w.weight(i) for i in (0, 4, 5, 24)] == [1.0, 1.0, 0.0, 0.0]
    c = InjectionSchedule(["x"], curve="cosine", n_steps=5)
    assert c.weight(0) == 1.0 and c.weight(4) == pytest.approx(0.0, abs=1e-12) and c.weight(2) == pytest.approx(0.5)
    for bad, match in (
        ({"strength": 1.5}, "strength"),
        ({"curve": "zigzag"}, "curve"),
        ({"start": 5, "end": 2}, "start"),
        ({"curve": "custom", "weights": [0.5]}, "custom"),
        ({"kind": "q"}, "kind"),
        ({"layer_scale": {"x": 2.0}}, "layer_scale"),
    ):
        with pytest.raises(ConfigError, match=match):
            InjectionSchedule(["x"], **bad)
    with pytest.raises(ConfigError, match="unknown fields"):
        InjectionSchedule.from_dict({"layers": ["x"], "strenght": 1})


def test_attention_probs_helper_handles_masks_and_gqa():
    q, k = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 5, 8)
    mask = torch.tensor([True, True, False, True, False])
    p = attention_probs(q, k, mask)
    assert torch.allclose(p.sum(-1), torch.ones(1, 4, 3)) and torch.all(p[..., 2] == 0)
    c = attention_probs(torch.randn(1, 1, 4, 8), torch.randn(1, 1, 4, 8), is_causal=True)
    assert torch.all(c.triu(1) == 0)


def test_block_outputs_are_captured_whole_not_head_reduced():
    tm = tiny_model("unet2d")
    probe = Probe(tm.model)
    seen = {}
    blk = probe.resolve("down.1.layer0").module

    def spy(module, args, output):
        seen["out"] = output[0] if isinstance(output, tuple) else output.sample  # returns None: output unchanged

    h = blk.register_forward_hook(spy)
    with probe.capture(["down.1.layer0.hook_out"], dtype=torch.float32) as cache:  # default heads="mean"
        run(tm)
    h.remove()
    assert torch.equal(cache["down.1.layer0.hook_out"], seen["out"])  # (batch, channels, H, W), channels kept


def _text_attention(tm, probe):
    return probe.points(kind="joint_attn" if tm.name == "flux" else "cross_attn")


def _rows_of(tm, out, n_rows):
    """Per-row outputs (MusicGen's logits have ``rows * codebooks`` leading entries)."""
    return out.reshape(n_rows, -1)


def test_row_roles_let_an_intervention_copy_the_source_row_into_the_target_rows(tm):
    # batch = CFG halves (the family's order) x prompts [source A, target B]; text enters only through the
    # text-attention K/V, so writing the source row's K/V into the target rows makes them compute the source
    probe = Probe(tm.model)
    order = probe.adapter.cfg_order
    prompts = {"uncond": ["U", "U"], "cond": ["A", "B"]}
    batch = tm.make_batch(prompts[order[0]] + prompts[order[1]])
    stock = _rows_of(tm, tm(**batch), 4)
    layers = _text_attention(tm, probe)
    with probe.with_roles(RowRoles(prompts=2, cfg=True)), probe.share_kv(layers, source=0, targets=[1]):
        shared = _rows_of(tm, tm(**batch), 4)
    cond = order.index("cond") * 2
    assert not torch.allclose(stock[cond], stock[cond + 1], atol=1e-4)  # A and B differ
    assert torch.allclose(shared[cond + 1], stock[cond], atol=1e-5)  # B's row now computes A
    assert torch.allclose(shared[cond], stock[cond], atol=1e-6)  # the source row is untouched
    assert all_hooks_clean(tm.model)


def test_row_roles_select_rows_in_each_familys_order():
    diff = RowRoles(prompts=2, cfg=True)
    order = ("uncond", "cond")
    assert diff.rows(4, order, branch="cond", prompt=1) == slice(3, 4)
    assert torch.equal(diff.rows(4, order, prompt=0), torch.tensor([0, 2]))
    assert RowRoles(prompts=2, cfg=True).rows(4, ("cond", "uncond"), branch="cond", prompt=1) == slice(1, 2)
    assert RowRoles().rows(6, order, branch="uncond") == slice(0, 3)
    with pytest.raises(MusicProbeError, match="multiple of 4"):
        diff.rows(6, order, branch="cond", prompt=0)
    with pytest.raises(ConfigError, match="cfg="):
        RowRoles(prompts=3)


def test_two_probes_on_one_musicgen_compose_and_restore_in_either_exit_order():
    from transformers.modeling_utils import AttentionInterface

    tm = tiny_model("musicgen")
    stock = run(tm)
    layer = "layers.0.cross_attn"
    for first_out in ("inner", "outer"):
        outer, inner = Probe(tm.model), Probe(tm.model)
        a = outer.capture([f"{layer}.hook_pattern"], dtype=torch.float32)
        b = inner.capture([f"{layer}.hook_pattern"], dtype=torch.float32)
        cache_a = a.__enter__()
        cache_b = b.__enter__()
        assert torch.equal(run(tm), stock)
        (b if first_out == "inner" else a).__exit__(None, None, None)
        assert torch.equal(run(tm), stock)  # the probe still open keeps working, the model is not broken
        (a if first_out == "inner" else b).__exit__(None, None, None)
        assert torch.equal(run(tm), stock)
        assert len(cache_a.keys()) >= 1 and len(cache_b.keys()) >= 1
        assert not any(k.startswith("musicprobe") for k in AttentionInterface._global_mapping)
        assert tm.model.decoder.config._attn_implementation == "sdpa" and all_hooks_clean(tm.model)


def test_a_context_is_single_use_with_a_clear_error():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    ctx = probe.capture(["blocks.0.self_attn.hook_pattern"])
    with ctx:
        run(tm)
    with pytest.raises(MusicProbeError, match="single-use"), ctx:
        pass


def test_capture_with_gradients_keeps_the_graph():
    tm = tiny_model("stable_audio")
    probe = Probe(tm.model)
    x = tm.make_inputs("A")
    x["hidden_states"] = x["hidden_states"].clone().requires_grad_(True)
    with probe.capture(["blocks.1.self_attn.hook_out", "blocks.0.hook_out"], grad=True) as cache:
        tm.model(**x)
    feats = cache["blocks.1.self_attn.hook_out"]
    assert feats.requires_grad and feats.dtype == torch.float32
    feats.pow(2).sum().backward()
    assert x["hidden_states"].grad is not None and x["hidden_states"].grad.abs().sum() > 0
    with probe.capture(["blocks.1.self_attn.hook_out"]) as plain:
        tm.model(**x)
    assert not plain["blocks.1.self_attn.hook_out"].requires_grad


def test_a_new_intervention_is_a_subclass_not_an_edit_of_probe():
    from musicprobe.hooks import Intervention

    class ScaleValues(Intervention):
        """Multiply V by a constant at one layer (a toy intervention written outside the package)."""

        def __init__(self, point, factor):
            super().__init__()
            self.point, self.factor, self.calls = point, factor, 0

        def bind(self, probe):
            self.attention_points = frozenset([probe.resolve(self.point).name])

        def modify_kv(self, call, k, v):
            self.calls += 1
            return k, v * self.factor

    tm = tiny_model("unet2d")
    probe = Probe(tm.model)
    layer = "down.1.layer0.cross_attn"
    stock = run(tm)
    iv = ScaleValues(layer, 1.0)
    with probe.intervene(iv):
        same = run(tm)
    with probe.intervene(ScaleValues(layer, 0.0)):
        zeroed = run(tm)
    assert iv.calls == 1 and torch.allclose(same, stock, atol=1e-6)
    assert not torch.allclose(zeroed, stock, atol=1e-4)
    assert all_hooks_clean(tm.model)
