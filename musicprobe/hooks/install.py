"""How hooks get into a model and out again: ref-counted installation, exactly undone on exit.

Two mechanisms reach attention after its projections, norms and RoPE, with tensors ``(batch, heads, tokens, dim)``:

* diffusers models (``mechanism="sdpa"``): a forward pre-hook on the attention module enters a
  ``TorchFunctionMode`` that sees ``F.scaled_dot_product_attention``; the forward hook (``always_call=True``)
  leaves it. No processor is replaced or copied, and the mode is active only inside hooked modules and only at
  steps where some intervention acts.
* transformers MusicGen (``mechanism="interface"``): one attention function per stock implementation
  (``musicprobe_sdpa``, ``musicprobe_eager``) registered in ``AttentionInterface`` (with the matching mask function)
  while any probe on any model uses it. The model's configs are switched to it and restored when the last probe
  on that model leaves, whatever the order probes leave in; each attention module carries the handlers of the
  probes hooking it, chained so that several probes on one model compose.

Blocks get a forward hook; the denoiser gets a pre-hook that tracks the step. Every installation is reference
counted per point, so overlapping contexts share hooks and the last one out removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from musicprobe.errors import MusicProbeError

HANDLERS_ATTR = "_musicprobe_handlers"
INTERFACE_PREFIX = "musicprobe_"


@dataclass
class Installed:
    refs: int = 0
    handles: list = field(default_factory=list)


@contextmanager
def refcounted(
    inst: Installed, install: Callable[[], list], on_release: Callable[[], Any] | None = None
) -> Iterator[None]:
    """Install on first use (``install`` returns objects with ``remove()``); remove when the last user leaves."""
    if inst.refs == 0:
        inst.handles = install()
    inst.refs += 1
    try:
        yield
    finally:
        inst.refs -= 1
        if inst.refs == 0:
            for h in reversed(inst.handles):
                h.remove()
            inst.handles = []
            if on_release is not None:
                on_release()


class _Callback:
    """A removable handle that runs a function."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn

    def remove(self) -> None:
        self.fn()


class SDPAMode(TorchFunctionMode):
    """Routes ``F.scaled_dot_product_attention`` calls inside one hooked module to ``handler``."""

    def __init__(self, handler: Callable):
        super().__init__()
        self.handler = handler

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self.handler(func, args, kwargs)
        return func(*args, **kwargs)


def sdpa_hooks(module: nn.Module, is_active: Callable[[], bool], handler: Callable) -> list:
    """Pre/post hooks that enter an :class:`SDPAMode` around ``module``'s forward when ``is_active()``."""
    stack: list[SDPAMode | None] = []

    def enter(mod, args):
        mode = SDPAMode(handler) if is_active() else None
        if mode is not None:
            mode.__enter__()
        stack.append(mode)

    def leave(mod, args, output):
        if stack:
            mode = stack.pop()
            if mode is not None:
                mode.__exit__(None, None, None)
        return None

    return [module.register_forward_pre_hook(enter), module.register_forward_hook(leave, always_call=True)]


# ------------------------------------------------------------------------------------------ transformers interface
@dataclass
class _ModelUse:
    saved: list[tuple[Any, str]]
    refs: int = 0


_MODEL_USES: dict[int, _ModelUse] = {}  # id(denoiser config) -> configs switched to the musicprobe interface
_NAME_REFS: dict[str, int] = {}  # registered interface name -> models using it


def _stock_function(original: str) -> Callable:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if original == "eager":
        from transformers.models.musicgen.modeling_musicgen import eager_attention_forward

        return eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[original]


def _dispatcher(stock: Callable) -> Callable:
    """The registered attention function: chains the handlers a module carries, innermost the stock function."""

    def musicprobe_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kw):
        handlers = getattr(module, HANDLERS_ATTR, ())

        def call(i: int, k, v):
            if i < 0:
                return stock(module, query, k, v, attention_mask, dropout=dropout, scaling=scaling, **kw)[0]
            return handlers[i](module, query, k, v, attention_mask, scaling, kw, lambda k2, v2: call(i - 1, k2, v2))

        return call(len(handlers) - 1, key, value), None

    return musicprobe_attention


def _acquire_interface(configs: list[Any], key: int) -> None:
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    use = _MODEL_USES.get(key)
    if use is None:
        saved = [(c, c._attn_implementation) for c in configs]
        originals = {impl for _, impl in saved}
        if len(originals) != 1:
            raise MusicProbeError(f"decoder attention implementations differ: {originals}")
        original = originals.pop()
        if original.startswith(INTERFACE_PREFIX):
            raise MusicProbeError(f"the model's attention is already {original!r} (left over by another process?)")
        name = INTERFACE_PREFIX + original
        if _NAME_REFS.get(name, 0) == 0:
            AttentionInterface.register(name, _dispatcher(_stock_function(original)))
            AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[original])
        _NAME_REFS[name] = _NAME_REFS.get(name, 0) + 1
        for c, _ in saved:
            c._attn_implementation = name
        use = _MODEL_USES[key] = _ModelUse(saved)
    use.refs += 1


def _release_interface(key: int) -> None:
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    use = _MODEL_USES[key]
    use.refs -= 1
    if use.refs:
        return
    name = INTERFACE_PREFIX + use.saved[0][1]
    for c, impl in use.saved:
        c._attn_implementation = impl
    del _MODEL_USES[key]
    _NAME_REFS[name] -= 1
    if _NAME_REFS[name] == 0:
        del _NAME_REFS[name]
        AttentionInterface._global_mapping.pop(name, None)
        AttentionMaskInterface._global_mapping.pop(name, None)


def interface_hooks(module: nn.Module, configs: list[Any], key: int, handler: Callable) -> list:
    """Attach ``handler`` to ``module`` and switch the model to the musicprobe interface (both undone on remove)."""
    _acquire_interface(configs, key)
    handlers = module.__dict__.setdefault(HANDLERS_ATTR, [])
    handlers.append(handler)

    def detach() -> None:
        handlers.remove(handler)
        if not handlers and module.__dict__.get(HANDLERS_ATTR) is handlers:
            del module.__dict__[HANDLERS_ATTR]

    return [_Callback(lambda: _release_interface(key)), _Callback(detach)]


def interface_names_in_use() -> list[str]:
    """Interface names musicprobe has registered right now (empty when no probe is active)."""
    return sorted(_NAME_REFS)
