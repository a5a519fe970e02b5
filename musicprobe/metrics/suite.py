"""All model-free metrics between a source clip and its edit, as one ordered score dict (mir_eval style)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicprobe.audio.io import load_audio, validate_audio
from musicprobe.errors import AudioError
from musicprobe.metrics.harmony import chord_accuracy, chord_agreement, recognize_chords
from musicprobe.metrics.pitch import chroma_similarity, cqt1_pcc, melody_accuracy
from musicprobe.metrics.rhythm import dynamics_correlation, onset_f1, rhythm_f1
from musicprobe.metrics.symbolic import ioi_overlap, pch_overlap
from musicprobe.metrics.transcription import detect_onsets, transcribe

METRICS = (
    "chroma_similarity",
    "cqt1_pcc",
    "melody_accuracy",
    "pch_overlap",
    "ioi_overlap",
    "chord_agreement",
    "rhythm_f1",
    "dynamics_corr",
)


class _GTNote:
    __slots__ = ("onset", "offset", "pitch")

    def __init__(self, d: dict):
        self.onset, self.offset, self.pitch = d["onset"], d["offset"], d["pitch"]


def notes_from_metadata(meta: dict, tracks: Sequence[str] | None = None) -> list[_GTNote]:
    """Pitched ground-truth notes from a clip's JSON metadata (drums excluded)."""
    return [
        _GTNote(n) for n in meta.get("notes", []) if n["track"] != "drums" and (tracks is None or n["track"] in tracks)
    ]


LENGTH_SLACK_S = 0.1  # lengths may differ by this much (or 1 %) before a comparison is refused


def check_lengths(a: np.ndarray, b: np.ndarray, sr: int, names: tuple[str, str] = ("source", "edit")) -> int:
    """The shared length of two clips, refusing clips whose lengths differ by more than 0.1 s or 1 %: comparing
    only their shared part would score a 0.2 s "edit" of a 5 s source as identical."""
    n, m = a.shape[-1], b.shape[-1]
    if abs(n - m) > max(LENGTH_SLACK_S * sr, 0.01 * max(n, m)):
        raise AudioError(
            f"the {names[0]} lasts {n / sr:.2f} s and the {names[1]} {m / sr:.2f} s: metrics compare clips of the "
            "same length (trim them, or pass allow_length_mismatch=True / --allow-length-mismatch to compare the "
            "shared part)"
        )
    return min(n, m)


def compare(
    source: np.ndarray,
    edited: np.ndarray,
    sr: int = 16000,
    *,
    source_notes: Sequence | None = None,
    edited_notes: Sequence | None = None,
    allow_length_mismatch: bool = False,
) -> OrderedDict:
    """Preservation metrics of ``edited`` against ``source`` (1.0 = identical for every metric).

    Ground-truth notes, when given, replace the transcription for the note statistics (PCH, IOI). Clips of
    different lengths are refused (:func:`check_lengths`) unless ``allow_length_mismatch``: then the shared part
    is compared.
    """
    source = validate_audio(source, sr, name="source", mono=True)
    edited = validate_audio(edited, sr, name="edit", mono=True)
    if not allow_length_mismatch:
        check_lengths(source, edited, sr)
    n = min(len(source), len(edited))
    source, edited = source[:n], edited[:n]
    sn = source_notes if source_notes is not None else transcribe(source, sr)
    en = edited_notes if edited_notes is not None else transcribe(edited, sr)
    out: OrderedDict[str, float] = OrderedDict()
    out["chroma_similarity"] = chroma_similarity(source, edited, sr)
    out["cqt1_pcc"] = cqt1_pcc(source, edited, sr)
    out["melody_accuracy"] = melody_accuracy(source, edited, sr)
    out["pch_overlap"] = pch_overlap(sn, en) if sn and en else float("nan")
    out["ioi_overlap"] = ioi_overlap(sn, en) if len(sn) > 2 and len(en) > 2 else float("nan")
    out["chord_agreement"] = chord_agreement(source, edited, sr)
    out["rhythm_f1"] = rhythm_f1(source, edited, sr)
    out["dynamics_corr"] = dynamics_correlation(source, edited, sr)
    return out


def against_ground_truth(audio: np.ndarray, sr: int, meta: dict) -> OrderedDict:
    """How well ``audio`` matches a clip's ground truth: chord accuracy per beat and onset F1 vs true onsets."""
    audio = validate_audio(audio, sr, mono=True)
    ref_chords = [c for _, c in meta["chords"]]
    starts = [t for t, _ in meta["chords"]]
    est = recognize_chords(audio, sr, starts, meta.get("duration"))
    true_onsets = sorted({round(n["onset"], 3) for n in meta["notes"]})
    out: OrderedDict[str, float] = OrderedDict()
    out["chord_accuracy"] = chord_accuracy(ref_chords, est)
    out["onset_f1_gt"] = onset_f1(true_onsets, detect_onsets(audio, sr))
    return out


def _sidecar(path: Path) -> dict | None:
    meta = path.with_suffix(".json")
    return json.loads(meta.read_text()) if meta.is_file() else None


def evaluate_files(
    source: str | Path,
    edited: str | Path,
    reference: str | Path | None = None,
    sr: int = 16000,
    allow_length_mismatch: bool = False,
) -> dict:
    """Metrics for files; a JSON sidecar with ground-truth notes (as ``musicprobe synth`` writes) is used if present.

    Files of different lengths are refused unless ``allow_length_mismatch`` (then the shared part is compared and
    ``compared_seconds`` says how much).
    """
    source, edited = Path(source), Path(edited)
    a, _ = load_audio(source, sr)
    b, _ = load_audio(edited, sr)
    n = min(a.size, b.size) if allow_length_mismatch else check_lengths(a, b, sr)
    ms, me = _sidecar(source), _sidecar(edited)
    result: dict = {
        "source": str(source),
        "edit": str(edited),
        "sr": sr,
        "notes": "ground truth" if ms and me else "transcribed",
        "compared_seconds": round(n / sr, 3),
        "edit_vs_source": dict(
            compare(
                a[:n],
                b[:n],
                sr,
                source_notes=notes_from_metadata(ms) if ms else None,
                edited_notes=notes_from_metadata(me) if me else None,
            )
        ),
    }
    if reference is not None:
        reference = Path(reference)
        r, _ = load_audio(reference, sr)
        m = min(r.size, b.size) if allow_length_mismatch else check_lengths(r, b, sr, ("reference", "edit"))
        mr = _sidecar(reference)
        result["reference"] = str(reference)
        result["edit_vs_reference"] = dict(
            compare(
                r[:m],
                b[:m],
                sr,
                source_notes=notes_from_metadata(mr) if mr else None,
                edited_notes=notes_from_metadata(me) if me else None,
            )
        )
    if ms:
        result["source_vs_ground_truth"] = dict(against_ground_truth(a, sr, ms))
    return result


def format_table(result: dict) -> str:
    cols = [k for k in ("edit_vs_source", "edit_vs_reference") if k in result]
    lines = [f"{'metric':<20}" + "".join(f"{c:>20}" for c in cols)]
    for m in METRICS:
        lines.append(f"{m:<20}" + "".join(f"{result[c].get(m, np.nan):>20.3f}" for c in cols))
    return "\n".join(lines)
