"""``musicprobe bench vocoder``: the round trip audio -> codec log-mel -> audio, per decoder.

On held-out corpus clips (a seed disjoint from training) and on the bundled data samples, each decoder
(``griffin-lim``, ``vocoder`` with its default mel-projection passes, and the ``vocoder-network-only``) turns the
codec's log-mel of the original back into audio, and we measure against
the original: log-mel L1 (the codec's 64-bin mel), the multi-resolution STFT distance
(:func:`musicprobe.audio.spectral.mrstft_distance`), chroma similarity and CQT-1 PCC, mini-CLAP zero-shot
instrument accuracy of the round-tripped audio next to the original audio's, and seconds per clip.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from musicprobe.audio.spectral import mrstft_distance, torch_log_mel

GOALS = {
    "mel_l1_vs_griffin_lim": 0.5,  # vocoder / Griffin-Lim, at most
    "mrstft_vs_griffin_lim": 0.5,
    "network_only_mel_l1_vs_griffin_lim": 0.5,
    "network_only_mrstft_vs_griffin_lim": 0.5,
    "clap_lead_accuracy_gap": 0.02,  # original minus vocoder, at most
}


def _clips(n_heldout: int, data_samples: bool = True) -> list[tuple[str, np.ndarray, str | None]]:
    """(id, audio at 16 kHz trimmed to the codec length, lead instrument) for held-out clips + data samples."""
    from musicprobe.audio.io import trim_or_pad
    from musicprobe.data import list_samples, load_sample
    from musicprobe.models.codec import CodecConfig
    from musicprobe.synth import make_clip
    from musicprobe.zoo.corpus import HELDOUT_SEED, clip_seed

    n = CodecConfig().n_samples
    out = []
    for i in range(n_heldout):
        clip = make_clip(clip_seed(HELDOUT_SEED, i), duration=5.12)
        out.append((f"heldout{i}", trim_or_pad(clip.audio, n), clip.plan.instruments["melody"]))
    for sid in list_samples() if data_samples else ():
        s = load_sample(sid)
        out.append((sid, trim_or_pad(s.audio, n), s.meta.get("instruments", {}).get("melody")))
    return out


def vocoder_report(n_heldout: int = 64, data_samples: bool = True) -> dict:
    """Per-decoder means over the clips, the bundled samples separately, and the goals of the vocoder issue."""
    from musicprobe.audio.io import trim_or_pad
    from musicprobe.metrics import chroma_similarity, cqt1_pcc
    from musicprobe.metrics.clap import zero_shot
    from musicprobe.zoo import load

    mf, clap = load("mini-flux"), load("mini-clap")
    codec = mf.codec
    clips = _clips(n_heldout, data_samples)
    rows: dict[str, list[dict]] = {"original": [], "griffin-lim": [], "vocoder": [], "vocoder-network-only": []}
    for cid, y, lead in clips:
        logmel = codec.log_mel(codec.encode(y, codec.config.sr))
        ref = torch.from_numpy(y)
        rows["original"].append({"id": cid, "lead_ok": _ok(zero_shot(clap, y, codec.config.sr, "lead")[0], lead)})
        for dec in ("griffin-lim", "vocoder", "vocoder-network-only"):
            t0 = time.perf_counter()
            if dec == "vocoder-network-only":  # the network without its mel-projection passes
                z = trim_or_pad(codec.vocoder.decode(logmel, refine=0), codec.config.n_samples)
            else:
                z = codec.decode_mel(logmel, dec)
            secs = time.perf_counter() - t0
            zt = torch.from_numpy(z)
            mel_l1 = float((torch_log_mel(zt, codec.config.mel) - torch_log_mel(ref, codec.config.mel)).abs().mean())
            rows[dec].append({
                "id": cid,
                "seconds": secs,
                "mel_l1": mel_l1,
                "mrstft": float(mrstft_distance(zt, ref)),
                "chroma": chroma_similarity(y, z, codec.config.sr),
                "cqt1_pcc": cqt1_pcc(y, z, codec.config.sr),
                "lead_ok": _ok(zero_shot(clap, z, codec.config.sr, "lead")[0], lead),
            })
    out: dict = {"n_heldout": n_heldout, "n_samples": len(clips) - n_heldout}
    parts = [("heldout", slice(0, n_heldout))] + ([("data_samples", slice(n_heldout, None))] if data_samples else [])
    for part, sel in parts:
        out[part] = {dec: _mean(r[sel]) for dec, r in rows.items()}
    h = out["heldout"]
    ratios = {
        "mel_l1_vs_griffin_lim": h["vocoder"]["mel_l1"] / h["griffin-lim"]["mel_l1"],
        "mrstft_vs_griffin_lim": h["vocoder"]["mrstft"] / h["griffin-lim"]["mrstft"],
        "clap_lead_accuracy_gap": h["original"]["lead_ok"] - h["vocoder"]["lead_ok"],
        "speed_vs_griffin_lim": h["vocoder"]["seconds"] / h["griffin-lim"]["seconds"],
        "network_only_mel_l1_vs_griffin_lim": h["vocoder-network-only"]["mel_l1"] / h["griffin-lim"]["mel_l1"],
        "network_only_mrstft_vs_griffin_lim": h["vocoder-network-only"]["mrstft"] / h["griffin-lim"]["mrstft"],
    }
    out["goals"] = {
        k: {"value": round(v, 4), "goal": GOALS.get(k, 1.0), "pass": bool(v <= GOALS.get(k, 1.0))}
        for k, v in ratios.items()
    }
    out["vocoder"] = {"train_steps": codec.vocoder.meta.get("train_steps"), "refine": codec.vocoder.refine}
    return out


def _ok(pred: str, truth: str | None) -> float:
    return float("nan") if truth is None else float(pred == truth)


def _mean(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "id"] if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
