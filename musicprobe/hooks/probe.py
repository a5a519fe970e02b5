"""The Probe: canonical names over a model, the interventions registered on it, and where the run is.

``Probe(model)`` picks the family's adapter (canonical point names), installs hooks only while an intervention is
registered (``with probe.intervene(obj):``, or the verbs ``capture``, ``record_kv``, ``inject``, ``edit_attention``,
``bypass``, ``share_kv``), and at each hooked call hands the tensors to the active interventions in phases (see
:mod:`musicprobe.hooks.interventions`). With no intervention acting, the stock computation runs unchanged, so an
instrumented model reproduces the stock output exactly.

Injecting after RoPE (and after a GQA head repeat) is equivalent to injecting before it, as the MusicKV and
RF-Edit reference code do, whenever source and edit share token positions: RoPE and the repeat are linear and
position-wise, so they commute with replacing or blending K/V.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from musicprobe.errors import MusicProbeError, UnknownNameError
from musicprobe.hooks import install
from musicprobe.hooks.adapters import Adapter, Point, adapter_for, bind_inputs
from musicprobe.hooks.attention import attention_probs, repeat_heads
from musicprobe.hooks.cache import ActivationCache, KVStore
from musicprobe.hooks.interventions import (
    ATTN_QUANTITIES,
    BLOCK_QUANTITIES,
    AttnCall,
    AttnTensors,
    Bypass,
    Capture,
    EditAttention,
    InjectKV,
    Intervention,
    RecordKV,
    ShareKV,
    split_hook_name,
)
from musicprobe.hooks.rows import RowRoles
from musicprobe.hooks.schedule import InjectionSchedule


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


class Session:
    """A single-use context that registers one intervention on a probe (``with`` it once)."""

    def __init__(self, probe: Probe, intervention: Intervention):
        self.probe, self.intervention = probe, intervention
        self._stack: ExitStack | None = None
        self._used = False

    def __enter__(self) -> Any:
        if self._used:
            raise MusicProbeError(
                f"this {type(self.intervention).__name__} context was already used: contexts are single-use, "
                "call the probe's method again for a new one"
            )
        self._used = True
        self._stack = ExitStack()
        try:
            self.probe._register(self.intervention, self._stack)
        except BaseException:
            self._stack.close()
            raise
        return self.intervention.result()

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        self._stack.close()


class Probe:
    """Instrument a denoiser (``FluxTransformer2DModel``, ``StableAudioDiTModel``, an AudioLDM2 / plain UNet, or a
    MusicGen model). Every verb returns a single-use context; leaving it removes exactly what it added, also when
    the run raises."""

    def __init__(self, model: nn.Module, adapter: Adapter | None = None, roles: RowRoles | None = None):
        self.model = model
        self.adapter = adapter or adapter_for(model)
        self.roles = roles or RowRoles()
        self.state = RunState()
        self.interventions: list[Intervention] = []
        self._attn_installed: dict[str, install.Installed] = {}
        self._block_installed: dict[str, install.Installed] = {}
        self._tracker = install.Installed()

    @classmethod
    def from_pipeline(cls, pipe: Any) -> Probe:
        for attr in ("transformer", "unet"):
            if isinstance(getattr(pipe, attr, None), nn.Module):
                return cls(getattr(pipe, attr))
        if isinstance(pipe, nn.Module):
            return cls(pipe)
        raise MusicProbeError(f"cannot find a denoiser (transformer/unet) on {type(pipe).__name__}")

    @classmethod
    def for_model(cls, model: Any) -> Probe:
        """A probe on a protocol model's hooked module (``denoiser``, or ``decoder`` for token models)."""
        from musicprobe.models.protocols import hooked_module

        return cls(hooked_module(model))

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

    # ---------------------------------------------------------------- registering interventions
    def intervene(self, intervention: Intervention) -> Session:
        """Register ``intervention`` while the returned context is open (names are checked now)."""
        intervention.bind(self)
        return Session(self, intervention)

    def capture(self, names: Iterable[str] | str, **kw) -> Session:
        """Capture the named hooks (see :class:`~musicprobe.hooks.interventions.Capture`); yields the cache.

        Keywords: ``steps``, ``heads`` ("mean" | "all" | indices), ``branch`` ("all" | "cond" | "uncond"),
        ``reduce_steps``, ``dtype`` (float16), ``grad`` (keep the autograd graph, no CPU copy).
        """
        return self.intervene(Capture(names, **kw))

    def record_kv(self, points: Iterable[str] | str, **kw) -> Session:
        """Record K and V of attention ``points`` at every call, keyed by the time key; yields the store."""
        return self.intervene(RecordKV(points, **kw))

    def inject(self, store: KVStore, schedule: InjectionSchedule) -> Session:
        """Replace or blend K/V with ``store``'s, by time key, as ``schedule`` says."""
        return self.intervene(InjectKV(store, schedule))

    def share_kv(self, points: Iterable[str] | str, **kw) -> Session:
        """Write one prompt's K/V into other prompts' rows of the same batch (see ``ShareKV``)."""
        return self.intervene(ShareKV(points, **kw))

    def edit_attention(
        self, points: Iterable[str] | str, fn: Callable[[torch.Tensor, AttnCall], torch.Tensor], **kw
    ) -> Session:
        """Let ``fn(probs, call) -> probs`` rewrite attention probabilities (Prompt-to-Prompt style edits)."""
        return self.intervene(EditAttention(points, fn, **kw))

    def bypass(self, points: Iterable[str] | str, **kw) -> Session:
        """Skip blocks (identity: output = input) or attention sub-layers (no contribution to the residual)."""
        return self.intervene(Bypass(points, **kw))

    @contextmanager
    def at_step(self, step: Any, time: Any = None) -> Iterator[None]:
        """Fix the step index and time key for calls made inside: ``at_step(event)`` with a sampler's
        :class:`~musicprobe.inversion.StepEvent` (its ``step`` and ``key``), or ``at_step(step, time_key)``."""
        saved = self.state.manual
        if hasattr(step, "key") and hasattr(step, "step"):
            step, time = step.step, step.key if time is None else time
        self.state.manual = (int(step), step if time is None else time)
        try:
            yield
        finally:
            self.state.manual = saved

    @contextmanager
    def with_roles(self, roles: RowRoles) -> Iterator[RowRoles]:
        """Use ``roles`` (prompts per batch, CFG) for calls made inside."""
        saved, self.roles = self.roles, roles
        try:
            yield roles
        finally:
            self.roles = saved

    def reset_state(self) -> None:
        """Forget the step counter (call before a new denoising run when reusing open contexts)."""
        self.state = RunState()

    def active_hooks(self) -> list[str]:
        """What musicprobe has installed right now (empty when no context is open)."""
        out = [f"attention:{n}" for n, i in self._attn_installed.items() if i.refs]
        out += [f"block:{n}" for n, i in self._block_installed.items() if i.refs]
        if self._tracker.refs:
            out.append("step-tracker")
        if self.adapter.mechanism == "interface" and any(i.refs for i in self._attn_installed.values()):
            out += [f"attention-interface:{n}" for n in install.interface_names_in_use()]
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
            point, q = split_hook_name(self, full)
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

    # ---------------------------------------------------------------- installation
    def _register(self, iv: Intervention, stack: ExitStack) -> None:
        """Install the hooks ``iv`` needs and the step tracker; undo all of it when ``stack`` closes."""
        stack.callback(iv.close)
        for name in sorted(iv.attention_points):
            stack.enter_context(self._attention_hook(self.adapter.points[name]))
        for name in sorted(iv.block_points):
            stack.enter_context(self._block_hook(self.adapter.points[name]))
        stack.enter_context(self._step_tracker())
        self.interventions.append(iv)
        stack.callback(self.interventions.remove, iv)

    def _attention_hook(self, point: Point):
        def installer() -> list:
            if self.adapter.mechanism == "sdpa":
                return install.sdpa_hooks(
                    point.module,
                    lambda: self._point_active(point.name),
                    lambda func, args, kwargs: self._on_sdpa(point, func, args, kwargs),
                )
            configs = {id(p.module.config): p.module.config for p in self.adapter.points.values() if p.is_attention}
            den = self.adapter.denoiser()
            configs[id(den.config)] = den.config
            handler = self._interface_handler(point)
            return install.interface_hooks(point.module, list(configs.values()), id(den.config), handler)

        return install.refcounted(self._attn_installed.setdefault(point.name, install.Installed()), installer)

    def _block_hook(self, point: Point):
        def installer() -> list:
            return [point.module.register_forward_hook(self._block_handler(point), with_kwargs=True)]

        return install.refcounted(self._block_installed.setdefault(point.name, install.Installed()), installer)

    def _step_tracker(self):
        def installer() -> list:
            self.state = RunState()
            return [self.adapter.denoiser().register_forward_pre_hook(self._on_denoiser_call, with_kwargs=True)]

        return install.refcounted(self._tracker, installer)

    # ---------------------------------------------------------------- per-call dispatch
    def _on_denoiser_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        st = self.state
        st.call += 1
        inputs = bind_inputs(module, args, kwargs)
        t = self.adapter.read_timestep(inputs)
        if t is None or t != st.timestep or st.step < 0:
            st.step += 1
        st.timestep = t
        st.text_len = self.adapter.read_text_len(inputs)

    def _active(self, point: str, attention: bool) -> list[Intervention]:
        step = self.state.current_step
        return [
            iv
            for iv in self.interventions
            if point in (iv.attention_points if attention else iv.block_points) and iv.active(point, step)
        ]

    def _point_active(self, name: str) -> bool:
        """Whether any intervention acts on attention point ``name`` at the current step (else: stock fast path)."""
        return bool(self._active(name, True))

    def _call_info(self, point: Point) -> AttnCall:
        st = self.state
        prefix = {"text": st.text_len, "global": 1}.get(point.prefix, 0)
        return AttnCall(
            point.name, st.current_step, st.time_key, st.call, self.adapter.cfg_order, st.text_len, self.roles,
            prefix, self.adapter,
        )

    def _block_handler(self, point: Point):
        def hook(module, args, kwargs, output):
            active = self._active(point.name, False)
            if not active:
                return None
            call = self._call_info(point)
            for iv in active:
                iv.observe_block(call, output)
            for iv in active:
                new = iv.replace_block(call, lambda: bind_inputs(module, args, kwargs), output)
                if new is not None:
                    return new
            return None

        return hook

    def _interface_handler(self, point: Point):
        def handler(module, query, key, value, mask, scaling, kw, run):
            if not self._point_active(point.name):
                return run(key, value)
            is_causal = kw.get("is_causal")
            if is_causal is None:
                is_causal = query.shape[2] > 1 and mask is None and getattr(module, "is_causal", True)
            return self._attend(point, query, key, value, mask, scaling, bool(is_causal), run, "bshd")

        return handler

    def _on_sdpa(self, point: Point, func: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
        call = dict(zip(names, args))
        call.update(kwargs)

        def run(k2: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
            return func(**{**call, "key": k2, "value": v2})

        q, k, v = call["query"], call["key"], call["value"]
        mask, scale, causal = call.get("attn_mask"), call.get("scale"), bool(call.get("is_causal"))
        return self._attend(point, q, k, v, mask, scale, causal, run, "bhsd")

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
        """The attention core every mechanism shares: the interventions' phases around one attention call."""
        active = self._active(point.name, True)
        call = self._call_info(point)
        for iv in active:
            iv.observe_kv(call, k, v)
        k2, v2 = k, v
        for iv in active:
            k2, v2 = iv.modify_kv(call, k2, v2)
        probs = None
        if any(iv.wants_probs(point.name) for iv in active):
            probs = attention_probs(q, k2, mask, scale, is_causal)
        edited = False
        for iv in active:
            new = iv.modify_probs(call, probs) if probs is not None else None
            if new is not None and new is not probs:
                probs, edited = new, True
        if edited:
            out = (probs @ repeat_heads(v2, q.shape[1]).float()).to(q.dtype)
            out = out.transpose(1, 2) if layout == "bshd" else out
        else:
            out = run(k2, v2)
        out_bhsd = out.transpose(1, 2) if layout == "bshd" else out
        tensors = AttnTensors(q, k2, v2, probs, out_bhsd)
        for iv in active:
            iv.observe(call, tensors)
        return out


def _head_dim(mod: nn.Module) -> int:
    for attr in ("to_q", "q_proj"):
        lin = getattr(mod, attr, None)
        if lin is not None:
            n = getattr(mod, "heads", None) or getattr(mod, "num_heads", 1)
            return lin.out_features // n
    return 1


__all__ = ["ActivationCache", "AttnCall", "KVStore", "Probe", "RunState", "Session"]
