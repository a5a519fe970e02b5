"""Instruction accuracy: which instruments are in a mix, by linear probes over mini-CLAP's audio tower.

InstructME's instruction accuracy tags the edited music and checks the tags against the command (the paper uses
a tagging model). Ours: one logistic-regression probe per instrument (the corpus's instruments and drums) over
mini-CLAP features (the time-averaged feature map of every tower stage, plus the audio embedding), fitted on
mixes of random stem subsets of clips from their own corpus seed (:data:`PROBE_SEED`, disjoint from training and
held-out clips); the genre of a remix is mini-CLAP's zero-shot genre. :func:`instruction_correct` says what
counts as done for each operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicprobe.errors import check_known

PROBE_SEED = 4242


def clap_features(clap, audios: list[np.ndarray], sr: int) -> np.ndarray:
    """Time-averaged feature maps of every tower stage and the unit audio embedding, one row per clip."""
    import torch

    with torch.no_grad():
        maps = clap.feature_maps(audios, sr)
        emb = clap.embed_audio(audios, sr)
    pooled = [m.float().mean(dim=tuple(range(2, m.ndim))) for m in maps]
    return torch.cat([*pooled, emb.float()], dim=1).numpy()


@dataclass
class PresenceProbe:
    """``detect(audios, sr)`` -> for each clip the set of instruments heard."""

    names: tuple[str, ...]
    coef: np.ndarray  # (n_names, n_features)
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    clap: object
    train_accuracy: float = float("nan")

    def probabilities(self, audios: list[np.ndarray], sr: int) -> np.ndarray:
        x = (clap_features(self.clap, audios, sr) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef.T + self.intercept)))

    def detect(self, audios: list[np.ndarray], sr: int) -> list[set[str]]:
        p = self.probabilities(audios, sr)
        return [{n for n, v in zip(self.names, row) if v > 0.5} for row in p]


def _training_mixes(n_clips: int, seed: int):
    """Mixes of random stem subsets with their instrument sets; half the clips first have their melody or chords
    re-played by a random instrument (so unusual pairings, as replace edits make them, are seen)."""
    from musicprobe.synth import make_clip
    from musicprobe.synth.corpus import clip_seed
    from musicprobe.synth.instruct import StemState, apply, operation_choices

    rng = np.random.default_rng(seed)
    audios, labels = [], []
    for i in range(n_clips):
        state = StemState.of_clip(make_clip(clip_seed(seed, i), duration=5.12))
        if rng.random() < 0.5:
            choices = operation_choices(state, "replace")
            state = apply(state, "replace", **choices[int(rng.integers(len(choices)))])[0]
        tracks = list(state.stems)
        subsets = [tracks] + [[t] for t in tracks] + [[u for u in tracks if u != t] for t in tracks]
        pick = rng.choice(len(subsets), size=min(4, len(subsets)), replace=False)
        for k in pick:
            sub = subsets[k]
            if not sub:
                continue
            audios.append(np.sum([state.stems[t] for t in sub], axis=0).astype(np.float32))
            labels.append({state.instrument(t) for t in sub})
    return audios, labels


_PROBES: dict[tuple, PresenceProbe] = {}


def presence_probe(clap, n_clips: int = 320, seed: int = PROBE_SEED) -> PresenceProbe:
    """The probe over ``clap`` (mini-CLAP or any model with ``feature_maps`` and ``embed_audio``): fitted once (two
    minutes of CPU for mini-CLAP), then read from the cache folder (keyed by the model's weights)."""
    import hashlib

    import torch

    from musicprobe.cache import cache_dir

    net = getattr(clap, "net", None)
    params = [p.detach().float().flatten()[:64] for p in net.parameters()] if isinstance(net, torch.nn.Module) else []
    stamp = hashlib.sha256(b"".join(p.numpy().tobytes() for p in params)).hexdigest()[:12]
    key = (stamp, n_clips, seed)
    if key in _PROBES:
        return _PROBES[key]
    path = cache_dir() / f"presence_s{seed}_n{n_clips}_c{stamp}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        probe = PresenceProbe(tuple(str(n) for n in z["names"]), z["coef"], z["intercept"], z["mean"], z["scale"],
                              clap, float(z["train_accuracy"]))
    else:
        probe = fit_presence_probe(clap, n_clips, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, names=np.array(probe.names), coef=probe.coef, intercept=probe.intercept, mean=probe.mean,
                 scale=probe.scale, train_accuracy=probe.train_accuracy)
    _PROBES[key] = probe
    return probe


def fit_presence_probe(clap, n_clips: int, seed: int = PROBE_SEED) -> PresenceProbe:
    """One logistic regression per instrument over :func:`clap_features` of :func:`_training_mixes`."""
    from sklearn.linear_model import LogisticRegression

    from musicprobe.synth.instruments import INSTRUMENTS

    audios, labels = _training_mixes(n_clips, seed)
    x = np.concatenate([clap_features(clap, audios[i : i + 64], 16000) for i in range(0, len(audios), 64)])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    names = tuple(list(INSTRUMENTS) + ["drums"])
    coef, icpt, correct = [], [], []
    for n in names:
        y = np.array([n in lab for lab in labels], dtype=int)
        if y.min() == y.max():  # never (or always) present in the probe set: a constant answer
            coef.append(np.zeros(x.shape[1]))
            icpt.append(-20.0 if y.max() == 0 else 20.0)
            correct.append(1.0)
            continue
        clf = LogisticRegression(C=0.5, max_iter=2000).fit(xs, y)
        coef.append(clf.coef_[0])
        icpt.append(float(clf.intercept_[0]))
        correct.append(float((clf.predict(xs) == y).mean()))
    return PresenceProbe(names, np.array(coef), np.array(icpt), mean, scale, clap, float(np.mean(correct)))


def instruction_correct(op: str, args: dict, present: set[str], genre: str = "") -> bool:
    """Whether an edit did what its instruction asked, from the instruments detected after it (and its genre):
    add X -> X heard; remove X -> X not heard; extract X -> X heard and nothing else; replace A with B -> B heard
    and A not; remix as G -> the genre is G."""
    from musicprobe.synth.instruct import OPERATIONS

    check_known("operation", op, OPERATIONS)
    if op == "remix":
        return genre == args["genre"]
    x = args.get("instrument", "")
    if op == "add":
        return x in present
    if op == "remove":
        return x not in present
    if op == "extract":
        return present == {x}
    return args["new"] in present and x not in present
