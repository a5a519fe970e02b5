"""Vital layers: the top-k of a probing method, with its scores cached per model (shipped, then the user cache).

Scores belong to one model: :func:`model_key` hashes the model's config and provenance, and cached scores are used
only when their key matches. Shipped scores sit beside the mini-flux weights (``musicprobe probe-layers`` output,
seeds 0 and 1); anything computed here goes to the user cache (:func:`musicprobe.cache.cache_dir`), never into the
package folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from musicprobe.errors import ConfigError

METHODS = ("bypass", "patching")


def model_key(model) -> str:
    """A short hash of a model's config, provenance and decoder (what the probing scores belong to: the scores are
    measured on decoded audio, so another decoder gives other scores)."""
    codec = getattr(model, "codec", None)
    decoder = {"decoder": getattr(codec, "decoder", None)}
    if decoder["decoder"] == "vocoder":
        decoder["vocoder"] = codec.vocoder.meta.get("train_steps")
        decoder["refine"] = codec.vocoder.refine
    ident = json.dumps({"config": model.config.to_dict(), **model.meta, **decoder}, sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:12]


def scores_cache_path(model, method: str) -> Path:
    """Where the probing scores of ``model`` are cached in the user cache."""
    from musicprobe.cache import cache_dir

    return cache_dir() / f"probing_{method}_{model_key(model)}.json"


def shipped_scores_path(method: str, model_name: str = "mini-flux") -> Path:
    """Probing scores shipped beside a zoo model's weights (``musicprobe probe-layers`` output, seeds 0 and 1)."""
    from musicprobe.zoo import weights_dir

    return weights_dir(model_name) / f"probing_{method}.json"


def vital_layers(model, clap, k: int, method: str = "bypass", cache: bool = True):
    """Top-``k`` attention layers of a zoo model (mini-flux, mini-SAO) by ``method`` (``bypass`` or ``patching``),
    with their scores.

    Scores come from the file shipped with the weights when it was computed for this very model, else from the
    user cache, else they are computed (about 1.5 min for bypass, 4 min for patching on 2 CPU cores).
    """
    from musicprobe.probing.layers import LayerScores, probe_layers
    from musicprobe.probing.patching import patch_layers

    if method not in METHODS:
        raise ConfigError(f"vital_layers: method must be one of {METHODS}, got {method!r}")
    key = model_key(model)
    shipped = shipped_scores_path(method, model.meta.get("name", "mini-flux"))
    for path in (shipped, scores_cache_path(model, method)):
        if cache and path.exists():
            scores = LayerScores.load(path)
            if scores.settings.get("model_key") == key:
                return scores.top_k(k), scores
    if method == "bypass":
        scores = probe_layers(model, clap, seeds=(0, 1), progress=True)
    else:
        scores = patch_layers(model, clap, seeds=(0, 1), progress=True)
    scores.settings["model_key"] = key
    if cache:
        path = scores_cache_path(model, method)
        path.parent.mkdir(parents=True, exist_ok=True)
        scores.save(path)
    return scores.top_k(k), scores
