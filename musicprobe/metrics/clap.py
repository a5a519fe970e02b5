"""CLAP score and Fréchet Audio Distance with either mini-CLAP or a real LAION-CLAP (same call, same meaning).

- ``clap_score(model, audio, sr, text)``: cosine similarity between the audio and text embeddings, in [-1, 1]
  (papers often report ``100 * max(cos, 0)``; we keep the raw cosine so that negative values stay visible);
- ``fad(model, reference, generated, sr)``: Fréchet distance between Gaussians fitted to the two sets of audio
  embeddings (as in FAD; with the embedding model named in the result, since FADs from different models are not
  comparable);
- ``zero_shot(model, audio, sr, field)``: classify an attribute (instrument, genre, mood) with prompt ensembles.

A model is anything with ``embed_audio(list_of_audio, sr) -> (N, D)`` and ``embed_text(list_of_str) -> (N, D)``
returning unit vectors: :class:`musicprobe.models.miniclap.MiniClap` or :class:`LaionClap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from scipy import linalg

from musicprobe.errors import ConfigError, check_known


class AudioTextEmbedder(Protocol):
    name: str

    def embed_audio(self, audios: Sequence[np.ndarray], sr: int) -> torch.Tensor: ...

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor: ...


class LaionClap:
    """``transformers.ClapModel`` + its processor behind the embedder interface (audio resampled to 48 kHz)."""

    def __init__(self, model, processor, name: str = "laion-clap", device=None):
        from musicprobe.device import pick_device

        self.device = pick_device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.name = name
        self.sr = int(getattr(processor.feature_extractor, "sampling_rate", 48000))

    @classmethod
    def from_pretrained(cls, hub_id_or_folder: str, device=None) -> LaionClap:
        """A LAION CLAP checkpoint (e.g. ``laion/larger_clap_music``) from the hub cache or a folder."""
        from transformers import ClapModel, ClapProcessor

        try:
            model = ClapModel.from_pretrained(hub_id_or_folder)
            processor = ClapProcessor.from_pretrained(hub_id_or_folder)
        except OSError as exc:
            raise ConfigError(f"cannot load CLAP from {hub_id_or_folder!r}: {exc}. No hub is reachable offline: "
                              "pass a local folder, or use musicprobe.zoo.load('mini-clap')") from exc
        return cls(model, processor, name=str(hub_id_or_folder), device=device)

    @torch.no_grad()
    def embed_audio(self, audios: Sequence[np.ndarray], sr: int) -> torch.Tensor:
        from musicprobe.audio.io import resample, to_mono

        if isinstance(audios, np.ndarray) and audios.ndim == 1:
            audios = [audios]
        xs = [resample(to_mono(a), sr, self.sr) for a in audios]
        inputs = self.processor.feature_extractor(xs, sampling_rate=self.sr, return_tensors="pt").to(self.device)
        feats = self.model.get_audio_features(**inputs)
        feats = getattr(feats, "pooler_output", feats)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu()

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        inputs = self.processor.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        feats = self.model.get_text_features(**inputs)
        feats = getattr(feats, "pooler_output", feats)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu()


def _need(model: AudioTextEmbedder, what: str) -> AudioTextEmbedder:
    if model is None:
        raise ConfigError(f"{what}: pass the embedding model (e.g. musicprobe.zoo.load('mini-clap') or a LaionClap)")
    return model


def _as_list(audio) -> list[np.ndarray]:
    if isinstance(audio, np.ndarray) and audio.ndim == 1:
        return [audio]
    return list(audio)


def clap_score(model: AudioTextEmbedder, audio, sr: int, text: str | Sequence[str]) -> np.ndarray | float:
    """Cosine similarity of each audio with its text (one text for all, or one per audio)."""
    model = _need(model, "clap_score")
    audios = _as_list(audio)
    texts = [text] * len(audios) if isinstance(text, str) else list(text)
    if len(texts) != len(audios):
        raise ConfigError(f"clap_score: {len(audios)} audios but {len(texts)} texts")
    a, t = model.embed_audio(audios, sr), model.embed_text(texts)
    s = (a * t).sum(-1).numpy()
    return float(s[0]) if isinstance(audio, np.ndarray) and audio.ndim == 1 else s


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``x`` and ``y``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ConfigError("fad needs at least 2 clips in each set")
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def fad(model: AudioTextEmbedder, reference, generated, sr: int) -> dict:
    """FAD between two sets of clips in ``model``'s embedding space."""
    model = _need(model, "fad")
    e1 = model.embed_audio(_as_list(reference), sr).numpy()
    e2 = model.embed_audio(_as_list(generated), sr).numpy()
    return {"fad": frechet_distance(e1, e2), "embedding": model.name, "n_reference": len(e1), "n_generated": len(e2)}


