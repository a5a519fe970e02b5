"""Injection schedules: which layers, which steps and how strongly source K/V replace the edit's own.

The weight ``w`` is the *source* share: ``K = w * K_source + (1 - w) * K_edit``. ``w = 1`` is full replacement
(MusRec / RF-Edit / Stable Flow); MusicKV's reference code ramps ``w`` from 0 at the first step to about 1 at
the last (``t_ratio = 1 - i/N`` is the edit's share there).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from musicprobe.errors import ConfigError

CURVES = ("constant", "window", "ramp", "ramp_down", "cosine", "custom")
KINDS = ("k", "v", "kv")
TOKENS = ("all", "audio")
BRANCHES = ("all", "cond", "uncond")


@dataclass
class InjectionSchedule:
    """A validated, JSON-serialisable schedule over steps x layers.

    Args:
        layers: attention point names (e.g. ``["single_blocks.3.attn"]``).
        kind: inject keys, values or both.
        tokens: ``"all"`` tokens (RF-Edit: text tokens too) or ``"audio"`` tokens only (Stable Flow).
        branch: which half of a CFG-doubled batch receives source features.
        curve: ``constant`` (``strength`` at every step), ``window`` (``strength`` for steps in
            ``[start, end)``, 0 elsewhere), ``ramp`` (0 -> ``strength`` linearly: MusicKV), ``ramp_down``
            (``strength`` -> 0), ``cosine`` (``strength`` * half-cosine decay), ``custom`` (``weights`` per step).
        n_steps: number of denoising steps the curve spans.
        layer_scale: optional per-layer multipliers in [0, 1].
    """

    layers: list[str]
    kind: str = "kv"
    tokens: str = "all"
    branch: str = "all"
    curve: str = "constant"
    strength: float = 1.0
    start: int = 0
    end: int | None = None
    n_steps: int = 25
    weights: list[float] | None = None
    layer_scale: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.layers, str):
            self.layers = [self.layers]
        self.layers = list(self.layers)
        if not self.layers:
            raise ConfigError("InjectionSchedule: give at least one layer")
        for name, value, allowed in (
            ("kind", self.kind, KINDS),
            ("tokens", self.tokens, TOKENS),
            ("branch", self.branch, BRANCHES),
            ("curve", self.curve, CURVES),
        ):
            if value not in allowed:
                raise ConfigError(f"InjectionSchedule: {name}={value!r} is not one of {allowed}")
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"InjectionSchedule: strength must be in [0, 1], got {self.strength}")
        if self.n_steps < 1:
            raise ConfigError(f"InjectionSchedule: n_steps must be >= 1, got {self.n_steps}")
        end = self.n_steps if self.end is None else self.end
        if not 0 <= self.start <= end <= self.n_steps:
            raise ConfigError(
                f"InjectionSchedule: need 0 <= start <= end <= n_steps={self.n_steps}, "
                f"got start={self.start}, end={self.end}"
            )
        if self.curve == "custom":
            if not self.weights or len(self.weights) != self.n_steps:
                raise ConfigError(
                    f"InjectionSchedule: custom curve needs {self.n_steps} weights, "
                    f"got {0 if not self.weights else len(self.weights)}"
                )
            bad = [w for w in self.weights if not 0.0 <= w <= 1.0 or math.isnan(w)]
            if bad:
                raise ConfigError(f"InjectionSchedule: weights must be in [0, 1], got {bad[:3]}")
        for layer, s in self.layer_scale.items():
            if not 0.0 <= s <= 1.0:
                raise ConfigError(f"InjectionSchedule: layer_scale[{layer!r}]={s} is outside [0, 1]")

    def weight(self, step: int, layer: str | None = None) -> float:
        """Source weight at denoising ``step`` (0-based) for ``layer``."""
        if not 0 <= step < self.n_steps:
            return 0.0
        end = self.n_steps if self.end is None else self.end
        in_window = self.start <= step < end
        c, s, n = self.curve, self.strength, self.n_steps
        if c == "constant":
            w = s
        elif c == "window":
            w = s if in_window else 0.0
        elif c == "ramp":
            w = s * step / n
        elif c == "ramp_down":
            w = s * (1 - step / n)
        elif c == "cosine":
            w = s * 0.5 * (1 + math.cos(math.pi * step / max(n - 1, 1)))
        else:
            w = float(self.weights[step])  # type: ignore[index]
        if c in ("ramp", "ramp_down", "cosine", "custom") and not in_window:
            w = 0.0
        return w * self.layer_scale.get(layer, 1.0) if layer is not None else w

    def curve_values(self) -> list[float]:
        return [self.weight(i) for i in range(self.n_steps)]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> InjectionSchedule:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"InjectionSchedule: unknown fields {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> InjectionSchedule:
        return cls.from_dict(json.loads(text))

    @classmethod
    def musickv(cls, layers: list[str], n_steps: int, **kw) -> InjectionSchedule:
        """MusicKV's reference schedule: K and V, all tokens, source weight rising 0 -> 1 over the steps."""
        return cls(layers=layers, kind="kv", curve="ramp", n_steps=n_steps, **kw)

    @classmethod
    def first_steps(
        cls, layers: list[str], n_steps: int, inject_steps: int, kind: str = "kv", **kw
    ) -> InjectionSchedule:
        """RF-Edit / MusRec: full replacement during the first ``inject_steps`` denoising steps."""
        return cls(layers=layers, kind=kind, curve="window", start=0, end=inject_steps, n_steps=n_steps, **kw)
