"""The hook engine: capture, K/V record and injection, attention-probability edits and bypass, for every adapter.

Attention is intercepted at the point where the model computes it, with tensors laid out ``(batch, heads, query,
key/dim)`` after projections, norms and RoPE:

* diffusers models (``mechanism="sdpa"``): a forward pre-hook on the attention module enters a
  ``TorchFunctionMode`` that sees ``F.scaled_dot_product_attention``; the forward hook (``always_call=True``)
  leaves it. No processor is replaced or copied, and the mode is active only inside hooked modules.
* transformers MusicGen (``mechanism="interface"``): a function registered in ``AttentionInterface`` (with the
  matching mask function in ``AttentionMaskInterface``) while a context is open; the decoder's attention
  implementation is switched to it and restored afterwards.

Injecting after RoPE (and after a GQA head repeat) is equivalent to injecting before it, as the MusicKV and
RF-Edit reference code do, whenever source and edit share token positions: RoPE and the repeat are linear and
position-wise, so they commute with replacing or blending K/V.

With no intervention the stock computation runs unchanged: capture computes probabilities on the side and returns
the stock output, so an instrumented model reproduces the stock output exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from musicprobe.errors import ConfigError, MusicProbeError, UnknownNameError
from musicprobe.hooks.adapters import Adapter, Point, adapter_for, bind_inputs
from musicprobe.hooks.cache import ActivationCache, CacheKey, KVStore
from musicprobe.hooks.schedule import InjectionSchedule

ATTN_QUANTITIES = ("hook_q", "hook_k", "hook_v", "hook_pattern", "hook_out")
BLOCK_QUANTITIES = ("hook_out",)
_INTERFACE_NAME = "musicprobe"


@dataclass
class RunState:
    """Where the denoising loop is. ``step`` counts distinct timesteps (or denoiser calls when there is none)."""

    step: int = -1
    timestep: float | None = None
    call: int = -1
    text_len: int | None = None
    manual: tuple[int, Any] | None = None  # (step, time key) set by ``Probe.at_step``

    @property
    def time_key(self) -> Any:
        if self.manual is not None:
            return self.manual[1]
        return round(self.timestep, 6) if self.timestep is not None else self.step

    @property
    def current_step(self) -> int:
        return self.manual[0] if self.manual is not None else self.step


@dataclass
class AttnCall:
    """What an attention-edit callback learns about the call it edits."""

    point: str
    step: int
    time: Any
    call: int
    cfg_order: tuple[str, str]
    text_len: int | None


@dataclass
class _Capture:
    wanted: dict[str, set[str]]  # point -> quantities
    cache: ActivationCache
    steps: set[int] | None
    heads: str | list[int]
    branch: str
    reduce_steps: bool
    dtype: torch.dtype


@dataclass
class _Recorder:
    points: set[str]
    store: KVStore
    steps: set[int] | None
    dtype: torch.dtype


@dataclass
class _Injector:
    store: KVStore
    schedule: InjectionSchedule


@dataclass
class _Editor:
    points: set[str]
    fn: Callable[[torch.Tensor, AttnCall], torch.Tensor]
    steps: set[int] | None


@dataclass
class _Bypass:
    points: set[str]
    steps: set[int] | None


class _SDPAMode(TorchFunctionMode):
    def __init__(self, probe: Probe, point: Point):
        super().__init__()
        self.probe, self.point = probe, point

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self.probe._on_sdpa(self.point, func, args, kwargs)
        return func(*args, **kwargs)


def _as_set(steps: Iterable[int] | int | None) -> set[int] | None:
    if steps is None:
        return None
    return {int(steps)} if isinstance(steps, int) else {int(s) for s in steps}


@dataclass
class _Installed:
    refs: int = 0
    handles: list = field(default_factory=list)


class Probe:
    """Instrument a denoiser (``FluxTransformer2DModel``, ``StableAudioDiTModel``, an AudioLDM2 / plain UNet, or a
    MusicGen model). Every method that hooks is a context manager; leaving it removes exactly what it added,
    also when the run raises."""

    def __init__(self, model: nn.Module, adapter: Adapter | None = None):
        self.model = model
        self.adapter = adapter or adapter_for(model)
        self.state = RunState()
        self._captures: list[_Capture] = []
        self._recorders: list[_Recorder] = []
        self._injectors: list[_Injector] = []
        self._editors: list[_Editor] = []
        self._bypasses: list[_Bypass] = []
        self._attn_installed: dict[str, _Installed] = {}
        self._block_installed: dict[str, _Installed] = {}
        self._tracker = _Installed()
        self._interface_saved: list[tuple[Any, str]] | None = None
        self._modes: dict[str, list[_SDPAMode]] = {}

    @classmethod
    def from_pipeline(cls, pipe: Any) -> Probe:
        for attr in ("transformer", "unet"):
            if isinstance(getattr(pipe, attr, None), nn.Module):
                return cls(getattr(pipe, attr))
        if isinstance(pipe, nn.Module):
            return cls(pipe)
        raise MusicProbeError(f"cannot find a denoiser (transformer/unet) on {type(pipe).__name__}")

    # ---------------------------------------------------------------- names
    def points(self, filter: str | Callable[[str], bool] | None = None, kind: str | None = None) -> list[str]:
        """Canonical point names in execution order, optionally filtered by substring/callable and kind."""
        out = []
        for name, p in self.adapter.points.items():
            if kind is not None and p.kind != kind and not (kind == "attention" and p.is_attention):
                continue
            if filter is None or (filter(name) if callable(filter) else filter in name):
                out.append(name)
        return out

    def hook_names(self, filter: str | Callable[[str], bool] | None = None) -> list[str]:
        """Every hook name (point + quantity), e.g. ``single_blocks.3.attn.hook_pattern``."""
        names = []
        for name, p in self.adapter.points.items():
            for q in ATTN_QUANTITIES if p.is_attention else BLOCK_QUANTITIES:
                full = f"{name}.{q}"
                if filter is None or (filter(full) if callable(filter) else filter in full):
                    names.append(full)
        return names

    def resolve(self, name: str) -> Point:
        """A point by canonical name or native module path (alias); unknown names get close-match suggestions."""
        name = name.removesuffix(".processor")
        if name in self.adapter.points:
            return self.adapter.points[name]
        if name in self.adapter.aliases:
            return self.adapter.points[self.adapter.aliases[name]]
        raise UnknownNameError(
            f"{self.adapter.family} layer", name, list(self.adapter.points) + list(self.adapter.aliases)
        )

    def _split_hook_name(self, full: str) -> tuple[Point, str]:
        base, _, q = full.rpartition(".")
        if q not in ATTN_QUANTITIES:
            raise UnknownNameError(f"{self.adapter.family} hook", full, self.hook_names())
        point = self.resolve(base)
        allowed = ATTN_QUANTITIES if point.is_attention else BLOCK_QUANTITIES
        if q not in allowed:
            raise UnknownNameError(f"{self.adapter.family} hook", full, [f"{point.name}.{a}" for a in allowed])
        return point, q

    def _attention_points(self, names: Iterable[str] | str) -> list[Point]:
        names = [names] if isinstance(names, str) else list(names)
        pts = [self.resolve(n) for n in names]
        for p in pts:
            if not p.is_attention:
                raise ConfigError(
                    f"{p.name} is a {p.kind}, not an attention layer; attention points: "
                    f"{self.points(kind='attention')[:6]} ..."
                )
        return pts

    # ---------------------------------------------------------------- public contexts
    @contextmanager
    def capture(
        self,
        names: Iterable[str] | str,
        *,
        steps: Iterable[int] | int | None = None,
        heads: str | list[int] = "mean",
        branch: str = "all",
        reduce_steps: bool = False,
        dtype: torch.dtype = torch.float16,
    ) -> Iterator[ActivationCache]:
        """Capture the named hooks. Nothing is captured unless named.

        Args:
            names: hook names (``<point>.hook_pattern`` ...).
            steps: denoising steps to keep (default all).
            heads: ``"mean"`` over heads (default), ``"all"``, or a list of head indices.
            branch: ``"all"``, or the ``"cond"``/``"uncond"`` half of a CFG-doubled batch.
            reduce_steps: keep a running mean over steps instead of one entry per step.
            dtype: storage dtype on CPU (float16 by default).
        """
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ConfigError("capture: name at least one hook (see Probe.hook_names())")
        if heads not in ("mean", "all") and not isinstance(heads, (list, tuple)):
            raise ConfigError(f"capture: heads must be 'mean', 'all' or a list of indices, got {heads!r}")
        _check_branch(branch)
        wanted: dict[str, set[str]] = {}
        for full in names:
            point, q = self._split_hook_name(full)
            wanted.setdefault(point.name, set()).add(q)
        spec = _Capture(
            wanted,
            ActivationCache(),
            _as_set(steps),
            heads if heads in ("mean", "all") else list(heads),
            branch,
            reduce_steps,
            dtype,
        )
        hooks = [
            self._attention_hook(p) if p.is_attention else self._block_hook(p)
            for p in (self.adapter.points[n] for n in wanted)
        ]
        with self._activation(hooks, self._captures, spec):
            try:
                yield spec.cache
            finally:
                spec.cache._finalize(dtype)

    @contextmanager
    def record_kv(
        self,
        points: Iterable[str] | str,
        *,
        steps: Iterable[int] | int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Iterator[KVStore]:
        """Record K and V of attention ``points`` at every call, keyed by the time key (see ``at_step``)."""
        pts = self._attention_points(points)
        rec = _Recorder({p.name for p in pts}, KVStore(), _as_set(steps), dtype)
        with self._activation([self._attention_hook(p) for p in pts], self._recorders, rec):
            yield rec.store

    @contextmanager
    def inject(self, store: KVStore, schedule: InjectionSchedule) -> Iterator[InjectionSchedule]:
        """Replace or blend K/V with ``store``'s, by time key, as ``schedule`` says."""
        pts = self._attention_points(schedule.layers)
        if schedule.tokens == "audio":
            for p in pts:
                if p.kind == "cross_attn":
                    raise ConfigError(f"{p.name}: cross-attention keys are text tokens; use tokens='all'")
        missing = [p.name for p in pts if p.name not in store.by_point]
        if missing:
            raise MusicProbeError(f"inject: the store has no K/V for {missing[:4]}; recorded: {store.points()[:6]}")
        inj = _Injector(store, schedule)
        with self._activation([self._attention_hook(p) for p in pts], self._injectors, inj):
            yield schedule

    @contextmanager
    def edit_attention(
        self,
        points: Iterable[str] | str,
        fn: Callable[[torch.Tensor, AttnCall], torch.Tensor],
        *,
        steps: Iterable[int] | int | None = None,
    ) -> Iterator[None]:
        """Let ``fn(probs, call) -> probs`` rewrite attention probabilities (Prompt-to-Prompt style edits)."""
        pts = self._attention_points(points)
        ed = _Editor({p.name for p in pts}, fn, _as_set(steps))
        with self._activation([self._attention_hook(p) for p in pts], self._editors, ed):
            yield

    @contextmanager
    def bypass(self, points: Iterable[str] | str, *, steps: Iterable[int] | int | None = None) -> Iterator[None]:
        """Skip blocks (identity: output = input) or attention sub-layers (no contribution to the residual)."""
        names = [points] if isinstance(points, str) else list(points)
        pts = [self.resolve(n) for n in names]
        bp = _Bypass({p.name for p in pts}, _as_set(steps))
        with self._activation([self._block_hook(p) for p in pts], self._bypasses, bp):
            yield

    @contextmanager
    def at_step(self, step: int, time: Any = None) -> Iterator[None]:
        """Fix the step index and time key for calls made inside (editors with their own solver loops)."""
        saved = self.state.manual
        self.state.manual = (int(step), step if time is None else time)
        try:
            yield
        finally:
            self.state.manual = saved

    def reset_state(self) -> None:
        """Forget the step counter (call before a new denoising run when reusing open contexts)."""
        self.state = RunState()

    def active_hooks(self) -> list[str]:
        """What musicprobe has installed right now (empty when no context is open)."""
        out = [f"attention:{n}" for n, i in self._attn_installed.items() if i.refs]
        out += [f"block:{n}" for n, i in self._block_installed.items() if i.refs]
        if self._tracker.refs:
            out.append("step-tracker")
        if self._interface_saved is not None:
            out.append(f"attention-interface:{_INTERFACE_NAME}")
        return out

    def estimate_capture_bytes(
        self,
        names: Iterable[str],
        *,
        n_steps: int,
        q_len: int,
        k_len: int,
        batch: int = 1,
        heads: str | list[int] = "mean",
        reduce_steps: bool = False,
        dtype: torch.dtype = torch.float16,
    ) -> int:
        """Bytes a capture will hold, from the attention modules' head counts (blocks: estimate not supported)."""
        total = 0
        size = torch.tensor([], dtype=dtype).element_size()
        for full in names:
            point, q = self._split_hook_name(full)
            mod = point.module
            n_heads = getattr(mod, "heads", None) or getattr(mod, "num_heads", None) or 1
            head_dim = getattr(mod, "head_dim", None) or _head_dim(mod)
            h = 1 if heads == "mean" else n_heads if heads == "all" else len(heads)
            per = {
                "hook_pattern": q_len * k_len,
                "hook_q": q_len * head_dim,
                "hook_k": k_len * head_dim,
                "hook_v": k_len * head_dim,
                "hook_out": q_len * head_dim,
            }[q]
            total += batch * h * per * size * (1 if reduce_steps else n_steps)
        return int(total)

    # ---------------------------------------------------------------- installation (ref-counted)
    @contextmanager
    def _activation(self, hooks: list, registry: list, item: Any) -> Iterator[None]:
        """Install ``hooks`` and the step tracker, register ``item`` as active; undo all of it on exit."""
        with ExitStack() as stack:
            for hook in hooks:
                stack.enter_context(hook)
            stack.enter_context(self._step_tracker())
            registry.append(item)
            stack.callback(registry.remove, item)
            yield

    @contextmanager
    def _refcounted(
        self, inst: _Installed, install: Callable[[], list], on_release: Callable[[], Any] | None = None
    ) -> Iterator[None]:
        """Install on first use (``install`` returns removable handles); remove when the last user leaves."""
        if inst.refs == 0:
            inst.handles = install()
        inst.refs += 1
        try:
            yield
        finally:
            inst.refs -= 1
            if inst.refs == 0:
                for h in inst.handles:
                    h.remove()
                inst.handles = []
                if on_release is not None:
                    on_release()

    def _attention_hook(self, point: Point):
        def install() -> list:
            if self.adapter.mechanism == "sdpa":
                return [
                    point.module.register_forward_pre_hook(self._make_enter(point)),
                    point.module.register_forward_hook(self._make_exit(point), always_call=True),
                ]
            self._interface_acquire()
            point.module._musicprobe_point = point.name  # type: ignore[attr-defined]
            return [_AttrCleanup(point.module, "_musicprobe_point"), _InterfaceRelease(self)]

        inst = self._attn_installed.setdefault(point.name, _Installed())
        return self._refcounted(inst, install, lambda: self._modes.pop(point.name, None))

    def _block_hook(self, point: Point):
        def install() -> list:
            return [point.module.register_forward_hook(self._make_block_hook(point), with_kwargs=True)]

        return self._refcounted(self._block_installed.setdefault(point.name, _Installed()), install)

    def _step_tracker(self):
        def install() -> list:
            self.state = RunState()
            return [self.adapter.denoiser().register_forward_pre_hook(self._on_denoiser_call, with_kwargs=True)]

        return self._refcounted(self._tracker, install)

    def _interface_acquire(self) -> None:
        if self._interface_saved is not None:
            return
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface

        configs = {id(p.module.config): p.module.config for p in self.adapter.points.values() if p.is_attention}
        configs[id(self.adapter.denoiser().config)] = self.adapter.denoiser().config
        saved = [(c, c._attn_implementation) for c in configs.values()]
        originals = {impl for _, impl in saved}
        if len(originals) != 1:
            raise MusicProbeError(f"decoder attention implementations differ: {originals}")
        original = originals.pop()
        stock = ALL_ATTENTION_FUNCTIONS[original] if original != "eager" else None
        if stock is None:
            from transformers.models.musicgen.modeling_musicgen import eager_attention_forward as stock
        AttentionInterface.register(_INTERFACE_NAME, self._make_interface_fn(stock))
        AttentionMaskInterface.register(_INTERFACE_NAME, ALL_MASK_ATTENTION_FUNCTIONS[original])
        for c, _ in saved:
            c._attn_implementation = _INTERFACE_NAME
        self._interface_saved = saved

    def _interface_release(self) -> None:
        if self._interface_saved is None:
            return
        if any(i.refs for i in self._attn_installed.values()):
            return  # another point still uses it
        from transformers.masking_utils import AttentionMaskInterface
        from transformers.modeling_utils import AttentionInterface

        for c, impl in self._interface_saved:
            c._attn_implementation = impl
        AttentionInterface._global_mapping.pop(_INTERFACE_NAME, None)
        AttentionMaskInterface._global_mapping.pop(_INTERFACE_NAME, None)
        self._interface_saved = None

    # ---------------------------------------------------------------- hook bodies
    def _on_denoiser_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        st = self.state
        st.call += 1
        inputs = bind_inputs(module, args, kwargs)
        t = self.adapter.read_timestep(inputs)
        if t is None or t != st.timestep or st.step < 0:
            st.step += 1
        st.timestep = t
        st.text_len = self.adapter.read_text_len(inputs)

    def _point_active(self, name: str) -> bool:
        """Whether any open context acts on attention point ``name`` at the current step (else: stock fast path)."""
        step = self.state.current_step
        if any(name in c.wanted and (c.steps is None or step in c.steps) for c in self._captures):
            return True
        if any(name in r.points and (r.steps is None or step in r.steps) for r in self._recorders):
            return True
        if any(name in e.points and (e.steps is None or step in e.steps) for e in self._editors):
            return True
        return any(name in i.schedule.layers and i.schedule.weight(step, name) > 0 for i in self._injectors)

    def _make_enter(self, point: Point):
        def enter(module, args):
            mode = _SDPAMode(self, point) if self._point_active(point.name) else None
            if mode is not None:
                mode.__enter__()
            self._modes.setdefault(point.name, []).append(mode)

        return enter

    def _make_exit(self, point: Point):
        def exit_(module, args, output):
            stack = self._modes.get(point.name)
            if stack:
                mode = stack.pop()
                if mode is not None:
                    mode.__exit__(None, None, None)
            return None

        return exit_

    def _make_block_hook(self, point: Point):
        def hook(module, args, kwargs, output):
            step = self.state.current_step
            for cap in self._captures:
                if "hook_out" in cap.wanted.get(point.name, ()) and (cap.steps is None or step in cap.steps):
                    self._store(cap, point.name, "hook_out", _block_tensor(self.adapter, output))
            for bp in self._bypasses:
                if point.name in bp.points and (bp.steps is None or step in bp.steps):
                    if point.is_attention:
                        return self.adapter.attention_zero(output)
                    return self.adapter.block_identity(point, bind_inputs(module, args, kwargs), output)
            return None

        return hook

    def _make_interface_fn(self, stock: Callable):
        def probe_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kw):
            name = getattr(module, "_musicprobe_point", None)
            if name is None or not self._point_active(name):
                return stock(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kw)
            point = self.adapter.points[name]
            is_causal = kw.get("is_causal")
            if is_causal is None:
                is_causal = query.shape[2] > 1 and attention_mask is None and getattr(module, "is_causal", True)

            def run(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                return stock(module, query, k, v, attention_mask, dropout=dropout, scaling=scaling, **kw)[0]

            out = self._attend(point, query, key, value, attention_mask, scaling, bool(is_causal), run, "bshd")
            return out, None

        return probe_attention

    def _on_sdpa(self, point: Point, func: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
        call = dict(zip(names, args))
        call.update(kwargs)
        q, k, v = call["query"], call["key"], call["value"]

        def run(k2: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
            return func(**{**call, "key": k2, "value": v2})

        return self._attend(
            point, q, k, v, call.get("attn_mask"), call.get("scale"), bool(call.get("is_causal")), run, "bhsd"
        )

    # ---------------------------------------------------------------- the shared attention core
    def _attend(
        self,
        point: Point,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        scale: float | None,
        is_causal: bool,
        run: Callable,
        layout: str,
    ) -> torch.Tensor:
        st = self.state
        step, time = st.current_step, st.time_key
        for rec in self._recorders:
            if point.name in rec.points and (rec.steps is None or step in rec.steps):
                rec.store.put(
                    point.name,
                    time,
                    k.detach().to("cpu", rec.dtype, copy=True),
                    v.detach().to("cpu", rec.dtype, copy=True),
                )
        k2, v2, changed = k, v, False
        for inj in self._injectors:
            if point.name in inj.schedule.layers:
                w = inj.schedule.weight(step, point.name)
                if w > 0:
                    k2, v2 = self._inject(point, inj, w, k2, v2, time)
                    changed = True
        editors = [e for e in self._editors if point.name in e.points and (e.steps is None or step in e.steps)]
        caps = [c for c in self._captures if point.name in c.wanted and (c.steps is None or step in c.steps)]
        need_probs = bool(editors) or any("hook_pattern" in c.wanted[point.name] for c in caps)
        probs = None
        if need_probs:
            probs = attention_probs(q, k2, mask, scale, is_causal)
            for e in editors:
                info = AttnCall(point.name, step, time, st.call, self.adapter.cfg_order, st.text_len)
                new = e.fn(probs, info)
                if new is None or new.shape != probs.shape:
                    raise MusicProbeError(
                        f"{point.name}: the attention edit must return probabilities of shape "
                        f"{tuple(probs.shape)}, got {None if new is None else tuple(new.shape)}"
                    )
                probs = new
        if editors:
            vv = _repeat_heads(v2, q.shape[1])
            out = (probs @ vv.float()).to(q.dtype)
            out = out.transpose(1, 2) if layout == "bshd" else out
        else:
            out = run(k2, v2) if changed else run(k, v)
        for cap in caps:
            for qty in cap.wanted[point.name]:
                if qty == "hook_pattern":
                    val = probs
                elif qty == "hook_out":
                    val = out.transpose(1, 2) if layout == "bshd" else out
                else:
                    val = {"hook_q": q, "hook_k": k2, "hook_v": v2}[qty]
                self._store(cap, point.name, qty, val)
        return out

    def _inject(
        self, point: Point, inj: _Injector, w: float, k: torch.Tensor, v: torch.Tensor, time: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sched = inj.schedule
        ks, vs = inj.store.get(point.name, time)
        rows = _branch_rows(k.shape[0], sched.branch, self.adapter.cfg_order, point.name)
        start = 0
        if sched.tokens == "audio":
            start = self._prefix_len(point)
        new = []
        for cur, src, use in ((k, ks, "k" in sched.kind), (v, vs, "v" in sched.kind)):
            if not use:
                new.append(cur)
                continue
            if src.shape[1:] != cur.shape[1:]:
                raise MusicProbeError(
                    f"{point.name}: recorded K/V have shape {tuple(src.shape)}, this run has {tuple(cur.shape)}; "
                    "source and edit must share token counts (pad prompts to the same length for cross-attention)"
                )
            src = src.to(cur.device, cur.dtype)
            n_sel = len(range(*rows.indices(cur.shape[0])))
            if src.shape[0] == cur.shape[0]:
                src = src[rows]
            elif src.shape[0] not in (1, n_sel):
                raise MusicProbeError(
                    f"{point.name}: recorded batch {src.shape[0]} cannot be matched to the "
                    f"{n_sel} selected rows of batch {cur.shape[0]}"
                )
            out = cur.clone()
            region = out[rows, :, start:]
            out[rows, :, start:] = w * src[:, :, start:].expand_as(region) + (1 - w) * region
            new.append(out)
        return new[0], new[1]

    def _prefix_len(self, point: Point) -> int:
        if point.prefix == "text":
            if self.state.text_len is None:
                raise MusicProbeError(f"{point.name}: the text length is unknown (no encoder_hidden_states seen)")
            return self.state.text_len
        return 1 if point.prefix == "global" else 0

    def _store(self, cap: _Capture, point: str, qty: str, value: torch.Tensor) -> None:
        x = value.detach()
        rows = _branch_rows(x.shape[0], cap.branch, self.adapter.cfg_order, point)
        x = x[rows]
        if self.adapter.points[point].is_attention:  # (batch, heads, ...): blocks have no head axis
            if cap.heads == "mean":
                x = x.float().mean(dim=1)
            elif cap.heads != "all":
                x = x[:, cap.heads]
        x = x.to("cpu", cap.dtype)
        name = f"{point}.{qty}"
        if cap.reduce_steps:
            cap.cache.accumulate(name, cap.branch, x)
        else:
            st = self.state
            cap.cache.add(CacheKey(name, st.current_step, st.time_key, cap.branch, st.call), x)


class _AttrCleanup:
    def __init__(self, module: nn.Module, attr: str):
        self.module, self.attr = module, attr

    def remove(self) -> None:
        if hasattr(self.module, self.attr):
            delattr(self.module, self.attr)


class _InterfaceRelease:
    def __init__(self, probe: Probe):
        self.probe = probe

    def remove(self) -> None:
        self.probe._interface_release()


def _check_branch(branch: str) -> None:
    if branch not in ("all", "cond", "uncond"):
        raise ConfigError(f"branch must be 'all', 'cond' or 'uncond', got {branch!r}")


def _branch_rows(batch: int, branch: str, order: tuple[str, str], point: str) -> slice:
    if branch == "all":
        return slice(None)
    if batch % 2:
        raise MusicProbeError(f"{point}: branch={branch!r} needs a CFG-doubled batch (even size), got batch {batch}")
    half = batch // 2
    return slice(0, half) if order[0] == branch else slice(half, batch)


def _repeat_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    if x.shape[1] == heads:
        return x
    if heads % x.shape[1]:
        raise MusicProbeError(f"cannot expand {x.shape[1]} key/value heads to {heads} query heads")
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def _head_dim(mod: nn.Module) -> int:
    for attr in ("to_q", "q_proj"):
        lin = getattr(mod, attr, None)
        if lin is not None:
            n = getattr(mod, "heads", None) or getattr(mod, "num_heads", 1)
            return lin.out_features // n
    return 1


def _block_tensor(adapter: Adapter, output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if adapter.family == "flux":
        return output[1]  # (encoder_hidden_states, hidden_states): keep the audio stream
    if hasattr(output, "sample"):
        return output.sample
    return output[0]


def attention_probs(
    q: torch.Tensor,
    k: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """``softmax(q kᵀ · scale + mask)`` in float32, as ``F.scaled_dot_product_attention`` defines it.

    ``q``: (B, H, L, D); ``k``: (B, H_kv, S, D) with H divisible by H_kv (grouped heads are repeated);
    ``mask``: boolean (True = attend) or additive, broadcastable to (B, H, L, S); ``is_causal`` uses the
    top-left-aligned lower triangle, as SDPA does. Fully masked rows give zeros.
    """
    k = _repeat_heads(k, q.shape[1])
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    if is_causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    return torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