# ---- zero-shot attribute classification -----------------------------------------------------------------------
FIELDS = ("lead", "genre", "mood")


@lru_cache(maxsize=1)
def label_space() -> dict[str, tuple[str, ...]]:
    from musicprobe.synth.genres import GENRES, MOODS

    leads = sorted({i for g in GENRES.values() for i in g.lead_choices})
    return {"lead": tuple(leads), "genre": tuple(GENRES), "mood": tuple(MOODS)}


def class_prompts(field: str, value: str) -> list[str]:
    """Prompt ensemble for ``field == value``: the corpus's caption templates over all values of the others."""
    space = label_space()
    check_known("field", field, space)
    check_known(field, value, space[field])
    out = []
    for lead in space["lead"] if field != "lead" else (value,):
        for genre in space["genre"] if field != "genre" else (value,):
            for mood in space["mood"] if field != "mood" else (value,):
                out += [f"a {mood} {genre} piece with {lead} playing the melody", f"{lead}, {genre}, {mood}"]
    return out


def class_embeddings(model: AudioTextEmbedder, field: str) -> tuple[tuple[str, ...], torch.Tensor]:
    """One unit text embedding per value of ``field`` (mean over its prompt ensemble); cached on the model."""
    cache = model.__dict__.setdefault("_class_embeddings", {})
    if field not in cache:
        values = label_space()[field]
        embs = [
            torch.nn.functional.normalize(model.embed_text(class_prompts(field, v)).mean(0), dim=-1) for v in values
        ]
        cache[field] = (values, torch.stack(embs))
    return cache[field]


def zero_shot(model: AudioTextEmbedder, audio, sr: int, field: str) -> list[str]:
    """Predicted value of ``field`` for each audio (highest cosine to the class prompt ensembles)."""
    model = _need(model, "zero_shot")
    values, cls = class_embeddings(model, field)
    a = model.embed_audio(_as_list(audio), sr)
    return [values[i] for i in (a @ cls.T).argmax(-1).tolist()]


def concept_distance(model: AudioTextEmbedder, audio, sr: int, references: Sequence[np.ndarray],
                     ref_sr: int | None = None) -> np.ndarray | float:
    """The CDPAM stand-in of personalised editing: ``1 - cos`` between a clip's audio embedding and the mean
    embedding of the concept's reference recordings (lower = sounds more like the concept).

    CDPAM (Manocha et al.) is a learned perceptual distance whose weights cannot be fetched here; like the paper we
    compare edits with the concept's references, here through the CLAP model's audio tower (mini-CLAP by default),
    which was never trained on the concept: it measures how near the edit moved to the references' timbre, not a
    calibrated perceptual judgement."""
    clips = _as_list(audio)
    e = torch.nn.functional.normalize(_need(model, "concept_distance").embed_audio(clips, sr).float(), dim=-1)
    r = torch.nn.functional.normalize(model.embed_audio(list(references), ref_sr or sr).float(), dim=-1)
    centre = torch.nn.functional.normalize(r.mean(0), dim=0)
    d = (1 - e @ centre).numpy()
    return float(d[0]) if isinstance(audio, np.ndarray) and audio.ndim == 1 else d
