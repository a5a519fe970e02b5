"""Edit results that plot, save and load themselves, and the metrics every editor reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicprobe.audio.io import load_audio, save_audio
from musicprobe.editors.traces import load_trace


def edit_metrics(
    source: np.ndarray,
    edited: np.ndarray,
    sr: int,
    target_prompt: str,
    source_prompt: str | None = None,
    reference: np.ndarray | None = None,
    clap: Any = None,
) -> dict[str, float]:
    """Preservation (chroma, CQT-1 PCC vs the source), adherence (CLAP to the target prompt, when a ``clap`` model
    is given) and, when the true target is known, similarity to it (chroma / CQT-1 PCC / log-mel distance)."""
    from musicprobe.audio.features import MelConfig, log_mel
    from musicprobe.metrics import chroma_similarity, cqt1_pcc
    from musicprobe.metrics.clap import clap_score

    n = min(len(source), len(edited))
    s, e = source[:n], edited[:n]
    out = {"chroma": chroma_similarity(s, e, sr), "cqt1_pcc": cqt1_pcc(s, e, sr)}
    if clap is not None:
        out["clap_target"] = float(clap_score(clap, e, sr, target_prompt))
        if source_prompt:
            out["clap_source"] = float(clap_score(clap, e, sr, source_prompt))
    if reference is not None:
        m = min(n, len(reference))
        r = reference[:m]
        cfg = MelConfig(sr=sr, hop_length=256)
        out["chroma_ref"] = chroma_similarity(r, e[:m], sr)
        out["cqt1_pcc_ref"] = cqt1_pcc(r, e[:m], sr)
        out["mel_dist_ref"] = float(np.mean(np.abs(log_mel(r, cfg) - log_mel(e[:m], cfg))))
    return {k: float(v) for k, v in out.items()}


@dataclass
class EditResult:
    """One edit: the audio, the prompts, the editor's config, metrics, attention maps and an optional trace."""

    method: str
    sr: int
    source: np.ndarray
    edited: np.ndarray
    source_prompt: str
    target_prompt: str
    config: dict
    metrics: dict[str, float] = field(default_factory=dict)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    label: str = ""
    provenance: dict = field(default_factory=dict)  # model, torch version, threads, device, seeds
    trace: Any = None  # per-iteration instrumentation of iterative editors (e.g. SteerMusic's DDSTrace)

    def summary(self, digits: int = 3) -> dict:
        return {"method": self.method, "label": self.label, **{k: round(v, digits) for k, v in self.metrics.items()}}

    def audio(self, which: str = "edited"):
        """An IPython audio player for ``source`` or ``edited``."""
        from IPython.display import Audio

        return Audio(getattr(self, which), rate=self.sr)

    def plot(self, kind: str = "mel"):
        """``"mel"``: source vs edited log-mel; ``"attention"``: the first captured map; ``"metrics"``: a bar chart."""
        from musicprobe.errors import check_known
        from musicprobe.viz import heatmap, mel_figure, metrics_bar

        check_known("plot kind", kind, ("mel", "attention", "metrics", "trace"))
        if kind == "trace":
            if self.trace is None:
                raise ValueError(f"{self.method} keeps no per-iteration trace")
            return self.trace.plot()
        if kind == "metrics":
            return metrics_bar({self.label or self.method: self.metrics}, title="edit metrics")
        if kind == "attention":
            if not self.attention:
                raise ValueError("no attention was captured for this edit (pass capture=[...] to the editor)")
            name, a = next(iter(self.attention.items()))
            a = np.asarray(a)
            while a.ndim > 2:
                a = a[0]
            return heatmap(a, title=f"{name} (heads mean)", x_label="key token", y_label="query token")
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("source", self.label or "edited"))
        for col, y in ((1, self.source), (2, self.edited)):
            for tr in mel_figure(y, self.sr).data:
                fig.add_trace(tr, row=1, col=col)
        fig.update_layout(
            height=300, template="plotly_white", title=f"{self.source_prompt!r} -> {self.target_prompt!r}"
        )
        return fig

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_audio(folder / "source.wav", self.source, self.sr, subtype="FLOAT")  # lossless, any level
        save_audio(folder / "edited.wav", self.edited, self.sr, subtype="FLOAT")
        meta = {
            k: getattr(self, k)
            for k in (
                "method", "sr", "source_prompt", "target_prompt", "config", "metrics", "seconds", "label", "provenance"
            )
        }
        (folder / "result.json").write_text(json.dumps(meta, indent=2))
        if self.attention:
            np.savez_compressed(folder / "attention.npz", **{k.replace("/", "_"): v for k, v in self.attention.items()})
        if self.trace is not None:
            blob = {"type": type(self.trace).__name__, "data": self.trace.to_dict()}
            (folder / "trace.json").write_text(json.dumps(blob))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> EditResult:
        folder = Path(folder)
        meta = json.loads((folder / "result.json").read_text())
        # our own float files, read back as written: any level (a loud edit is data here, not unscaled PCM), even
        # silence (an edit may remove everything)
        src, sr = load_audio(folder / "source.wav", sr=meta["sr"], allow_silence=True, any_level=True)
        ed, _ = load_audio(folder / "edited.wav", sr=meta["sr"], allow_silence=True, any_level=True)
        att = {}
        if (folder / "attention.npz").exists():
            z = np.load(folder / "attention.npz")
            att = {k: z[k] for k in z.files}
        return cls(
            method=meta["method"],
            sr=sr,
            source=src,
            edited=ed,
            source_prompt=meta["source_prompt"],
            target_prompt=meta["target_prompt"],
            config=meta["config"],
            metrics=meta["metrics"],
            attention=att,
            seconds=meta["seconds"],
            label=meta.get("label", ""),
            provenance=meta.get("provenance", {}),
            trace=load_trace(folder / "trace.json"),
        )
