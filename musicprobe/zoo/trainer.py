"""The one training loop of the zoo: AdamW with warm-up + cosine, gradient clipping, EMA, resumable checkpoints.

Every zoo recipe supplies only ``loss_at(step, generator) -> loss`` (its batch drawn from a generator seeded by the
step, so a resumed run sees exactly the batches an uninterrupted one would) and ``export(ema, step, segments)``
(writes the weights with provenance). The run folder keeps ``checkpoint.pt`` (model, EMA, optimiser, step, schedule
segments) and ``loss.jsonl``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.zoo.corpus import TRAIN_SEED


@dataclass
class LoopConfig:
    steps: int = 6000
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0 or self.warmup < 0:
            raise ConfigError("LoopConfig: steps >= 1, lr > 0 and warmup >= 0 are required")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError("LoopConfig: ema_decay must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CorpusTrainConfig:
    """What every zoo recipe trained on the synthetic corpus shares; subclasses add ``loop`` and ``model``."""

    batch_size: int = 16
    n_clips: int = 2400
    corpus_seed: int = TRAIN_SEED
    workers: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.n_clips < self.batch_size:
            raise ConfigError("batch_size must be >= 1 and n_clips >= batch_size")
        if not 0 <= getattr(self, "cond_dropout", 0.0) < 1:
            raise ConfigError("cond_dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        model = getattr(self, "model", None)
        if hasattr(model, "to_dict"):
            d["model"] = model.to_dict()
        return d


@dataclass
class DiffusionTrainConfig(CorpusTrainConfig):
    """A text-conditioned diffusion recipe: ``cond_dropout`` replaces the caption by the empty prompt (for CFG)."""

    cond_dropout: float = 0.1


def provenance_meta(name: str, cfg: CorpusTrainConfig, step: int, segments: list[dict]) -> dict:
    """What an exported zoo model records about its training."""
    return {
        "name": name,
        "train_steps": step,
        "schedule_segments": segments,
        "corpus_seed": cfg.corpus_seed,
        "corpus_clips": cfg.n_clips,
        "init_seed": cfg.loop.seed,  # type: ignore[attr-defined]
        "train": {k: v for k, v in cfg.to_dict().items() if k != "model"},
    }


def export_model(out: Path, model: object) -> Path:
    """Save ``model`` (anything with ``save(folder)``) as ``out/model``, replacing the previous export."""
    model.save(out / "model.tmp")  # type: ignore[attr-defined]
    return replace_folder(out / "model.tmp", out / "model")


def corpus_codec(corpus, base=None):
    """``base`` (default: the shared codec) with the corpus's log-mel mean / std: the statistics every mini model
    on the shared codec standardises its inputs with."""
    from musicprobe.models.codec import CodecConfig

    base = base or CodecConfig()
    m = corpus.mels.astype(np.float32)
    return CodecConfig(**{**base.to_dict(), "mel_mean": round(float(m.mean()), 4), "mel_std": round(float(m.std()), 4)})


def standardised_corpus(cfg: CorpusTrainConfig, codec):
    """The training corpus, its log-mels standardised with their own mean/std, and the codec config recording
    those statistics (what mini-flux and mini-LDM train on)."""
    from musicprobe.zoo.corpus import cached_corpus

    corpus = cached_corpus(cfg.n_clips, cfg.corpus_seed, codec, workers=cfg.workers)
    stats = corpus_codec(corpus, codec)
    return corpus, (corpus.mels.astype(np.float32) - stats.mel_mean) / stats.mel_std, stats


def caption_states(corpus, max_tokens: int):
    """MiniLM states of every caption of ``corpus`` plus the empty prompt (last row), for condition dropout:
    ``(tokens, pooled, mask, captions_per_clip, empty_row)``. Padding states are exactly zero, so the mask is
    where a state is non-zero."""
    from musicprobe.zoo.corpus import cached_text

    texts = [c for caps in corpus.captions for c in caps]
    tokens, pooled = cached_text(texts + [""], max_tokens)
    mask = (tokens.abs().sum(-1) > 0).float()
    return tokens, pooled, mask, len(corpus.captions[0]), len(texts)


def draw_captions(g: torch.Generator, idx: torch.Tensor, n_caps: int, empty: int, dropout: float) -> torch.Tensor:
    """One caption row per clip in ``idx``, replaced by the empty prompt with probability ``dropout``."""
    b = len(idx)
    cap = idx * n_caps + torch.randint(n_caps, (b,), generator=g)
    drop = torch.rand(b, generator=g) < dropout
    return torch.where(drop, torch.full_like(cap, empty), cap)


@dataclass
class CaptionedCorpus:
    """The standardised training corpus with every caption's MiniLM states: what the diffusion recipes (mini-flux,
    mini-SAO, mini-LDM) draw their batches from. ``model_config`` is the recipe's model config with the corpus's
    log-mel statistics written into its codec."""

    corpus: Any
    mels: np.ndarray  # standardised log-mels (clips, n_mels, n_frames)
    model_config: Any
    tokens: torch.Tensor
    pooled: torch.Tensor
    mask: torch.Tensor
    n_caps: int
    empty: int

    def draw(self, g: torch.Generator, batch: int, dropout: float) -> tuple[torch.Tensor, Any]:
        """``batch`` clip indices and their caption states (the empty prompt with probability ``dropout``)."""
        from musicprobe.models.text import TextStates

        idx = torch.randint(len(self.corpus), (batch,), generator=g)
        cap = draw_captions(g, idx, self.n_caps, self.empty, dropout)
        return idx, TextStates(self.tokens[cap].float(), self.mask[cap], self.pooled[cap].float())


def captioned_corpus(cfg: CorpusTrainConfig, log: Callable[[str], object] = print) -> CaptionedCorpus:
    """The corpus of ``cfg`` standardised, its captions encoded, and ``cfg.model`` with the corpus statistics."""
    corpus, std_mels, codec = standardised_corpus(cfg, cfg.model.codec)  # type: ignore[attr-defined]
    model = cfg.model  # type: ignore[attr-defined]
    model_cfg = type(model).from_dict({**model.to_dict(), "codec": codec.to_dict()})
    log(f"corpus: {len(corpus)} clips, log-mel mean {codec.mel_mean:.3f} std {codec.mel_std:.3f}")
    tokens, pooled, mask, n_caps, empty = caption_states(corpus, model_cfg.max_text_tokens)
    return CaptionedCorpus(corpus, std_mels, model_cfg, tokens, pooled, mask, n_caps, empty)


LossAt = Callable[[int, torch.Generator], "torch.Tensor | tuple[torch.Tensor, dict]"]


def train_mel_model(
    out: Path,
    cfg: CorpusTrainConfig,
    data: CaptionedCorpus,
    name: str,
    model_class: Any,
    make_loss: Callable[[Any], LossAt],
    log: Callable[[str], object] = print,
    init_from: str | Path | None = None,
    **model_kw: Any,
) -> Path:
    """The recipe every mini model on the shared codec follows: build ``model_class``'s network at the loop seed,
    wrap it (``model_class(network, config, **model_kw)``), train ``make_loss(model)`` with :func:`train_loop`, and
    export the EMA weights with provenance under ``name``. Returns the exported folder ``out/model``.

    ``init_from``: a zoo name or an exported model folder whose weights start the run (a fine-tune); parameters the
    new network adds keep their initialisation, and the export's own provenance is kept under ``init_from``."""
    network = model_class.build(data.model_config, seed=cfg.loop.seed)  # type: ignore[attr-defined]
    init_meta = initialise_from(network, init_from, log) if init_from else None
    model = model_class(network, data.model_config, **model_kw)
    loss_at = make_loss(model)
    log(f"{name}: {sum(p.numel() for p in network.parameters()) / 1e6:.2f} M parameters")

    def export(ema: torch.nn.Module, step: int, segments: list[dict]) -> Path:
        meta = provenance_meta(name, cfg, step, segments)
        if init_meta is not None:
            meta["init_from"] = init_meta
        return export_model(out, model_class(ema, data.model_config, meta=meta, **model_kw))

    train_loop(out, network, loss_at, cfg.loop, export, train_config=cfg.to_dict(), log=log)
    return out / "model"


