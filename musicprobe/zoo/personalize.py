"""Teaching mini-LDM a personal concept: DreamSound-style DreamBooth (LoRA) and textual inversion.

A :class:`ConceptSet` is a handful of recordings of one voice and its class word: a corpus concept
(``ConceptSet.synthetic("lute")``, regenerated from its seeds) or a user's own folder of audio files
(``ConceptSet.from_folder(path, class_word=...)``). :func:`personalize` fine-tunes mini-LDM on it:

- **DreamBooth** (Ruiz et al.; DreamSound's ``dreambooth_audioldm2.py``): the prompt "a recording of a sks
  <class>" on the concept clips, plus **prior preservation** (the same loss on clips the base model generates for
  "a recording of a <class>", weight ``prior_weight``). Where DreamSound fine-tunes every UNet weight at lr 1e-5,
  we train a LoRA (rank ``rank`` on every linear and convolution weight but the timestep embedding; higher lr),
  so a concept is about 1.4 MB beside the base model; checkpoints at ``checkpoints`` steps (50 / 100 / 200: the
  paper's fine-tuning-steps study).
- **Textual inversion** (Gal et al.; DreamSound's ``textual_inversion_audioldm.py``): only the input embeddings
  of the token's word pieces are learned, the UNet and the text encoder stay frozen.

The folder :func:`personalize` writes (``concept.json`` with provenance and loss curves, ``lora-stepNNNN``
and ``token`` safetensors) is what :class:`PersonalConcept` loads and ``musicprobe edit steermusic-plus
--concept DIR`` takes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.lora import add_lora, lora_parameters, lora_state, merge_lora
from musicprobe.models.text import encode_with_vectors, word_embeddings
from musicprobe.synth.concepts import TOKEN, Concept, concept_clips, get_concept

CONCEPT_SR = 16000


@dataclass
class ConceptSet:
    """Reference recordings of one concept (mono, ``sr``) and how they were obtained (``origin``)."""

    concept: Concept
    audio: list[np.ndarray]
    sr: int
    origin: dict

    @classmethod
    def synthetic(cls, name: str, n: int = 6) -> ConceptSet:
        """A corpus concept's ``n`` solo clips (from their seeds: nothing is stored)."""
        clips = concept_clips(name, n)
        return cls(get_concept(name), [c.audio for c in clips], clips[0].sr, {"synth": name, "n": n})

    @classmethod
    def from_folder(cls, folder: str | Path, class_word: str, token: str = TOKEN,
                    name: str | None = None) -> ConceptSet:
        """A user's recordings: every audio file in ``folder`` (wav / flac / ogg), mixed to mono at 16 kHz."""
        from musicprobe.audio.io import load_audio

        folder = Path(folder)
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
        if not files:
            raise ConfigError(f"no audio files (wav, flac, ogg) in {folder}: a concept needs 1 to 8 recordings")
        if not class_word.strip():
            raise ConfigError("give the concept's class word (e.g. 'string instrument')")
        audio = [load_audio(p, sr=CONCEPT_SR)[0] for p in files]
        origin = {"folder": str(folder), "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
                                                   for p in files}}
        return cls(Concept(name or folder.name, class_word, token), audio, CONCEPT_SR, origin)


@dataclass
class PersonalizeConfig:
    """Fine-tuning settings (DreamBooth LoRA + textual inversion); see the module docstring."""

    steps: int = 200
    checkpoints: tuple[int, ...] = (50, 100, 200)
    lr: float = 1e-3
    rank: int = 8
    batch_size: int = 4
    prior_weight: float = 1.0
    prior_clips: int = 8
    prior_steps: int = 25
    prior_guidance: float = 4.0
    ti_steps: int = 200
    ti_lr: float = 5e-3
    seed: int = 0

    def __post_init__(self) -> None:
        self.checkpoints = tuple(int(c) for c in self.checkpoints)
        if self.steps < 1 or self.batch_size < 1 or self.rank < 1 or self.ti_steps < 0 or self.prior_clips < 0:
            raise ConfigError("steps, batch_size and rank must be >= 1; ti_steps and prior_clips >= 0")
        if not self.checkpoints or any(not 1 <= c <= self.steps for c in self.checkpoints):
            raise ConfigError(f"checkpoints must lie in 1..steps={self.steps}, got {list(self.checkpoints)}")
        if self.lr <= 0 or self.ti_lr <= 0 or self.prior_weight < 0:
            raise ConfigError("lr and ti_lr must be positive and prior_weight >= 0")

    def to_dict(self) -> dict:
        return {**asdict(self), "checkpoints": list(self.checkpoints)}


