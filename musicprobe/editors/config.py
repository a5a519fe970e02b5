"""JSON round trip and copy-with-changes shared by the editors' config dataclasses."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, TypeVar

from musicprobe.errors import ConfigError

C = TypeVar("C", bound="JsonConfig")


class JsonConfig:
    """Mixin for dataclass configs: to_dict / to_json, from_json (unknown fields are an error), replace."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        d = json.loads(text)
        unknown = set(d) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**d)

    def replace(self: C, **kw: Any) -> C:
        """A validated copy with ``kw`` changed."""
        return type(self)(**{**self.to_dict(), **kw})