def export_folder(source: str | Path) -> Path:
    """The folder of an exported model named by ``source`` (a zoo name or a folder); a clear error if it has none."""
    from musicprobe.zoo import MODELS, weights_dir

    folder = weights_dir(str(source)) if str(source) in MODELS else Path(source)
    if not (folder / "config.json").exists():
        raise ConfigError(f"no exported model to start from in {folder} (config.json missing)")
    return folder


def initialise_from(network: torch.nn.Module, source: str | Path, log: Callable[[str], object] = print) -> dict:
    """Load an exported model's weights (``source``: a zoo name or a folder) into ``network`` (which may add
    parameters, never drop or reshape one); returns what the export recorded about its own training (name, steps,
    schedule segments)."""
    from musicprobe.models.weights import read_weights

    folder = export_folder(source)

    _, meta, state = read_weights(folder, "initial")
    own = network.state_dict()
    unknown = sorted(k for k in state if k not in own or own[k].shape != state[k].shape)
    if unknown:
        raise ConfigError(f"cannot start from {folder}: {len(unknown)} of its weights do not fit this network "
                          f"(first: {unknown[0]}); a fine-tune may add parameters, not change existing ones")
    network.load_state_dict(state, strict=False)
    added = [k for k in own if k not in state]
    log(f"initialised from {folder} ({meta.get('name', '?')}, {meta.get('train_steps', '?')} steps); "
        f"{len(added)} new tensors keep their initialisation")
    keep = ("name", "train_steps", "schedule_segments", "corpus_seed", "corpus_clips", "train")
    return {**{k: meta[k] for k in keep if k in meta}, "new_tensors": added}


