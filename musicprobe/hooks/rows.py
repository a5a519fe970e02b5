"""Batch-row roles: which rows of a denoiser call belong to which CFG branch and which prompt.

A call's batch is laid out as ``[branch halves] x prompts x samples``: classifier-free guidance stacks two halves
in the adapter's order (diffusers ``[uncond ; cond]``, MusicGen ``[cond ; uncond]``); inside a half, the rows of
prompt 0 come first, then prompt 1, ... (how pipelines repeat prompts, and how Prompt-to-Prompt runs a source and
its edited prompts as one batch). ``RowRoles(prompts=2, cfg=True)`` describes a P2P batch of two prompts under CFG.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from musicprobe.errors import ConfigError, MusicProbeError

BRANCHES = ("all", "cond", "uncond")

Rows = slice | torch.Tensor


@dataclass(frozen=True)
class RowRoles:
    """How a batch divides into CFG halves and prompts.

    Args:
        prompts: prompts stacked in each half (1 unless prompts run side by side, as in Prompt-to-Prompt).
        cfg: whether calls carry both CFG halves; ``None`` (the default, for ``prompts == 1``) decides per call:
            selecting a branch then needs an even batch.
    """

    prompts: int = 1
    cfg: bool | None = None

    def __post_init__(self) -> None:
        if self.prompts < 1:
            raise ConfigError(f"RowRoles: prompts must be >= 1, got {self.prompts}")
        if self.prompts > 1 and self.cfg is None:
            raise ConfigError("RowRoles: with several prompts in one batch, say whether calls use CFG (cfg=True/False)")

    def rows(
        self, batch: int, order: tuple[str, str], *, branch: str = "all", prompt: int | None = None, where: str = ""
    ) -> Rows:
        """The rows of ``batch`` in CFG ``branch`` and (if given) of prompt index ``prompt``."""
        if branch not in BRANCHES:
            raise ConfigError(f"branch must be one of {BRANCHES}, got {branch!r}")
        at = f"{where}: " if where else ""
        halves = 2 if (self.cfg or (self.cfg is None and branch != "all")) else 1
        if branch != "all" and halves == 1:
            raise MusicProbeError(f"{at}branch={branch!r} needs a CFG-doubled batch, but these calls run without CFG")
        if batch % (halves * self.prompts):
            need = "a CFG-doubled batch (even size)" if halves == 2 and self.prompts == 1 else (
                f"a multiple of {halves * self.prompts} rows ({halves} half/halves x {self.prompts} prompts)"
            )
            raise MusicProbeError(f"{at}branch={branch!r} needs {need}, got batch {batch}")
        half = batch // halves
        per = half // self.prompts
        parts = [order.index(branch)] if branch != "all" else list(range(halves))
        if prompt is None and len(parts) == 1:
            return slice(parts[0] * half, (parts[0] + 1) * half)
        if prompt is None:
            return slice(None)
        if not 0 <= prompt < self.prompts:
            raise MusicProbeError(f"{at}prompt index {prompt} is outside 0..{self.prompts - 1}")
        if len(parts) == 1:
            start = parts[0] * half + prompt * per
            return slice(start, start + per)
        return torch.cat([torch.arange(h * half + prompt * per, h * half + (prompt + 1) * per) for h in parts])


def n_rows(rows: Rows, batch: int) -> int:
    return len(range(*rows.indices(batch))) if isinstance(rows, slice) else int(rows.numel())