def _noised(x0: torch.Tensor, alphas: torch.Tensor, g: torch.Generator) -> tuple:
    t = torch.randint(len(alphas), (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a = alphas[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps, t, eps


def _unet_loss(net, base, x0, text, g) -> torch.Tensor:
    xt, t, eps = _noised(x0, base.alphas_cumprod.float(), g)
    out = net(xt, t, encoder_hidden_states=text.tokens, encoder_attention_mask=text.mask, return_dict=False)[0]
    return torch.nn.functional.mse_loss(out, eps)


def _save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}, str(path))


def personalize(base: Any, concepts: ConceptSet, out: str | Path, cfg: PersonalizeConfig | None = None,
                log=print) -> Path:
    """Fine-tune ``base`` (mini-LDM) on ``concepts``; writes the concept folder ``out`` and returns it."""
    cfg = cfg or PersonalizeConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    c = concepts.concept
    x_ref = torch.cat([base.encode(y, concepts.sr) for y in concepts.audio])
    g = torch.Generator().manual_seed(cfg.seed)
    prior = None
    if cfg.prior_clips and cfg.prior_weight > 0:
        from musicprobe.inversion import generate_latents

        prior = generate_latents(base, [c.class_prompt()] * cfg.prior_clips,
                                 [cfg.seed * 1000 + i for i in range(cfg.prior_clips)],
                                 steps=cfg.prior_steps, guidance=cfg.prior_guidance)
    inst_text, class_text = base.encode_prompt(c.reference_prompt()), base.encode_prompt(c.class_prompt())
    net = copy.deepcopy(base.unet).train()
    add_lora(net, cfg.rank, float(cfg.rank), seed=cfg.seed)
    opt = torch.optim.AdamW(lora_parameters(net), lr=cfg.lr, weight_decay=0.0)
    losses, b = [], cfg.batch_size
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(x_ref), (b,), generator=g)
        loss = _unet_loss(net, base, x_ref[idx], inst_text.rows(b), g)
        if prior is not None:
            pidx = torch.randint(len(prior), (b,), generator=g)
            loss = loss + cfg.prior_weight * _unet_loss(net, base, prior[pidx], class_text.rows(b), g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(round(float(loss.detach()), 5))
        if step in cfg.checkpoints:
            _save(out / f"lora-step{step:04d}.safetensors", lora_state(net))
            log(f"{c.name}: step {step} loss {np.mean(losses[-20:]):.4f}")
    ti_losses = _textual_inversion(base, x_ref, c, cfg, g, out, log)
    meta = {
        "concept": {"name": c.name, "class_word": c.class_word, "token": c.token},
        "origin": concepts.origin,
        "base": {k: base.meta.get(k) for k in ("name", "train_steps", "corpus_seed")},
        "config": cfg.to_dict(),
        "checkpoints": list(cfg.checkpoints),
        "loss": losses,
        "ti_loss": ti_losses,
        "seconds": round(time.perf_counter() - t0, 1),
        "threads": torch.get_num_threads(),
    }
    (out / "concept.json").write_text(json.dumps(meta, indent=1))
    return out


def _textual_inversion(base, x_ref, c: Concept, cfg: PersonalizeConfig, g, out: Path, log) -> list[float]:
    """Learn the input embeddings of ``c.token``'s word pieces; the UNet and the text encoder stay frozen."""
    if not cfg.ti_steps:
        return []
    vectors = word_embeddings(c.token).requires_grad_(True)
    opt = torch.optim.AdamW([vectors], lr=cfg.ti_lr, weight_decay=0.0)
    unet = base.unet.requires_grad_(False)
    losses, b = [], cfg.batch_size
    for _ in range(cfg.ti_steps):
        text = encode_with_vectors([c.reference_prompt()] * b, c.token, vectors)
        idx = torch.randint(len(x_ref), (b,), generator=g)
        loss = _unet_loss(unet, base, x_ref[idx], text, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(round(float(loss.detach()), 5))
    _save(out / "token.safetensors", {"vectors": vectors})
    log(f"{c.name}: textual inversion loss {np.mean(losses[-20:]):.4f}")
    return losses


@dataclass
class PersonalConcept:
    """A fine-tuned concept folder next to its base model: the personalised models it yields on demand."""

    folder: Path
    base: Any
    info: dict = field(default_factory=dict)
    _models: dict = field(default_factory=dict, repr=False)  # merged concept models per checkpoint

    @classmethod
    def load(cls, folder: str | Path, base: Any) -> PersonalConcept:
        folder = Path(folder)
        if not (folder / "concept.json").exists():
            raise ConfigError(f"{folder} is not a concept folder (no concept.json): make one with "
                              "`musicprobe zoo personalize`")
        return cls(folder, base, json.loads((folder / "concept.json").read_text()))

    @property
    def concept(self) -> Concept:
        c = self.info["concept"]
        return Concept(c["name"], c["class_word"], c["token"])

    @property
    def checkpoints(self) -> list[int]:
        return list(self.info["checkpoints"])

    def reference(self, n: int | None = None) -> ConceptSet:
        """The concept's reference clips (a corpus concept is regenerated from its seeds)."""
        o = self.info["origin"]
        if "synth" in o:
            return ConceptSet.synthetic(o["synth"], n or o["n"])
        c = self.concept
        return ConceptSet.from_folder(o["folder"], c.class_word, c.token, c.name)

    def lora(self, step: int | None = None) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        step = step or self.default_step
        path = self.folder / f"lora-step{step:04d}.safetensors"
        if not path.exists():
            raise ConfigError(f"concept {self.concept.name!r} has no checkpoint at step {step}; "
                              f"it has {self.checkpoints}")
        return {k: v.float() for k, v in load_file(str(path)).items()}

    @property
    def default_step(self) -> int:
        """The paper's setting (100 fine-tuning steps) when saved, else the middle checkpoint."""
        cps = self.checkpoints
        return 100 if 100 in cps else cps[len(cps) // 2]

    def model(self, step: int | None = None) -> Any:
        """The personalised diffusion model (PDM) at ``step``: the base model with the LoRA merged in (a plain
        ``UNet2DConditionModel``, so the hook system names its layers as the base's)."""
        step = step or self.default_step
        if step in self._models:  # merged once per checkpoint: editors share it (they never change a model)
            return self._models[step]
        pdm = copy.copy(self.base)
        pdm.unet = merge_lora(self.base.unet, self.lora(step))
        pdm.meta = {**self.base.meta, "name": f"{self.base.meta.get('name', 'mini-ldm')}+{self.concept.name}",
                    "concept": self.concept.name, "finetune_steps": step}
        self._models[step] = pdm
        return pdm

    def token_model(self) -> Any:
        """The base model reading the concept's token through the learned embeddings (textual inversion)."""
        from safetensors.torch import load_file

        path = self.folder / "token.safetensors"
        if not path.exists():
            raise ConfigError(f"concept {self.concept.name!r} was saved without textual inversion")
        vectors = load_file(str(path))["vectors"].float()
        ti = copy.copy(self.base)
        ti.prompts = self.base.prompts.with_vectors(self.concept.token, vectors)
        ti.meta = {**self.base.meta, "name": f"{self.base.meta.get('name', 'mini-ldm')}+TI({self.concept.name})"}
        return ti