def cosine_lr(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then a cosine from ``lr`` down to ``0.1 * lr`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def first_segment(out: Path, start: int) -> list[dict]:
    """The schedule of a checkpoint written before segments were recorded (read from its train_config.json)."""
    old = out / "train_config.json"
    d = json.loads(old.read_text()) if old.exists() else {}
    planned = d.get("steps") or d.get("loop", {}).get("steps") or start
    return [{"from_step": 0, "to_step": start, "schedule_steps": planned}]


def extend_segments(segments: list[dict], start: int, planned: int) -> list[dict]:
    """Record that steps ``start..planned`` follow a learning-rate schedule planned over ``planned`` steps.

    A run resumed with a longer ``steps`` continues the cosine schedule of the new length (a gentle warm
    restart); the segments keep that history in the exported weights' provenance.
    """
    kept = [dict(s) for s in segments if s["from_step"] < start]
    if kept and kept[-1]["schedule_steps"] == planned:
        kept[-1]["to_step"] = planned  # a plain resume of the same schedule
        return kept
    if kept:
        kept[-1]["to_step"] = start
    if start < planned:
        kept.append({"from_step": start, "to_step": planned, "schedule_steps": planned})
    return kept


def config_changes(old: dict, new: dict, prefix: str = "") -> dict[str, list]:
    """``{"dotted.key": [old, new]}`` for every setting a resumed run changes, except the schedule length (the
    segments record it) and the data-loading ``workers``."""
    changes: dict[str, list] = {}
    for key in sorted(set(old) | set(new)):
        a, b, name = old.get(key), new.get(key), prefix + key
        if isinstance(a, dict) and isinstance(b, dict):
            changes.update(config_changes(a, b, name + "."))
        elif a != b and name not in ("loop.steps", "steps", "workers"):
            changes[name] = [a, b]
    return changes


def train_loop(
    out: Path,
    module: torch.nn.Module,
    loss_at: Callable[[int, torch.Generator], torch.Tensor | tuple[torch.Tensor, dict]],
    cfg: LoopConfig,
    export: Callable[[torch.nn.Module, int, list[dict]], object],
    *,
    train_config: dict | None = None,
    log: Callable[[str], object] = print,
) -> None:
    """Train ``module`` for ``cfg.steps`` steps in ``out`` (resuming from ``out/checkpoint.pt`` if present).

    ``loss_at`` may return ``(loss, extras)``; the extras (floats) are averaged into ``loss.jsonl`` beside the loss.
    """
    out.mkdir(parents=True, exist_ok=True)
    module.train()
    ema = copy.deepcopy(module).eval().requires_grad_(False)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, segments = 0, []
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        module.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        segments = state.get("segments") or first_segment(out, start)
        log(f"resumed at step {start}")
    new_config = train_config or cfg.to_dict()
    old_path = out / "train_config.json"
    changed = config_changes(json.loads(old_path.read_text()), new_config) if start and old_path.exists() else {}
    segments = extend_segments(segments, start, cfg.steps)
    if changed:  # a recipe changed mid-run: the provenance says from which step
        last = segments.pop()
        if last["from_step"] < start:
            segments.append({**last, "to_step": start})
        segments.append({**last, "from_step": start, "config_changes": changed})
        log(f"resumed with changed settings: {changed}")
    old_path.write_text(json.dumps(new_config, indent=2))
    t0 = time.time()
    window: dict[str, list[float]] = {}
    for step in range(start, cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        lr = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        res = loss_at(step, g)
        loss, extras = res if isinstance(res, tuple) else (res, {})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), module.parameters()):
                pe.lerp_(p, 1 - d)
        for k, v in {"loss": loss.item(), **extras}.items():
            window.setdefault(k, []).append(float(v))
        done = step + 1
        if done % cfg.log_every == 0:
            rec = {"step": done, **{k: float(np.mean(v)) for k, v in window.items()}, "lr": lr, "sec": time.time() - t0}
            with open(out / "loss.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(json.dumps(rec))
            window = {}
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            tmp = out / "checkpoint.tmp"
            state = {"model": module.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict()}
            torch.save({**state, "step": done, "segments": segments}, tmp)
            tmp.replace(ckpt)
            export(ema, done, segments)


def replace_folder(tmp: Path, final: Path) -> Path:
    """Atomically-enough move an exported folder over the previous export."""
    if final.exists():
        import shutil

        shutil.rmtree(final)
    tmp.replace(final)
    return final
