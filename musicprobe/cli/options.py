"""Command-line options generated from a config dataclass: one set of defaults, read from the dataclass."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

SKIP = ("capture",)


def add_config_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = SKIP) -> None:
    """``--field-name`` for every scalar field of dataclass ``cls`` (its default, its type, its docstring)."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, type=_bool, default=value, metavar="true|false", help=f"default {value}")
        elif isinstance(value, (int, float, str)):
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")


def config_from_args(cls: type, args: argparse.Namespace, skip: tuple[str, ...] = SKIP) -> Any:
    """The config dataclass ``cls`` built from the options :func:`add_config_options` added (validated)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip and hasattr(args, f.name)]
    kw = {n: getattr(args, n) for n in names}
    return cls(**kw)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
