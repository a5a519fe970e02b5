"""Low-rank adapters (LoRA) on a network's weights, without changing its module tree.

Each adapted weight ``W`` (a ``Linear`` or ``Conv2d``) becomes ``W + (alpha / rank) * (B @ A).view(W.shape)``
through ``torch.nn.utils.parametrize``: module names, hooks and attention processors stay what they were, so the
hook system sees the same canonical layers on a base and on a fine-tuned model. ``B`` starts at zero (the adapted
network starts as the base exactly). :func:`lora_state` reads the factors to save; :func:`merge_lora` writes
``W + delta`` into a plain copy of the network (the form a personalised model is used in: no parametrisation,
no cost at inference).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from musicprobe.errors import ConfigError


class LowRankDelta(nn.Module):
    """The parametrisation ``W -> W + scale * (B @ A).view(W.shape)`` of one weight."""

    def __init__(self, shape: torch.Size, rank: int, alpha: float, seed: int):
        super().__init__()
        fan_in = int(torch.tensor(shape[1:]).prod())
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(rank, fan_in, generator=g) / fan_in**0.5)
        self.B = nn.Parameter(torch.zeros(shape[0], rank))
        self.scale = alpha / rank

    def delta(self, shape: torch.Size) -> torch.Tensor:
        return (self.scale * self.B @ self.A).view(shape)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + self.delta(w.shape).to(w.dtype)


def default_targets(name: str, module: nn.Module) -> bool:
    """Every ``Linear`` and ``Conv2d`` except the timestep embedding (the noise schedule is not the concept)."""
    return isinstance(module, (nn.Linear, nn.Conv2d)) and "time_emb" not in name and "time_embedding" not in name


def add_lora(net: nn.Module, rank: int = 8, alpha: float = 8.0, targets: Callable[[str, nn.Module], bool] =
             default_targets, seed: int = 0) -> list[str]:
    """Adapt ``net`` in place (its own weights frozen); returns the adapted module names."""
    if rank < 1:
        raise ConfigError(f"LoRA rank must be >= 1, got {rank}")
    names = [n for n, m in net.named_modules() if n and targets(n, m)]
    for p in net.parameters():
        p.requires_grad_(False)
    for i, n in enumerate(names):
        mod = net.get_submodule(n)
        parametrize.register_parametrization(mod, "weight", LowRankDelta(mod.weight.shape, rank, alpha, seed + i))
    return names


def lora_modules(net: nn.Module) -> dict[str, LowRankDelta]:
    """The adapted modules of ``net`` and their :class:`LowRankDelta`."""
    out = {}
    for n, m in net.named_modules():
        if parametrize.is_parametrized(m, "weight"):
            for p in m.parametrizations["weight"]:
                if isinstance(p, LowRankDelta):
                    out[n] = p
    return out


def lora_parameters(net: nn.Module) -> list[nn.Parameter]:
    return [p for d in lora_modules(net).values() for p in (d.A, d.B)]


def lora_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """``{"<module>.A": ..., "<module>.B": ...}`` of every adapter (what a fine-tuned concept saves)."""
    out = {}
    for n, d in lora_modules(net).items():
        out[f"{n}.A"], out[f"{n}.B"] = d.A.detach().clone(), (d.B * d.scale).detach().clone()
    return out


def merge_lora(base: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``base`` with ``W + B @ A`` written into each adapted weight (``state`` from :func:`lora_state`,
    its ``B`` already scaled). ``base`` itself is not changed."""
    net = copy.deepcopy(base)
    modules = {k.rsplit(".", 1)[0] for k in state}
    known = dict(net.named_modules())
    for n in sorted(modules):
        if n not in known:
            raise ConfigError(f"LoRA weights name a module the network does not have: {n!r}")
        w = known[n].weight
        with torch.no_grad():
            w += (state[f"{n}.B"].float() @ state[f"{n}.A"].float()).view(w.shape).to(w.dtype)
    return net.eval()


def weight_delta_norms(base: nn.Module, tuned: nn.Module) -> dict[str, float]:
    """Relative change ``|W' - W| / |W|`` of every weight that differs (what fine-tuning changed, per layer)."""
    tb = dict(tuned.named_parameters())
    out = {}
    for n, p in base.named_parameters():
        if n in tb and not torch.equal(p, tb[n]):
            out[n] = float((tb[n] - p).detach().norm() / p.detach().norm().clamp_min(1e-12))
    return out
