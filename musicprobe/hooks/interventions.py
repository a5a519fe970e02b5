"""Interventions: objects that act on a model while registered on a :class:`~musicprobe.hooks.Probe`.

The probe calls every active intervention at each hooked call, in phases, and never switches on their type:

1. ``observe_kv(call, k, v)``: see K/V as the model computed them (recording);
2. ``modify_kv(call, k, v) -> (k, v)``: replace or blend K/V (injection, row sharing);
3. ``modify_probs(call, probs) -> probs``: rewrite attention probabilities (Prompt-to-Prompt edits); the output is
   then recomputed from them. Probabilities are computed only when an active intervention ``wants_probs``;
4. ``observe(call, tensors)``: see q, the final K/V, the probabilities and the output (capture);
5. blocks: ``observe_block(call, output)`` then ``replace_block(call, inputs, output)`` (capture, bypass).

A new kind of intervention is a new subclass: declare the points in ``bind`` and override the phases it needs.
``with probe.intervene(obj) as result:`` registers it (``result`` is ``obj.result()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from musicprobe.errors import ConfigError, MusicProbeError, UnknownNameError
from musicprobe.hooks.cache import ActivationCache, CacheKey, KVStore
from musicprobe.hooks.rows import RowRoles, Rows, n_rows
from musicprobe.hooks.schedule import InjectionSchedule

if TYPE_CHECKING:
    from musicprobe.hooks.adapters import Adapter, Point


class Probe(Protocol):
    """What an intervention may ask of the probe it is registered on (names, adapter, row roles)."""

    adapter: Adapter
    roles: RowRoles

    def resolve(self, name: str) -> Point: ...

    def points(self, filter: Any = None, kind: str | None = None) -> list[str]: ...

    def hook_names(self, filter: Any = None) -> list[str]: ...

ATTN_QUANTITIES = ("hook_q", "hook_k", "hook_v", "hook_pattern", "hook_out")
BLOCK_QUANTITIES = ("hook_out",)


def as_steps(steps: Iterable[int] | int | None) -> set[int] | None:
    if steps is None:
        return None
    return {int(steps)} if isinstance(steps, int) else {int(s) for s in steps}


@dataclass
class AttnCall:
    """What an intervention learns about the call it acts on (attention or block)."""

    point: str
    step: int
    time: Any
    call: int
    cfg_order: tuple[str, str]
    text_len: int | None
    roles: RowRoles = field(default_factory=RowRoles)
    prefix: int | None = 0  # leading non-audio key tokens (Flux: the text; Stable Audio: the global token)
    adapter: Adapter | None = None

    def rows(self, batch: int, *, branch: str = "all", prompt: int | None = None) -> Rows:
        """Rows of a ``batch``-row tensor in CFG ``branch`` (and of prompt index ``prompt``)."""
        return self.roles.rows(batch, self.cfg_order, branch=branch, prompt=prompt, where=self.point)


@dataclass
class AttnTensors:
    """The tensors of one attention call, ``(batch, heads, tokens, dim)``; ``probs`` is None unless computed."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    probs: torch.Tensor | None
    out: torch.Tensor


