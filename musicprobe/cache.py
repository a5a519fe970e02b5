"""Where musicprobe keeps derived data it can rebuild (corpus mels, text encodings, probing scores)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MUSICPROBE_CACHE`` or ``~/.cache/musicprobe`` (not created here)."""
    return Path(os.environ.get("MUSICPROBE_CACHE", Path.home() / ".cache" / "musicprobe"))
