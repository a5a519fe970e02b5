"""Model builders: tiny random-init models from config (no downloads) and, later, the trained mini-model zoo."""

from musicprobe.models.tiny import TINY_MODELS, TinyModel, tiny_model

__all__ = ["TINY_MODELS", "TinyModel", "tiny_model"]