class Intervention:
    """Base class (see the module docstring). ``steps``: the denoising steps it acts at (default: all)."""

    def __init__(self, steps: Iterable[int] | int | None = None):
        self.steps = as_steps(steps)
        self.attention_points: frozenset[str] = frozenset()
        self.block_points: frozenset[str] = frozenset()

    def bind(self, probe: Probe) -> None:
        """Resolve names against ``probe`` and set ``attention_points`` / ``block_points`` (called once)."""

    def active(self, point: str, step: int) -> bool:
        return self.steps is None or step in self.steps

    def wants_probs(self, point: str) -> bool:
        return False

    def observe_kv(self, call: AttnCall, k: torch.Tensor, v: torch.Tensor) -> None:
        return None

    def modify_kv(self, call: AttnCall, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return k, v

    def modify_probs(self, call: AttnCall, probs: torch.Tensor) -> torch.Tensor:
        return probs

    def observe(self, call: AttnCall, t: AttnTensors) -> None:
        return None

    def observe_block(self, call: AttnCall, output: Any) -> None:
        return None

    def replace_block(self, call: AttnCall, inputs: Callable[[], dict], output: Any) -> Any:
        """A replacement for the block's output, or None to keep it. ``inputs()`` binds the call's arguments."""
        return None

    def result(self) -> Any:
        return None

    def close(self) -> None:
        """Called once when the intervention is removed (also after an exception)."""


def _attention_points(probe: Probe, names: Iterable[str] | str) -> list[Point]:
    names = [names] if isinstance(names, str) else list(names)
    pts = [probe.resolve(n) for n in names]
    for p in pts:
        if not p.is_attention:
            raise ConfigError(
                f"{p.name} is a {p.kind}, not an attention layer; attention points: "
                f"{probe.points(kind='attention')[:6]} ..."
            )
    return pts


def split_hook_name(probe: Probe, full: str) -> tuple[Point, str]:
    """``<point>.<quantity>`` -> (point, quantity), with suggestions for unknown names."""
    base, _, q = full.rpartition(".")
    family = probe.adapter.family
    if q not in ATTN_QUANTITIES:
        raise UnknownNameError(f"{family} hook", full, probe.hook_names())
    point = probe.resolve(base)
    allowed = ATTN_QUANTITIES if point.is_attention else BLOCK_QUANTITIES
    if q not in allowed:
        raise UnknownNameError(f"{family} hook", full, [f"{point.name}.{a}" for a in allowed])
    return point, q


class Capture(Intervention):
    """Capture named hooks (``<point>.hook_q|k|v|pattern|out``) into an :class:`ActivationCache`.

    Reduced while capturing: ``heads`` (``"mean"``, ``"all"`` or a list of indices), one CFG ``branch``, a running
    mean over steps (``reduce_steps``). Kept on CPU in ``dtype`` (float16 by default), unless ``grad=True``: then
    the tensors stay on their device, in their dtype, attached to the autograd graph (for losses over features).
    """

    def __init__(
        self,
        names: Iterable[str] | str,
        *,
        steps: Iterable[int] | int | None = None,
        heads: str | list[int] = "mean",
        branch: str = "all",
        reduce_steps: bool = False,
        dtype: torch.dtype = torch.float16,
        grad: bool = False,
    ):
        super().__init__(steps)
        self.names = [names] if isinstance(names, str) else list(names)
        if not self.names:
            raise ConfigError("capture: name at least one hook (see Probe.hook_names())")
        if heads not in ("mean", "all") and not isinstance(heads, (list, tuple)):
            raise ConfigError(f"capture: heads must be 'mean', 'all' or a list of indices, got {heads!r}")
        if branch not in ("all", "cond", "uncond"):
            raise ConfigError(f"branch must be 'all', 'cond' or 'uncond', got {branch!r}")
        self.heads = heads if heads in ("mean", "all") else list(heads)
        self.branch, self.reduce_steps, self.dtype, self.grad = branch, reduce_steps, dtype, grad
        self.cache = ActivationCache()
        self.wanted: dict[str, set[str]] = {}
        self._is_attention: dict[str, bool] = {}

    def bind(self, probe: Probe) -> None:
        for full in self.names:
            point, q = split_hook_name(probe, full)
            self.wanted.setdefault(point.name, set()).add(q)
            self._is_attention[point.name] = point.is_attention
        self.attention_points = frozenset(p for p in self.wanted if self._is_attention[p])
        self.block_points = frozenset(p for p in self.wanted if not self._is_attention[p])

    def wants_probs(self, point: str) -> bool:
        return "hook_pattern" in self.wanted.get(point, ())

    def observe(self, call: AttnCall, t: AttnTensors) -> None:
        values = {"hook_q": t.q, "hook_k": t.k, "hook_v": t.v, "hook_pattern": t.probs, "hook_out": t.out}
        for qty in self.wanted[call.point]:
            self._store(call, qty, values[qty])

    def observe_block(self, call: AttnCall, output: Any) -> None:
        if call.point in self.block_points:
            self._store(call, "hook_out", call.adapter.block_tensor(output))  # type: ignore[union-attr]

    def _store(self, call: AttnCall, qty: str, value: torch.Tensor) -> None:
        x = value if self.grad else value.detach()
        x = x[call.rows(x.shape[0], branch=self.branch)]
        if self._is_attention[call.point]:  # (batch, heads, ...): blocks have no head axis
            if self.heads == "mean":
                x = x.float().mean(dim=1)
            elif self.heads != "all":
                x = x[:, self.heads]
        if not self.grad:
            x = x.to("cpu", self.dtype)
        name = f"{call.point}.{qty}"
        if self.reduce_steps:
            self.cache.accumulate(name, self.branch, x)
        else:
            self.cache.add(CacheKey(name, call.step, call.time, self.branch, call.call), x)

    def result(self) -> ActivationCache:
        return self.cache

    def close(self) -> None:
        self.cache._finalize(None if self.grad else self.dtype)


class RecordKV(Intervention):
    """Record K and V of attention ``points`` at every call into a :class:`KVStore`, keyed by the time key."""

    def __init__(self, points: Iterable[str] | str, *, steps: Iterable[int] | int | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__(steps)
        self.names, self.dtype, self.store = points, dtype, KVStore()

    def bind(self, probe: Probe) -> None:
        self.attention_points = frozenset(p.name for p in _attention_points(probe, self.names))

    def observe_kv(self, call: AttnCall, k: torch.Tensor, v: torch.Tensor) -> None:
        copy = {"device": "cpu", "dtype": self.dtype, "copy": True}
        self.store.put(call.point, call.time, k.detach().to(**copy), v.detach().to(**copy))

    def result(self) -> KVStore:
        return self.store


class InjectKV(Intervention):
    """Replace or blend K/V with a store's, by time key, as an :class:`InjectionSchedule` says."""

    def __init__(self, store: KVStore, schedule: InjectionSchedule):
        super().__init__(None)
        self.store, self.schedule = store, schedule

    def bind(self, probe: Probe) -> None:
        pts = _attention_points(probe, self.schedule.layers)
        if self.schedule.tokens == "audio":
            for p in pts:
                if p.kind == "cross_attn":
                    raise ConfigError(f"{p.name}: cross-attention keys are text tokens; use tokens='all'")
        missing = [p.name for p in pts if p.name not in self.store.by_point]
        if missing:
            raise MusicProbeError(
                f"inject: the store has no K/V for {missing[:4]}; recorded: {self.store.points()[:6]}"
            )
        self.attention_points = frozenset(p.name for p in pts)

    def active(self, point: str, step: int) -> bool:
        return self.schedule.weight(step, point) > 0

    def modify_kv(self, call: AttnCall, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sched = self.schedule
        w = sched.weight(call.step, call.point)
        ks, vs = self.store.get(call.point, call.time)
        rows = call.rows(k.shape[0], branch=sched.branch)
        start = 0
        if sched.tokens == "audio":
            if call.prefix is None:
                raise MusicProbeError(f"{call.point}: the text length is unknown (no encoder_hidden_states seen)")
            start = call.prefix
        new = []
        for cur, src, use in ((k, ks, "k" in sched.kind), (v, vs, "v" in sched.kind)):
            if not use:
                new.append(cur)
                continue
            if src.shape[1:] != cur.shape[1:]:
                raise MusicProbeError(
                    f"{call.point}: recorded K/V have shape {tuple(src.shape)}, this run has {tuple(cur.shape)}; "
                    "source and edit must share token counts (pad prompts to the same length for cross-attention)"
                )
            src = src.to(cur.device, cur.dtype)
            n_sel = n_rows(rows, cur.shape[0])
            if src.shape[0] == cur.shape[0]:
                src = src[rows]
            elif src.shape[0] not in (1, n_sel):
                raise MusicProbeError(
                    f"{call.point}: recorded batch {src.shape[0]} cannot be matched to the "
                    f"{n_sel} selected rows of batch {cur.shape[0]}"
                )
            out = cur.clone()
            region = out[rows, :, start:]
            out[rows, :, start:] = w * src[:, :, start:].expand_as(region) + (1 - w) * region
            new.append(out)
        return new[0], new[1]

    def result(self) -> InjectionSchedule:
        return self.schedule


class ShareKV(Intervention):
    """Inside one batch, write the ``source`` prompt's K/V into the ``targets`` prompts' rows (per CFG half).

    The building block of Prompt-to-Prompt-style control between prompts run side by side: the edited prompts
    attend with the source prompt's keys/values. Needs ``probe.roles`` with several prompts.
    """

    def __init__(self, points: Iterable[str] | str, *, source: int = 0, targets: Iterable[int] | None = None,
                 kind: str = "kv", steps: Iterable[int] | int | None = None):
        super().__init__(steps)
        if kind not in ("k", "v", "kv"):
            raise ConfigError(f"ShareKV: kind must be 'k', 'v' or 'kv', got {kind!r}")
        self.names, self.source, self.kind = points, int(source), kind
        self.targets = None if targets is None else [int(t) for t in targets]

    def bind(self, probe: Probe) -> None:
        self.attention_points = frozenset(p.name for p in _attention_points(probe, self.names))
        n = probe.roles.prompts
        if n < 2:
            raise ConfigError("ShareKV needs several prompts per batch: set probe.roles = RowRoles(prompts=, cfg=)")
        targets = self.targets if self.targets is not None else [i for i in range(n) if i != self.source]
        bad = [t for t in [self.source, *targets] if not 0 <= t < n]
        if bad:
            raise ConfigError(f"ShareKV: prompt indices {bad} are outside 0..{n - 1}")
        self.targets = targets

    def modify_kv(self, call: AttnCall, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        branches = ("uncond", "cond") if call.roles.cfg else ("all",)
        out = []
        for cur, use in ((k, "k" in self.kind), (v, "v" in self.kind)):
            if use:
                cur = cur.clone()
                for b in branches:
                    src = cur[call.rows(cur.shape[0], branch=b, prompt=self.source)]
                    for t in self.targets:  # type: ignore[union-attr]
                        cur[call.rows(cur.shape[0], branch=b, prompt=t)] = src
            out.append(cur)
        return out[0], out[1]


class EditAttention(Intervention):
    """``fn(probs, call) -> probs`` rewrites attention probabilities; the output is recomputed from them."""

    def __init__(self, points: Iterable[str] | str, fn: Callable[[torch.Tensor, AttnCall], torch.Tensor], *,
                 steps: Iterable[int] | int | None = None):
        super().__init__(steps)
        self.names, self.fn = points, fn

    def bind(self, probe: Probe) -> None:
        self.attention_points = frozenset(p.name for p in _attention_points(probe, self.names))

    def wants_probs(self, point: str) -> bool:
        return True

    def modify_probs(self, call: AttnCall, probs: torch.Tensor) -> torch.Tensor:
        new = self.fn(probs, call)
        if new is None or new.shape != probs.shape:
            raise MusicProbeError(
                f"{call.point}: the attention edit must return probabilities of shape "
                f"{tuple(probs.shape)}, got {None if new is None else tuple(new.shape)}"
            )
        return new


class Bypass(Intervention):
    """Skip blocks (identity: output = input) or attention sub-layers (no contribution to the residual)."""

    def __init__(self, points: Iterable[str] | str, *, steps: Iterable[int] | int | None = None):
        super().__init__(steps)
        self.names = [points] if isinstance(points, str) else list(points)
        self._attention: set[str] = set()

    def bind(self, probe: Probe) -> None:
        pts = [probe.resolve(n) for n in self.names]
        self._attention = {p.name for p in pts if p.is_attention}
        self.block_points = frozenset(p.name for p in pts)

    def replace_block(self, call: AttnCall, inputs: Callable[[], dict], output: Any) -> Any:
        adapter = call.adapter
        if call.point in self._attention:
            return adapter.attention_zero(output)  # type: ignore[union-attr]
        return adapter.block_identity(adapter.points[call.point], inputs(), output)  # type: ignore[union-attr]
