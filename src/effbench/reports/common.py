"""Pieces every view shares: escaping, number formats, colours, the section and figure types.

Escaping rules (everything a user typed — model names, tags, paths, errors — goes through one):
- `h()` for HTML this package writes (html.escape, quotes too);
- `p()` for strings plotly draws (trace names, hover text, tick labels, annotations): plotly
  turns a few tags (<b>, <br>, <a href>...) in labels into markup and decodes &lt; &gt; &amp;
  and numeric entities, so escaping <, > and & makes it draw the literal text;
- JSON put inside <script> goes through `script_json()`, which writes <, > and & as \\u003c,
  \\u003e, \\u0026 so no `</script>` (or `<!--`) can end the block early.
"""

from __future__ import annotations

import html as _html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

# Colours: one per backend (fixed for the common ones so reports compare across runs).
_BACKEND_COLOURS = {
    "torch": "#e4572e",
    "onnxruntime": "#1f77b4",
    "openvino": "#7b3fbf",
    "tensorrt": "#5a9e00",
    "coreml": "#555555",
    "null": "#9a9a9a",
}
_CYCLE = ["#17becf", "#bcbd22", "#8c564b", "#e377c2", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down", "pentagon", "hexagon"]
FAMILY_COLOURS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def h(value: Any) -> str:
    """Escape for HTML text and attribute values."""
    return _html.escape("" if value is None else str(value), quote=True)


def p(value: Any) -> str:
    """Escape for text plotly renders (it understands a few tags and decodes entities)."""
    s = "" if value is None else str(value)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def script_json(obj: Any) -> str:
    """JSON that is safe inside <script>...</script> (see module doc)."""
    from plotly.utils import PlotlyJSONEncoder

    s = json.dumps(obj, cls=PlotlyJSONEncoder, separators=(",", ":"), allow_nan=False)
    return (
        s.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def fmt(value: float | None, spec: str = ".3g", none: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return none
    return format(value, spec)


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_si(value: float | None, unit: str = "") -> str:
    """1.2e12 -> '1.2 T' + unit."""
    if value is None:
        return "–"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def backend_colours(backends: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    for b in sorted(set(backends)):
        if b in _BACKEND_COLOURS:
            out[b] = _BACKEND_COLOURS[b]
        else:
            out[b] = _CYCLE[i % len(_CYCLE)]
            i += 1
    return out


def device_symbols(devices: Iterable[str]) -> dict[str, str]:
    return {d: _SYMBOLS[i % len(_SYMBOLS)] for i, d in enumerate(sorted(set(devices)))}


def base_layout(**kw: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "font": {"family": FONT, "size": 13, "color": "#222"},
        "margin": {"l": 70, "r": 30, "t": 40, "b": 60},
        "hoverlabel": {"align": "left", "font": {"family": FONT, "size": 12}},
        "legend": {"bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#ddd", "borderwidth": 1},
    }
    layout.update(kw)
    return layout


def axis(title: str, log: bool = False, values: Iterable[float | None] | None = None, **kw: Any) -> dict[str, Any]:
    """An axis; a log axis given its data values gets 1-2-5 ticks written out in full."""
    ax: dict[str, Any] = {
        "title": {"text": title},
        "zeroline": False,
        "showline": True,
        "linecolor": "#999",
        "mirror": False,
        "gridcolor": "#ececec",
    }
    if log:
        ax["type"] = "log"
        vals = [v for v in (values or []) if v is not None and v > 0]
        if vals:
            ticks = log_ticks(min(vals), max(vals))
            if len(ticks) >= 2:
                ax["tickvals"] = ticks
                ax["ticktext"] = [tick_text(t) for t in ticks]
    ax.update(kw)
    return ax


def log_ticks(lo: float, hi: float, max_ticks: int = 12) -> list[float]:
    """1-2-5 ticks covering [lo, hi] (one step beyond each end), thinned to powers of ten if too many."""
    lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [m * 10.0**e for e in range(lo_e, hi_e + 1) for m in (1, 2, 5)]
    below = [t for t in ticks if t <= lo]
    above = [t for t in ticks if t >= hi]
    start = below[-1] if below else ticks[0]
    stop = above[0] if above else ticks[-1]
    out = [t for t in ticks if start <= t <= stop]
    if len(out) > max_ticks:
        out = [t for t in out if round(t / 10.0 ** math.floor(math.log10(t) + 1e-9)) == 1]
    return out


def tick_text(v: float) -> str:
    if v >= 1e3 or v < 1e-2:
        return fmt_si(v) if v >= 1e3 else f"{v:.0e}"
    return f"{v:g}"


def wants_log(values: Iterable[float | None], ratio: float = 8.0) -> bool:
    vals = [v for v in values if v is not None and v > 0]
    return bool(vals) and max(vals) / min(vals) >= ratio


@dataclass
class Figure:
    """A plotly figure as plain JSON-ready dicts, placed in a div of the given height."""

    div_id: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    height: int = 460

    def to_json(self) -> dict[str, Any]:
        layout = dict(self.layout)
        layout.setdefault("height", self.height)
        return {"data": self.data, "layout": layout}

    def div(self, extra_class: str = "") -> str:
        cls = f"plot {extra_class}".strip()
        return (
            f'<div class="{cls}" id="{h(self.div_id)}" style="height:{int(self.height)}px" '
            f'role="img" aria-label="plot"></div>'
        )


@dataclass
class Section:
    id: str
    title: str
    how: str  # one line, HTML (written by us: no user text unescaped)
    body: str = ""  # HTML
    figures: list[Figure] = field(default_factory=list)


def note(message_html: str, kind: str = "info") -> str:
    return f'<p class="note {h(kind)}">{message_html}</p>'


def table(headers: list[str], rows: list[list[Any]], cls: str = "data", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless raw=True (then they must already be safe HTML).
    A cell may be (content, css class)."""
    head = "".join(f"<th>{h(c)}</th>" for c in headers)
    body = []
    for row in rows:
        cells = []
        for c in row:
            content, klass = c if isinstance(c, tuple) else (c, "")
            attr = f' class="{h(klass)}"' if klass else ""
            cells.append(f"<td{attr}>{content if raw else h(content)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap"><table class="{h(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def downsample_series(values: list[float], max_points: int) -> tuple[list[int], list[float]]:
    """(indices, values) with at most ~max_points points: min and max of each bucket, in order,
    so spikes and drift survive the thinning."""
    n = len(values)
    if n <= max_points:
        return list(range(n)), list(values)
    buckets = max(1, max_points // 2)
    idx: list[int] = []
    for b in range(buckets):
        lo = b * n // buckets
        hi = max(lo + 1, (b + 1) * n // buckets)
        chunk = range(lo, hi)
        i_min = min(chunk, key=values.__getitem__)
        i_max = max(chunk, key=values.__getitem__)
        idx.extend(sorted({i_min, i_max}))
    return idx, [values[i] for i in idx]


def quantile_sample(values: list[float], max_points: int) -> list[float]:
    """At most max_points values spread evenly over the sorted distribution (same shape, fewer bytes)."""
    n = len(values)
    if n <= max_points:
        return list(values)
    s = sorted(values)
    return [s[round(i * (n - 1) / (max_points - 1))] for i in range(max_points)]
