"""A residual vector quantiser over the shared codec's log-mel frames: the discrete tokens of the token family.

MusicGen predicts K parallel codebooks of EnCodec, a residual vector quantiser (RVQ): codebook 1 quantises the
frame, codebook 2 the residual left by codebook 1, and so on, so every extra codebook refines the reconstruction.
Ours quantises the shared codec's *standardised* log-mel frames (64 bins at 62.5 frames per second, the frames
every mini model uses) with K codebooks fitted by k-means on the training corpus, stage by stage on the
residuals. Decoding sums the chosen entries back into frames and goes to audio through the codec's decoder (the
mini-vocoder), the same path as every other mini model.

Choices (documented because there is no reference for them): frames, not 4-frame tokens, are quantised, so a
code sequence has the codec's 320 frames per 5.12 s clip (MusicGen: 50 Hz); k-means++ initialisation and Lloyd
iterations on a fixed random subsample of frames (seeded), greedy residual encoding (the nearest entry per stage).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from musicprobe.errors import ConfigError


@dataclass(frozen=True)
class RVQConfig:
    n_codebooks: int = 4
    codebook_size: int = 256
    iters: int = 25  # Lloyd iterations per stage
    sample_frames: int = 100_000  # frames drawn from the corpus to fit on
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_codebooks < 1 or self.codebook_size < 2 or self.iters < 1 or self.sample_frames < self.codebook_size:
            raise ConfigError("RVQConfig: n_codebooks >= 1, codebook_size >= 2, iters >= 1 and "
                              "sample_frames >= codebook_size are required")

    def to_dict(self) -> dict:
        return asdict(self)


def _nearest(x: torch.Tensor, book: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest codebook entry for each row of ``x`` (squared Euclidean distance)."""
    out = []
    half_sq = 0.5 * (book**2).sum(-1)
    for i in range(0, len(x), chunk):
        out.append((half_sq - x[i : i + chunk] @ book.T).argmin(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` centroids of the rows of ``x``: k-means++ seeding, then Lloyd iterations (empty clusters re-seeded)."""
    n = len(x)
    first = int(torch.randint(n, (1,), generator=generator))
    cents = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(-1)
    for _ in range(1, k):
        idx = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))
        cents.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(-1))
    c = torch.stack(cents)
    for _ in range(iters):
        assign = _nearest(x, c)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # re-seed empty clusters at random frames
            c[empty] = x[torch.randint(n, (int(empty.sum()),), generator=generator)]
    return c


class ResidualVQ:
    """K codebooks ``(K, size, dim)``; ``encode`` frames ``(..., dim)`` -> codes ``(..., K)``, ``decode`` back."""

    def __init__(self, codebooks: torch.Tensor, meta: dict | None = None):
        if codebooks.ndim != 3:
            raise ConfigError(f"codebooks must be (K, size, dim), got shape {tuple(codebooks.shape)}")
        self.codebooks = codebooks.float()
        self.meta = dict(meta or {})

    @property
    def n_codebooks(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    @property
    def dim(self) -> int:
        return self.codebooks.shape[2]

    @classmethod
    def fit(cls, frames: np.ndarray | torch.Tensor, config: RVQConfig = RVQConfig(), meta: dict | None = None
            ) -> ResidualVQ:
        """Fit on ``frames`` ``(n, dim)`` stage by stage: k-means on the residual the previous stages leave."""
        x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        g = torch.Generator().manual_seed(config.seed)
        if len(x) > config.sample_frames:
            x = x[torch.randperm(len(x), generator=g)[: config.sample_frames]]
        books, residual = [], x.clone()
        for _ in range(config.n_codebooks):
            book = kmeans(residual, config.codebook_size, config.iters, g)
            residual = residual - book[_nearest(residual, book)]
            books.append(book)
        return cls(torch.stack(books), {"config": config.to_dict(), **(meta or {})})

    def encode(self, frames: torch.Tensor, n_codebooks: int | None = None) -> torch.Tensor:
        """Frames ``(..., dim)`` -> codes ``(..., K)`` (int64), greedy per stage."""
        x = torch.as_tensor(frames, dtype=torch.float32)
        if x.shape[-1] != self.dim:
            raise ConfigError(f"frames have {x.shape[-1]} values, the codebooks {self.dim}")
        k = self._k(n_codebooks)
        flat = x.reshape(-1, self.dim)
        residual, codes = flat.clone(), []
        for book in self.codebooks[:k]:
            idx = _nearest(residual, book)
            residual = residual - book[idx]
            codes.append(idx)
        return torch.stack(codes, -1).reshape(*x.shape[:-1], k)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., k)`` (the first ``k`` codebooks) -> frames ``(..., dim)``: the sum of the chosen entries."""
        codes = torch.as_tensor(codes, dtype=torch.long)
        k = codes.shape[-1]
        if k > self.n_codebooks:
            raise ConfigError(f"codes name {k} codebooks, the quantiser has {self.n_codebooks}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ConfigError(f"codes must lie in 0..{self.codebook_size - 1}")
        return sum(self.codebooks[j][codes[..., j]] for j in range(k))

    def _k(self, n: int | None) -> int:
        k = self.n_codebooks if n is None else int(n)
        if not 1 <= k <= self.n_codebooks:
            raise ConfigError(f"n_codebooks must be within 1..{self.n_codebooks}, got {n}")
        return k

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"codebooks": self.codebooks.contiguous()}, str(folder / "rvq.safetensors"))
        (folder / "rvq.json").write_text(json.dumps(self.meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ResidualVQ:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "rvq.safetensors").exists():
            raise ConfigError(f"no RVQ codebooks in {folder} (rvq.safetensors missing)")
        meta = json.loads((folder / "rvq.json").read_text()) if (folder / "rvq.json").exists() else {}
        return cls(load_file(str(folder / "rvq.safetensors"))["codebooks"], meta)
