"""A pipeline at a real architecture with random weights: shape-true for time and memory, no weights needed.

``random_pipeline(kind, source)`` reads only the configuration files of ``source`` (a folder, or a hub id already
in the local cache: ``model_index.json`` and each component's ``config.json``, tokenizers, scheduler) and builds
every network from its config with random weights. ``bench backends --model KIND:SOURCE`` and the GPU tests time
and measure edits on it at the papers' sizes without downloading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from musicprobe.errors import MusicProbeError, check_known


def _component_class(library: str, name: str) -> type:
    if library in ("diffusers", "transformers"):
        module = __import__(library, fromlist=[name])
    else:  # a pipeline's own module, e.g. ["audioldm2", "AudioLDM2UNet2DConditionModel"]
        module = __import__(f"diffusers.pipelines.{library}", fromlist=[name])
    return getattr(module, name)


def _build(klass: type, source: str, subfolder: str | None) -> Any:
    """A network from its config (random weights); anything else (tokenizer, scheduler) loaded as it is."""
    from diffusers import ModelMixin
    from transformers import PreTrainedModel

    kw = {"subfolder": subfolder} if subfolder else {}
    if issubclass(klass, ModelMixin):
        return klass.from_config(klass.load_config(source, **kw))
    if issubclass(klass, PreTrainedModel):
        return audible(klass._from_config(klass.config_class.from_pretrained(source, **kw)))
    return klass.from_pretrained(source, **kw)


def audible(module: Any) -> Any:
    """Re-draw a random HiFi-GAN's convolutions with fan-in scaled weights: its own init (std 0.01) makes a random
    vocoder all but silent (peak ~1e-9), which the metrics rightly refuse. Other modules are left as they are."""
    if type(module).__name__ == "SpeechT5HifiGan":
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                torch.nn.init.kaiming_uniform_(m.weight, a=0.1)
    return module


def _model_index(source: str) -> dict:
    folder = Path(source)
    if folder.is_dir():
        path = folder / "model_index.json"
        if not path.is_file():
            raise MusicProbeError(f"{source} has no model_index.json: is it a diffusers pipeline folder?")
        return json.loads(path.read_text())
    from diffusers import DiffusionPipeline

    return dict(DiffusionPipeline.load_config(source))


def random_pipeline(kind: str, source: str | Path, seed: int = 0) -> Any:
    """The pipeline of backend ``kind`` with the architecture ``source`` describes and random weights."""
    from musicprobe.models.backends import BACKENDS

    check_known("backend", kind, BACKENDS)
    source = str(source)
    torch.manual_seed(seed)
    try:
        if kind == "musicgen":
            from transformers import AutoTokenizer, MusicgenForConditionalGeneration

            from musicprobe.models.backends.musicgen import MusicGenPipeline

            return MusicGenPipeline(_build(MusicgenForConditionalGeneration, source, None),
                                    AutoTokenizer.from_pretrained(source))
        if kind == "fluxmusic":
            from musicprobe.models.backends.fluxmusic import FluxMusicPipeline

            classes = FluxMusicPipeline.part_classes()
            return FluxMusicPipeline(*(_build(classes[p], source, p) for p in FluxMusicPipeline.parts))
        index = _model_index(source)
        pipeline = _component_class("diffusers", index["_class_name"])
        parts = {name: _build(_component_class(*spec), source, name)
                 for name, spec in index.items() if not name.startswith("_") and spec[0] is not None}
        return pipeline(**parts)
    except OSError as exc:
        raise MusicProbeError(f"cannot read the {kind} architecture from {source!r}: {exc}. Offline, give a folder "
                              "with the pipeline's config files (the weights are not needed)") from exc
