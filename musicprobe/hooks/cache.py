"""Stores for captured activations and recorded K/V, keyed by (name, step, time key, CFG branch, call)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from musicprobe.errors import MusicProbeError, UnknownNameError


class CacheKey(NamedTuple):
    name: str
    step: int | None  # None when steps were summed
    time: Any  # the denoiser's timestep (rounded) or an editor-provided key; None when steps were summed
    branch: str  # "all" | "cond" | "uncond"
    call: int | None


@dataclass
class _Running:
    total: torch.Tensor
    count: int


class ActivationCache:
    """Captured tensors on CPU. ``cache[name]`` returns the only entry, the running mean, or raises if ambiguous.

    A capture that grows past ``warn_bytes`` (2 GiB; attention maps of a real model at 10 s get there in a few
    steps) warns once, naming the ways to keep it bounded.
    """

    warn_bytes: int = 2 * 2**30

    def __init__(self) -> None:
        self._data: dict[CacheKey, torch.Tensor] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._bytes = 0
        self._warned = False

    def add(self, key: CacheKey, value: torch.Tensor) -> None:
        old = self._data.get(key)
        self._bytes += value.numel() * value.element_size() - (0 if old is None else old.numel() * old.element_size())
        self._data[key] = value
        if self._bytes > self.warn_bytes and not self._warned:
            import warnings

            self._warned = True
            warnings.warn(
                f"captured activations hold {self._bytes / 2**30:.1f} GiB on the CPU and grow with every step "
                f"(latest: {key.name} {tuple(value.shape)}); keep a capture bounded with heads='mean', "
                "reduce_steps=True, steps=[...] or fewer names (Probe.estimate_capture_bytes gives the size before "
                "a run)",
                stacklevel=3,
            )

    def accumulate(self, name: str, branch: str, value: torch.Tensor) -> None:
        slot = (name, branch)
        if slot in self._running:
            r = self._running[slot]
            if r.total.shape != value.shape:
                raise MusicProbeError(
                    f"{name}: cannot sum steps of shapes {tuple(r.total.shape)} and {tuple(value.shape)}"
                )
            r.total = r.total + value.float()  # out of place: also right for tensors captured with gradients
            r.count += 1
        else:
            self._running[slot] = _Running(value.float().clone(), 1)

    def _finalize(self, dtype: torch.dtype | None) -> None:
        for (name, branch), r in self._running.items():
            mean = r.total / r.count
            self.add(CacheKey(name, None, None, branch, None), mean if dtype is None else mean.to(dtype))
        self._running.clear()

    def names(self) -> list[str]:
        return sorted({k.name for k in self._data})

    def keys(self, name: str | None = None) -> list[CacheKey]:
        return [k for k in self._data if name is None or k.name == name]

    def get(self, name: str, *, step: int | None = None, branch: str | None = None) -> torch.Tensor:
        keys = [
            k for k in self.keys(name) if (step is None or k.step == step) and (branch is None or k.branch == branch)
        ]
        if not keys:
            if name not in self.names():
                raise UnknownNameError("captured name", name, self.names())
            raise MusicProbeError(
                f"{name}: nothing captured at step={step}, branch={branch}; captured steps: "
                f"{sorted({k.step for k in self.keys(name)}, key=str)}"
            )
        if len(keys) > 1:
            raise MusicProbeError(f"{name}: {len(keys)} entries match; give step= (or use stack())")
        return self._data[keys[0]]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __len__(self) -> int:
        return len(self._data)

    def stack(self, name: str, branch: str | None = None) -> torch.Tensor:
        """Entries of ``name`` ordered by (step, call), stacked on a new leading axis."""
        keys = sorted(
            (k for k in self.keys(name) if branch is None or k.branch == branch),
            key=lambda k: (k.step if k.step is not None else -1, k.call or 0),
        )
        if not keys:
            raise UnknownNameError("captured name", name, self.names())
        return torch.stack([self._data[k] for k in keys])

    def steps(self, name: str) -> list[int]:
        return sorted({k.step for k in self.keys(name) if k.step is not None})

    @property
    def nbytes(self) -> int:
        return self._bytes  # kept by add(), the one way entries come in

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        torch.save({"keys": [tuple(k) for k in self._data], "values": list(self._data.values())}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ActivationCache:
        blob = torch.load(Path(path), weights_only=True)
        out = cls()
        for k, v in zip(blob["keys"], blob["values"]):
            out.add(CacheKey(*k), v)
        return out

    def plot(self, name: str, *, step: int | None = None, head: int | None = None, batch: int = 0):
        """Heatmap of an attention pattern (query x key) as a plotly Figure."""
        from musicprobe.viz import heatmap

        x = self.get(name, step=step).float()
        if x.ndim == 4:
            x = x[batch, head or 0]
        elif x.ndim == 3:
            x = x[batch]
        return heatmap(x.numpy(), title=f"{name} (step {step})", x_label="key position", y_label="query position")

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} entries, {len(self.names())} names, {self.nbytes / 1e6:.2f} MB)"


class KVStore:
    """K/V recorded at attention points, keyed by (point, time key). Kept on CPU in float32 by default."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, Any], tuple[torch.Tensor, torch.Tensor]] = {}
        self.by_point: dict[str, list[Any]] = defaultdict(list)

    def put(self, point: str, time: Any, k: torch.Tensor, v: torch.Tensor) -> None:
        if (point, time) not in self.data:
            self.by_point[point].append(time)
        self.data[(point, time)] = (k, v)

    def get(self, point: str, time: Any) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self.data[(point, time)]
        except KeyError:
            have = self.by_point.get(point)
            if not have:
                raise MusicProbeError(
                    f"no K/V recorded for {point!r}; recorded points: {sorted(self.by_point)[:8]}"
                ) from None
            raise MusicProbeError(
                f"no K/V recorded for {point!r} at time key {time!r}; recorded keys: "
                f"{have[:6]}{' ...' if len(have) > 6 else ''}"
            ) from None

    def points(self) -> list[str]:
        return sorted(self.by_point)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.data.values())
