"""Injection schedules: which layers, which steps and how strongly source K/V replace the edit's own.

The weight ``w`` is the *source* share: ``K = w * K_source + (1 - w) * K_edit``. ``w = 1`` is full replacement
(MusRec / RF-Edit / Stable Flow); MusicKV's reference code ramps ``w`` from 0 at the first step to about 1 at
the last (``t_ratio = 1 - i/N`` is the edit's share there).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from musicprobe.errors import ConfigError, check_fields

CURVES = ("constant", "window", "ramp", "ramp_down", "cosine", "custom")
KINDS = ("k", "v", "kv")
TOKENS = ("all", "audio")
BRANCHES = ("all", "cond", "uncond")


@dataclass(kw_only=True)
class ScheduleSpec:
    """How strongly, where and when source K/V replace the edit's own, independent of layers and step count.

    Args:
        kind: inject keys, values or both.
        tokens: ``"all"`` tokens (RF-Edit: text tokens too) or ``"audio"`` tokens only (Stable Flow).
        branch: which half of a CFG-doubled batch receives source features.
        curve: ``constant`` / ``window`` (``strength``), ``ramp`` (0 -> ``strength`` linearly: MusicKV),
            ``ramp_down`` (``strength`` -> 0), ``cosine`` (``strength`` * half-cosine decay), ``custom``
            (``weights`` per step). Every curve is 0 outside the steps ``[start, end)``.
        layer_scale: optional per-layer multipliers in [0, 1].
    """

    kind: str = "kv"
    tokens: str = "all"
    branch: str = "all"
    curve: str = "constant"
    strength: float = 1.0
    start: int = 0
    end: int | None = None
    weights: list[float] | None = None
    layer_scale: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("kind", self.kind, KINDS),
            ("tokens", self.tokens, TOKENS),
            ("branch", self.branch, BRANCHES),
            ("curve", self.curve, CURVES),
        ):
            if value not in allowed:
                raise ConfigError(f"{type(self).__name__}: {name}={value!r} is not one of {allowed}")
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"{type(self).__name__}: strength must be in [0, 1], got {self.strength}")
        if self.weights is not None:
            bad = [w for w in self.weights if not 0.0 <= w <= 1.0 or math.isnan(w)]
            if bad:
                raise ConfigError(f"{type(self).__name__}: weights must be in [0, 1], got {bad[:3]}")
        for layer, s in self.layer_scale.items():
            if not 0.0 <= s <= 1.0:
                raise ConfigError(f"{type(self).__name__}: layer_scale[{layer!r}]={s} is outside [0, 1]")

    def check_steps(self, n_steps: int) -> None:
        """Validate the parts that depend on the number of denoising steps."""
        where = type(self).__name__
        if n_steps < 1:
            raise ConfigError(f"{where}: n_steps must be >= 1, got {n_steps}")
        end = n_steps if self.end is None else self.end
        if not 0 <= self.start <= end <= n_steps:
            raise ConfigError(
                f"{where}: need 0 <= start <= end <= n_steps={n_steps}, got start={self.start}, end={self.end}"
            )
        if self.curve == "custom" and (not self.weights or len(self.weights) != n_steps):
            raise ConfigError(
                f"{where}: custom curve needs {n_steps} weights, got {0 if not self.weights else len(self.weights)}"
            )

    def weight_at(self, step: int, n_steps: int, layer: str | None = None) -> float:
        """Source weight at denoising ``step`` (0-based) of ``n_steps`` for ``layer``."""
        if not 0 <= step < n_steps:
            return 0.0
        end = n_steps if self.end is None else self.end
        if not self.start <= step < end:
            return 0.0
        c, s, n = self.curve, self.strength, n_steps
        if c in ("constant", "window"):
            w = s
        elif c == "ramp":
            w = s * step / n
        elif c == "ramp_down":
            w = s * (1 - step / n)
        elif c == "cosine":
            w = s * 0.5 * (1 + math.cos(math.pi * step / max(n - 1, 1)))
        else:
            w = float(self.weights[step])  # type: ignore[index]
        return w * self.layer_scale.get(layer, 1.0) if layer is not None else w

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        check_fields(cls, d)
        return cls(**d)

    def for_layers(self, layers: list[str], n_steps: int) -> InjectionSchedule:
        """This spec over ``layers`` and ``n_steps`` steps."""
        return InjectionSchedule(list(layers), n_steps, **asdict(self))


@dataclass
class InjectionSchedule(ScheduleSpec):
    """A validated, JSON-serialisable schedule over steps x layers: a :class:`ScheduleSpec` with its ``layers``
    (attention point names, e.g. ``["single_blocks.3.attn"]``) and the ``n_steps`` the curve spans."""

    layers: list[str]
    n_steps: int = 25

    def __post_init__(self) -> None:
        if isinstance(self.layers, str):
            self.layers = [self.layers]
        self.layers = list(self.layers)
        if not self.layers:
            raise ConfigError("InjectionSchedule: give at least one layer")
        super().__post_init__()
        self.check_steps(self.n_steps)

    @property
    def spec(self) -> ScheduleSpec:
        """The curve without layers and step count."""
        d = asdict(self)
        del d["layers"], d["n_steps"]
        return ScheduleSpec(**d)

    def weight(self, step: int, layer: str | None = None) -> float:
        """Source weight at denoising ``step`` (0-based) for ``layer``."""
        return self.weight_at(step, self.n_steps, layer)

    def curve_values(self) -> list[float]:
        return [self.weight(i) for i in range(self.n_steps)]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

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
