"""A concept judge that listens for the lead: does a mix carry the concept's voice?

The CDPAM stand-in (:func:`musicprobe.metrics.clap.concept_distance`) compares a whole mix with the concept's solo
recordings through mini-CLAP's embedding, which weighs genre and accompaniment more than the lead's timbre, so an
edit that changes the lead and keeps the band hardly moves it (on the bundled concepts the true targets sit at
0.6 / 0.7 against their sources' 0.8 / 0.85). This judge asks the narrower question SteerMusic+'s "sounds like the
concept" is about: is the concept's voice playing in this mix?

It is fitted from what a user has, the concept's reference recordings, and nothing the benchmark scores:

- **positives**: a reference recording laid over the accompaniment (every stem but the melody) of a fitting clip,
  at that clip's melody level;
- **negatives**: the fitting clip as rendered (its corpus lead), and its accompaniment with another fitting
  clip's melody laid over it the same way (so a lead that does not follow the band is no cue).

Fitting clips come from their own seed (:data:`JUDGE_SEED`, disjoint from training, held-out, benchmark and
concept clips). Features are :func:`musicprobe.metrics.presence.clap_features` (every mini-CLAP stage pooled over
time, plus the embedding); the judge is one logistic regression. :func:`judge_report` measures what it is worth on
clips it never saw: the area under the ROC curve of true targets (the concept on the melody) against their sources
and against another concept's targets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicprobe.errors import ConfigError
from musicprobe.metrics.presence import clap_features

JUDGE_SEED = 5353


@dataclass
class ConceptJudge:
    """``probability(audios, sr)``: for each clip, how sure the judge is that the concept's voice plays in it."""

    name: str
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    clap: Any
    fit_accuracy: float = float("nan")
    n_fit: int = 0

    def probability(self, audios: np.ndarray | list[np.ndarray], sr: int) -> np.ndarray | float:
        clips = [audios] if isinstance(audios, np.ndarray) and audios.ndim == 1 else list(audios)
        x = (np.concatenate([clap_features(self.clap, clips[i:i + 64], sr) for i in range(0, len(clips), 64)])
             - self.mean) / self.scale
        p = 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))
        return float(p[0]) if len(clips) == 1 and isinstance(audios, np.ndarray) and audios.ndim == 1 else p


def _fit_like(audio: np.ndarray, n: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` rotated by a random offset, cut or tiled to ``n`` samples, at RMS ``level``."""
    a = np.roll(audio, int(rng.integers(len(audio))))
    a = np.resize(a, n).astype(np.float32)
    rms = float(np.sqrt(np.mean(a**2)))
    return a * (level / rms) if rms > 0 else a


def judge_mixes(references: list[np.ndarray], n_clips: int, seed: int = JUDGE_SEED
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """The fitting set at 16 kHz: three mixes per fitting clip (concept lead, own lead, another clip's lead)."""
    from musicprobe.synth.corpus import clip_seed, make_clip

    rng = np.random.default_rng(seed)
    clips = [make_clip(clip_seed(seed, i), duration=5.12) for i in range(n_clips)]
    audios, labels = [], []
    for i, clip in enumerate(clips):
        stems = clip.rendering.stems
        if "melody" not in stems:
            continue
        lead = stems["melody"]
        level = float(np.sqrt(np.mean(lead**2))) or 0.05
        band = np.sum([v for k, v in stems.items() if k != "melody"], axis=0).astype(np.float32)
        other = clips[(i + 1 + int(rng.integers(n_clips - 1))) % n_clips].rendering.stems["melody"]
        concept = references[int(rng.integers(len(references)))]
        audios += [band + _fit_like(concept, len(band), level, rng), clip.audio.astype(np.float32),
                   band + _fit_like(other, len(band), level, rng)]
        labels += [1, 0, 0]
    return audios, np.array(labels)


_JUDGES: dict[tuple, ConceptJudge] = {}


def concept_judge(clap: Any, references: list[np.ndarray], sr: int, name: str = "concept", n_clips: int = 96,
                  seed: int = JUDGE_SEED) -> ConceptJudge:
    """The judge of the concept whose recordings are ``references`` (any rate; resampled to 16 kHz), fitted once
    per (references, CLAP model, size) and kept in memory (about 20 s for mini-CLAP on 2 cores)."""
    import librosa
    from sklearn.linear_model import LogisticRegression

    if not references:
        raise ConfigError("concept_judge: no reference recordings")
    if n_clips < 2:
        raise ConfigError(f"concept_judge: n_clips must be at least 2 (a clip's lead is laid over another's), "
                          f"got {n_clips}")
    refs = [np.asarray(r, np.float32) if sr == 16000 else
            librosa.resample(np.asarray(r, np.float32), orig_sr=sr, target_sr=16000) for r in references]
    if any(not np.isfinite(r).all() or float(np.abs(r).max(initial=0.0)) == 0.0 for r in refs):
        raise ConfigError("concept_judge: a reference recording is silent or not finite")
    stamp = hashlib.sha256(b"".join(r.tobytes() for r in refs)).hexdigest()[:16]
    key = (stamp, id(clap), n_clips, seed)
    if key in _JUDGES:
        return _JUDGES[key]
    audios, y = judge_mixes(refs, n_clips, seed)
    x = np.concatenate([clap_features(clap, audios[i:i + 64], 16000) for i in range(0, len(audios), 64)])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    clf = LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced").fit(xs, y)
    judge = ConceptJudge(name, clf.coef_[0], float(clf.intercept_[0]), mean, scale, clap,
                         float((clf.predict(xs) == y).mean()), len(y))
    _JUDGES[key] = judge
    return judge


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a positive scores above a negative (ties count half)."""
    p, n = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def judge_report(judge: ConceptJudge, targets: list[np.ndarray], sources: list[np.ndarray], sr: int,
                 others: list[np.ndarray] | None = None) -> dict:
    """How well ``judge`` hears its concept on clips it never saw: mean probability of the true targets, their
    sources and another concept's targets, and the ROC areas targets-vs-sources and targets-vs-others."""
    pt, ps = judge.probability(targets, sr), judge.probability(sources, sr)
    out = {"targets": float(np.mean(pt)), "sources": float(np.mean(ps)), "auc_vs_sources": auc(pt, ps)}
    if others:
        po = judge.probability(others, sr)
        out |= {"others": float(np.mean(po)), "auc_vs_others": auc(pt, po)}
    return out
