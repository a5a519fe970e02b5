"""MusicGen's delay pattern and the one autoregressive sampling loop of the token family.

MusicGen predicts K codebooks in parallel, codebook ``k`` delayed by ``k`` frames: at decoding step ``i`` it emits
frame ``i`` of codebook 0, frame ``i - 1`` of codebook 1, ..., so a finer codebook is predicted after the coarser
codebooks of the same frame are known. ``T`` frames take ``T + K - 1`` steps; the positions a codebook has not
reached (or has finished) hold the pad id (``codebook_size``, which also starts the sequence).

:func:`sample_codes` is the loop every token model generates with (mini-MusicGen, and editors such as EditGen that
run several prompts as rows of one batch): one decoder call per step with a key/value cache, classifier-free
guidance on the logits (MusicGen's ``[cond ; uncond]`` batch), top-k sampling. Sampling draws **one Gumbel noise
per codebook entry and step from the seed, shared by every row** (:class:`TokenSampling`), so a prompt sampled
alone or beside others with the same seed draws the same numbers: "same seed" comparisons (an edit vs
re-generating the target prompt) differ only by what the model predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from musicprobe.errors import ConfigError

# stepper(tokens (rows, K, 1)) -> logits (rows, K, V) of the next step, keeping its own cache
Stepper = Callable[[torch.Tensor], torch.Tensor]
LogitsHook = Callable[[int, torch.Tensor], torch.Tensor | None]
ROW_COUPLINGS = ("shared", "independent")
ROW_SEED_STRIDE = 1_000_003  # row r of an independent draw seeds its stream with seed + r * stride


def apply_delay(codes: torch.Tensor, pad: int) -> torch.Tensor:
    """Codes ``(B, K, T)`` -> the delayed layout ``(B, K, T + K - 1)`` (codebook ``k`` shifted right by ``k``)."""
    b, k, t = codes.shape
    out = torch.full((b, k, t + k - 1), pad, dtype=torch.long)
    for j in range(k):
        out[:, j, j : j + t] = codes[:, j]
    return out


def undo_delay(delayed: torch.Tensor) -> torch.Tensor:
    """The delayed layout ``(B, K, T + K - 1)`` -> codes ``(B, K, T)``."""
    b, k, s = delayed.shape
    t = s - k + 1
    return torch.stack([delayed[:, j, j : j + t] for j in range(k)], 1)


def teacher_forcing(codes: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pair for codes ``(B, K, T)``: decoder input (pad start column + delayed codes without the last
    step) and targets (the delayed codes, ``-100`` where a position holds padding)."""
    delayed = apply_delay(codes, pad)
    start = torch.full_like(delayed[..., :1], pad)
    inputs = torch.cat([start, delayed[..., :-1]], -1)
    return inputs, delayed.masked_fill(delayed == pad, -100)


