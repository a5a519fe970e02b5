"""Editor configs: dataclasses that validate themselves and round-trip through JSON.

:class:`JsonConfig` gives every config ``to_dict`` / ``to_json`` / ``from_dict`` / ``from_json`` / ``replace``:
unknown keys are an error with a close-match suggestion, nested config dataclasses are rebuilt, non-finite numbers
are refused. :class:`EditConfig` holds what every editor shares (steps, solver, guidance, captures).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from musicprobe.errors import ConfigError, check_fields, check_known

C = TypeVar("C", bound="JsonConfig")


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


check_keys = check_fields  # the editors' name for it


def check_finite(obj: Any) -> None:
    """Refuse NaN or infinite floats in a dataclass's fields (names the field)."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{type(obj).__name__}: {f.name} must be a finite number, got {v}")


class JsonConfig:
    """Mixin for dataclass configs (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        check_keys(cls, d)
        kw = dict(d)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            default = _default_of(f)
            if f.name in kw and isinstance(kw[f.name], dict) and dataclasses.is_dataclass(default):
                sub = type(default)
                kw[f.name] = sub.from_dict(kw[f.name]) if hasattr(sub, "from_dict") else sub(**kw[f.name])
        return cls(**kw)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))

    def replace(self: C, **kw: Any) -> C:
        """A validated copy with ``kw`` changed."""
        check_keys(type(self), kw)
        return dataclasses.replace(self, **kw)  # type: ignore[type-var]


@dataclass
class EditConfig(JsonConfig):
    """What every editor shares.

    Args:
        steps: denoising steps (the inversion uses the same grid).
        solver: the sampler (``euler``, ``rf-solver`` for flow models; ``ddim``, ``ddpm`` for epsilon models).
        source_guidance: CFG scale while inverting / regenerating the source (1 = no guidance).
        target_guidance: CFG scale of the edit.
        capture: hook names whose attention the result keeps (heads averaged, conditional branch, mean over steps).
        x0_clip: clip each step's clean estimate to the data range of a model that declares one (mini-LDM,
            mini-InstructME; see :class:`~musicprobe.inversion.Sampler`).
    """

    steps: int = 25
    solver: str = "rf-solver"
    source_guidance: float = 1.0
    target_guidance: float = 4.0
    capture: list[str] = field(default_factory=list)
    x0_clip: bool = True

    def __post_init__(self) -> None:
        from musicprobe.inversion import SOLVERS

        check_finite(self)
        check_known("solver", self.solver, SOLVERS)
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        for name in ("source_guidance", "target_guidance"):
            if getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be >= 1 (1 = no classifier-free guidance), got {getattr(self, name)}")
        if isinstance(self.capture, str):
            raise ConfigError("capture must be a list of hook names, not one string")
