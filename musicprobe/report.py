"""A self-contained HTML report (audio players as data URIs, plotly figures, tables) that works offline."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import soundfile as sf

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.audio{display:inline-block;margin:6px 16px 6px 0}
.audio span{display:block;font-size:.9em;color:#555}p.note{color:#555;font-size:.95em}"""


class HtmlReport:
    """Collect sections, then ``save(path)``. Plotly's JS is inlined once, so the file opens without network."""

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []
        self._plotly_included = False

    def heading(self, text: str, level: int = 2) -> HtmlReport:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str) -> HtmlReport:
        self._parts.append(f"<p class='note'>{html.escape(text)}</p>")
        return self

    def audio(self, label: str, y: np.ndarray, sr: int) -> HtmlReport:
        buf = io.BytesIO()
        sf.write(buf, np.clip(np.asarray(y, np.float32), -1, 1), sr, format="WAV", subtype="PCM_16")
        b64 = base64.b64encode(buf.getvalue()).decode()
        self._parts.append(
            f"<div class='audio'><span>{html.escape(label)}</span>"
            f"<audio controls src='data:audio/wav;base64,{b64}'></audio></div>"
        )
        return self

    def figure(self, fig: go.Figure) -> HtmlReport:
        self._parts.append(fig.to_html(full_html=False, include_plotlyjs=not self._plotly_included))
        self._plotly_included = True
        return self

    def table(self, rows: Mapping[str, Mapping[str, float]], digits: int = 3) -> HtmlReport:
        """``rows``: row name -> {column: value}."""
        cols: list[str] = []
        for r in rows.values():
            cols += [c for c in r if c not in cols]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        for name, r in rows.items():
            cells = "".join(
                f"<td>{r[c]:.{digits}f}</td>"
                if isinstance(r.get(c), (int, float))
                else f"<td>{html.escape(str(r.get(c, '')))}</td>"
                for c in cols
            )
            body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
        self._parts.append(f"<div class='tablewrap'><table><tr><th></th>{head}</tr>{''.join(body)}</table></div>")
        return self

    def to_html(self) -> str:
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self._parts)
            + "</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path
