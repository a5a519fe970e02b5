"""Encoded prompts with one row per prompt, for every model family.

A family's prompt states (MiniLM states of the mini models, Stable Audio's text and timing tokens, AudioLDM2's
T5 and GPT-2 streams, MusicGen's projected T5 states, FluxMusic's T5 and CLAP) are a dataclass whose tensor
fields all have the batch axis first. :class:`PromptRows` gives them the row operations samplers and editors use:
``len``, ``select`` (a slice of rows), ``rows(b)`` (one prompt repeated over a batch) and ``cat`` (rows of several,
sequence fields zero-padded to the longest: a padded mask is 0, so padded tokens stay masked). A field holding
another ``PromptRows`` (AudioLDM2's unconditional rows) follows its parent.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

import torch

from musicprobe.errors import ConfigError

R = TypeVar("R", bound="PromptRows")


class PromptRows:
    """Row operations over a dataclass of batch-first tensors (see the module docstring)."""

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(next(v for v in self._fields().values() if isinstance(v, torch.Tensor)).shape[0])

    def _map(self: R, fn) -> R:
        return replace(self, **{k: fn(v) if isinstance(v, (torch.Tensor, PromptRows)) else v
                                for k, v in self._fields().items()})

    def select(self: R, idx) -> R:
        """Rows ``idx`` (a slice)."""
        return self._map(lambda v: v.select(idx) if isinstance(v, PromptRows) else v[idx])

    def rows(self: R, batch: int) -> R:
        """These states for a batch of ``batch`` rows (one prompt is repeated; otherwise the counts must agree)."""
        if len(self) == batch:
            return self
        if len(self) != 1:
            raise ConfigError(f"got {len(self)} prompts for a batch of {batch}")
        return self._map(lambda v: v.rows(batch) if isinstance(v, PromptRows) else v.expand(batch, *v.shape[1:]))

    @classmethod
    def cat(cls: type[R], parts: list[R]) -> R:
        """The rows of ``parts`` in order (sequence fields padded with zeros to the longest)."""
        first = parts[0]._fields()
        out = {}
        for name, value in first.items():
            values = [p._fields()[name] for p in parts]
            if isinstance(value, PromptRows) or value is None:
                out[name] = type(value).cat(values) if all(v is not None for v in values) else None
            elif isinstance(value, torch.Tensor):
                out[name] = torch.cat(_padded(values))
            else:
                out[name] = value
        return cls(**out)


def _padded(values: list[torch.Tensor]) -> list[torch.Tensor]:
    if values[0].ndim < 2:
        return values
    length = max(v.shape[1] for v in values)
    pad = [(0, 0)] * (values[0].ndim - 2)
    return [torch.nn.functional.pad(v, [x for p in pad for x in p] + [0, length - v.shape[1]])
            if v.shape[1] < length else v for v in values]
