"""Models: the protocols editors program against, the mini-model definitions (weights live in the zoo), tiny
random-init models from config (no downloads) and the real `from_pretrained` loaders."""

from musicprobe.models.tiny import TINY_MODELS, TinyModel, tiny_model

__all__ = ["TINY_MODELS", "TinyModel", "tiny_model"]
