"""``musicprobe bench backends``: one edit per real-pipeline backend (tiny full pipelines on the CPU), its seconds,
its peak memory and what capturing attention costs with and without reduction.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the edit; on the CPU the growth of the process's
resident memory over the edit, sampled every 2 ms (torch's CPU allocator has no peak counter), measured on the
first (cold) edit, since a second one reuses memory the allocator already holds. Seconds: the second (warm) edit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicprobe.editors.base import Editor
from musicprobe.errors import check_known


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_memory(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, int]:
    """Run ``fn``; return its result, seconds and peak bytes above the start (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        return out, time.perf_counter() - t0, torch.cuda.max_memory_allocated(device) - start
    start, peak, done = _rss(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        watcher.join()
    return out, seconds, max(0, max(peak[0], _rss()) - start)


EDIT_SECONDS = {"musicgen": 0.8, "fluxmusic": 0.8, "audioldm2": 0.8}  # tiny windows (Stable Audio: its 0.74 s)


REAL_SECONDS = 10.0  # the clip a real-size run edits (the papers edit about 10 s)


def tiny_for_edit(kind: str, device=None, dtype=None):
    """The tiny backend of ``kind`` with the window the bench edits in."""
    from musicprobe.models.backends import tiny_backend

    kw = {"seconds": EDIT_SECONDS[kind]} if kind in EDIT_SECONDS else {}
    return tiny_backend(kind, device=device, dtype=dtype, **kw)


def tone(sr: int, seconds: float = 0.6) -> np.ndarray:
    """The bench's source: a 440 Hz sine at 0.3 peak."""
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def backend_editor(kind: str, backend) -> Editor:
    """The paper's method on each backend, at a few steps (the plumbing, not the quality, is measured)."""
    from musicprobe.editors.editgen import EditGen, EditGenConfig
    from musicprobe.editors.musickv import MusicKV, MusicKVConfig
    from musicprobe.editors.musrec import MusRec, MusRecConfig
    from musicprobe.editors.steermusic import SteerMusic, SteerMusicConfig

    if kind == "stable-audio":
        cfg = MusicKVConfig(layers=["blocks.1.self_attn"], steps=8, solver="dpmpp-2m")  # the reference's sampler
        return MusicKV(backend, cfg, clap=None)
    if kind == "audioldm2":
        return SteerMusic(backend, SteerMusicConfig(steps=8), clap=None)
    if kind == "musicgen":
        return EditGen(backend, EditGenConfig(mode="replace"), clap=None)
    return MusRec(backend, MusRecConfig(steps=8), clap=None)


def _attention_point(editor: Editor) -> str:
    return editor.probe.points(kind="attention")[-1]


def backends_report(kinds: tuple[str, ...] | None = None, device=None, source: str | None = None) -> dict:
    """Per backend: seconds (warm) and peak memory (cold) of one edit of a 0.6 s tone, and the bytes an attention
    capture of one layer holds over the edit (after recording the source) with every head and row at every step vs
    reduced (mean over heads and steps, conditional rows).

    ``source`` (``KIND:FOLDER_OR_HUB_ID``): one backend at that real architecture with random weights
    (:func:`~musicprobe.models.backends.shapes.random_pipeline`: config files only), on ``device`` (the GPU if any),
    editing a :data:`REAL_SECONDS` clip (or the model's whole window when it is shorter).
    """
    from musicprobe.models.backends import BACKENDS
    from musicprobe.models.backends.shapes import random_pipeline

    if source is not None:
        kind, _, where = source.partition(":")
        check_known("backend", kind, BACKENDS)
        kinds = (kind,)

    out = {}
    for kind in kinds or tuple(BACKENDS):
        if source is None:
            backend = tiny_for_edit(kind, device=device)
        else:  # the papers' size: a 10 s clip (or the whole window, if shorter), not the tiny bench's 0.6 s
            backend = BACKENDS[kind](random_pipeline(kind, where), source=f"{where} (random weights)", device=device)
            backend.seconds = min(REAL_SECONDS, getattr(backend, "window_seconds", REAL_SECONDS))
        editor = backend_editor(kind, backend)
        sr = backend.sr
        audio = tone(sr, 0.6 if source is None else backend.seconds)
        prompts = ("a calm piano melody", "a calm flute melody")

        def one_edit(e=editor, a=audio, p=prompts, rate=sr):
            return e.edit(a, *p, sr=rate)

        _, _, peak = peak_memory(one_edit, backend.device)  # cold
        res, seconds, _ = peak_memory(one_edit, backend.device)
        point = f"{_attention_point(editor)}.hook_pattern"
        recorded = editor.record_source(audio, prompts[0], sr=sr)
        sizes = {}
        for label, cap in (("all_heads_every_step", {"heads": "all"}),
                           ("reduced", {"heads": "mean", "branch": "cond", "reduce_steps": True})):
            with editor.probe.capture([point], **cap) as cache:
                editor.edit_from(recorded, prompts[1])
            sizes[label] = cache.nbytes
        out[kind] = {
            "method": editor.method,
            "device": str(backend.device),
            "dtype": backend.config.dtype,
            "parameters": sum(p.numel() for m in backend.modules() for p in m.parameters()),
            "seconds_per_edit": round(seconds, 3),
            "peak_memory_mb": round(peak / 2**20, 2),
            "edited_samples": int(len(res.edited)),
            "sr": sr,
            "capture_point": point,
            "capture_bytes": sizes,
        }
    built = "tiny, random init, built from config" if source is None else f"{source}'s architecture, random weights"
    return {"pipelines": built, "backends": out}
