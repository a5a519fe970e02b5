"""Which layers matter: bypass and patching scores, attention statistics and token attributions."""

from musicprobe.probing.attribution import TokenAttribution, attribute_tokens
from musicprobe.probing.layers import DEFAULT_PROMPTS, VIEWS, LayerScores, probe_layers, probe_points
from musicprobe.probing.patching import DEFAULT_PAIRS, patch_layers
from musicprobe.probing.stats import STATS, AttentionStats, attention_statistics, attention_stats_of
from musicprobe.probing.vital import METHODS, model_key, scores_cache_path, shipped_scores_path, vital_layers

__all__ = [
    "DEFAULT_PAIRS",
    "DEFAULT_PROMPTS",
    "METHODS",
    "STATS",
    "VIEWS",
    "AttentionStats",
    "LayerScores",
    "TokenAttribution",
    "attention_statistics",
    "attention_stats_of",
    "attribute_tokens",
    "model_key",
    "patch_layers",
    "probe_layers",
    "probe_points",
    "scores_cache_path",
    "shipped_scores_path",
    "vital_layers",
]