@dataclass(frozen=True)
class TokenSampling:
    """How tokens are drawn: top-k (MusicGen's default 250) at ``temperature``; ``top_k=1`` is greedy.

    Sampling uses the Gumbel-max trick, ``argmax(logits / temperature + g)`` over the top-k with ``g`` standard
    Gumbel noise: an exact draw from the top-k softmax. The noise ``(K, V)`` of a step comes from the seed and is
    **shared by every row** (common random numbers): two rows whose distributions agree draw the same token, and
    rows whose distributions are close mostly do, which is what makes "same seed" comparisons of an edit and its
    source meaningful (an inverse-CDF draw over probability-sorted tokens would split them at the first
    reordering).

    ``rows="independent"`` is what the reference code gets from ``torch.multinomial`` on one batch with one seed:
    every row draws its own noise (row 0 from the seed, as alone; row ``r`` from its own stream), so rows share
    nothing but the seed's reproducibility and whatever an intervention carries from one row to another.
    """

    top_k: int = 250
    temperature: float = 1.0
    rows: str = "shared"

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.rows not in ROW_COUPLINGS:
            raise ConfigError(f"rows must be one of {ROW_COUPLINGS}, got {self.rows!r}")

    def generators(self, seed: int, rows: int) -> list[torch.Generator]:
        """The random streams of a generation: one shared stream, or one per row (row 0's is the seed's own)."""
        n = 1 if self.rows == "shared" else rows
        return [torch.Generator().manual_seed(int(seed) + r * ROW_SEED_STRIDE) for r in range(n)]

    def noise(self, n_codebooks: int, vocab: int, generators: list[torch.Generator]) -> torch.Tensor:
        """Standard Gumbel noise of one step from :meth:`generators`: ``(K, V)`` from the shared stream,
        ``(rows, K, V)`` from one stream per row."""
        u = [torch.rand(n_codebooks, vocab, generator=g).clamp_(1e-10, 1.0 - 1e-7) for g in generators]
        g = -torch.log(-torch.log(torch.stack(u)))
        return g[0] if len(generators) == 1 else g

    def draw(self, logits: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
        """Tokens ``(rows, K)`` from logits ``(rows, K, V)`` and the step's Gumbel noise: ``(K, V)`` shared by
        the rows, or ``(rows, K, V)`` one per row."""
        k = min(self.top_k, logits.shape[-1])
        scaled = logits / self.temperature
        kth = scaled.topk(k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        g = gumbel.to(scaled.dtype)
        return (scaled + (g if g.dim() == 3 else g[None])).argmax(-1)


def sample_codes(
    stepper: Stepper,
    *,
    rows: int,
    n_codebooks: int,
    pad: int,
    frames: int,
    seed: int = 0,
    guidance: float = 3.0,
    sampling: TokenSampling = TokenSampling(),
    logits_hook: LogitsHook | None = None,
    force: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generate ``frames`` frames for ``rows`` prompts -> codes ``(rows, K, frames)``.

    ``stepper`` runs the decoder on ``2 * rows`` rows (``[cond ; uncond]``) when ``guidance != 1``, else on
    ``rows``; guidance combines the logits as MusicGen does, ``l_u + guidance (l_c - l_u)``. ``logits_hook(i,
    logits)`` sees the guided logits ``(rows, K, V)`` of step ``i`` and may return replacements. ``force``
    ``(rows, K, frames)`` holds codes some rows must follow (teacher forcing: an encoded clip as the source row of
    an edit) and -1 where the row samples freely.
    """
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")
    forced = None
    if force is not None:
        if tuple(force.shape) != (rows, n_codebooks, frames):
            raise ConfigError(f"force must be (rows, K, frames) = {(rows, n_codebooks, frames)}, "
                              f"got {tuple(force.shape)}")
        forced = apply_delay(force.long(), -1)
    k = n_codebooks
    g = sampling.generators(seed, rows)
    delayed = torch.full((rows, k, frames + k - 1), pad, dtype=torch.long)
    tokens = torch.full((rows, k, 1), pad, dtype=torch.long)
    books = torch.arange(k)
    for i in range(frames + k - 1):
        logits = stepper(tokens if guidance == 1.0 else torch.cat([tokens, tokens]))
        if guidance != 1.0:
            cond, uncond = logits.chunk(2)
            logits = uncond + guidance * (cond - uncond)
        if logits_hook is not None:
            new = logits_hook(i, logits)
            logits = logits if new is None else new
        drawn = sampling.draw(logits.float(), sampling.noise(k, logits.shape[-1], g))
        if forced is not None:
            drawn = torch.where(forced[..., i] >= 0, forced[..., i], drawn)
        live = (books <= i) & (i - books < frames)
        drawn = torch.where(live[None], drawn, torch.full_like(drawn, pad))
        delayed[..., i] = drawn
        tokens = drawn[..., None]
    return undo_delay(delayed)


class TokenLoop:
    """``step`` and ``generate`` of a codec-token model (mini-MusicGen, the MusicGen backend), written once.

    A subclass provides ``rows_text(prompt, guidance)`` (the text rows of a batch: the prompts, then under CFG as
    many unconditional rows, ``[cond ; uncond]``; an object with ``len``), ``stepper(text)`` (a decoder fed one step
    at a time with its own key / value cache, returning the last position's logits ``(B, K, V)``), ``n_codebooks``,
    ``pad_id``, ``frames`` (the default length) and ``sampling`` (a :class:`TokenSampling`).
    """

    sampling: TokenSampling

    def rows_text(self, prompt, guidance: float):
        raise NotImplementedError

    def stepper(self, text) -> Stepper:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, codes: torch.Tensor, prompt, guidance: float = 3.0) -> torch.Tensor:
        """Logits ``(B, K, V)`` of the next step after the delayed decoder input ``codes`` ``(B, K, S)`` (no cache
        carried over; the input starts with the pad column, as :func:`teacher_forcing` builds it)."""
        text = self.rows_text(prompt, guidance)
        rows = len(text) // (1 if guidance == 1.0 else 2)
        codes = codes.expand(rows, -1, -1) if codes.shape[0] == 1 else codes
        logits = self.stepper(text)(codes if guidance == 1.0 else torch.cat([codes, codes]))
        if guidance == 1.0:
            return logits
        cond, uncond = logits.chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def generate(
        self,
        prompt,
        *,
        seed: int = 0,
        frames: int | None = None,
        guidance: float = 3.0,
        logits_hook: LogitsHook | None = None,
        sampling: TokenSampling | None = None,
        force: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Codes ``(rows, K, frames)`` for one or more prompts (one row each; same seed, same draws per row);
        ``sampling`` overrides the model's top-k / temperature, ``force`` teacher-forces rows (see
        :func:`sample_codes`)."""
        text = self.rows_text(prompt, guidance)
        rows = len(text) // (1 if guidance == 1.0 else 2)
        return sample_codes(
            self.stepper(text), rows=rows, n_codebooks=self.n_codebooks, pad=self.pad_id,
            frames=frames or self.frames, seed=seed, guidance=guidance, sampling=sampling or self.sampling,
            logits_hook=logits_hook, force=force,
        )
