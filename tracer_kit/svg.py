"""Charts written as SVG text from their numbers: no chart engine, no JavaScript, nothing to load.

The report's distributions and score history are bars and lines over numbers it already
holds (the stored histogram bins, the runs' scores), so they are drawn here directly: the
report stays self-contained and offline, renders the same in a browser, in JupyterLab's
HTML viewer (scripts off) and in an ``<img>``, and costs microseconds instead of a chart
engine's start-up. Each function returns the SVG document as text; :func:`svg_uri` makes a
``data:`` URI of it for an ``<img src>``.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

__all__ = [
    "BLUE",
    "RED",
    "Histogram",
    "Layer",
    "PALETTE",
    "Line",
    "Panel",
    "date_label",
    "nice_span",
    "xy_chart",
    "edge_label",
    "histogram_grid",
    "line_chart",
    "nice_ticks",
    "stacked_histogram",
    "svg_uri",
]

BLUE = "#4c78a8"
RED = "#e45756"
#: Colours of stacked groups, in order (Tableau 10, as the charts had before).
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6")
_GREY = "#888"
_FONT = "font-family='sans-serif'"


@dataclass(frozen=True)
class Histogram:
    """One panel: bins of a numeric column (``edges`` one longer than ``counts``) or categories."""

    title: str
    edges: Sequence[float | str]
    counts: Sequence[int]
    dtype: str = "Float64"

    @property
    def numeric(self) -> bool:
        """Whether the panel is a numeric histogram (bins between edges), not categories."""
        return len(self.edges) == len(self.counts) + 1


@dataclass(frozen=True)
class Line:
    """One series of a line chart: a y value per x position (None leaves a gap), and marks."""

    name: str
    values: Sequence[float | None]
    color: str = BLUE
    #: per point: a colour for its dot (None: no dot), e.g. red where a gate failed
    dots: Sequence[str | None] = field(default_factory=tuple)


def svg_uri(svg: str) -> Markup:
    """``svg`` as a ``data:image/svg+xml;base64,...`` URI (nothing left to escape)."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Markup("data:image/svg+xml;base64," + data)


def nice_ticks(high: float, count: int = 4) -> list[float]:
    """Ticks from 0 to at least ``high`` on a 1-2-5 step, about ``count`` of them."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(high / step - 1e-9) + 1)]


def _num(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def edge_label(value: float, dtype: str) -> str:
    """A bin edge as its column shows it (a date column's edges are days since 1970)."""
    if dtype == "Date":
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(value))).isoformat()
    return f"{value:.4g}"


def _text(x: float, y: float, text: str, *, size: int = 9, anchor: str = "middle", **attrs) -> str:
    extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in attrs.items())
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' {_FONT}"
        f"{extra}>{html.escape(text)}</text>"
    )


def _rotated(x: float, y: float, text: str, angle: int) -> str:
    return _text(x, y, text, size=8, anchor="end", transform=f"rotate({angle} {x:.1f} {y:.1f})")


def _y_axis(x0: float, y0: float, height: float, ticks: list[float]) -> list[str]:
    top = ticks[-1]
    parts = [f"<line x1='{x0}' y1='{y0}' x2='{x0}' y2='{y0 + height}' stroke='{_GREY}'/>"]
    for t in ticks:
        y = y0 + height - height * t / top
        parts.append(f"<line x1='{x0 - 3}' y1='{y:.1f}' x2='{x0}' y2='{y:.1f}' stroke='{_GREY}'/>")
        parts.append(_text(x0 - 5, y + 3, _num(t), size=8, anchor="end"))
    return parts


def _panel(h: Histogram, width: int, height: int) -> list[str]:
    """One histogram in a box of ``width`` x ``height`` plot pixels at the origin."""
    ticks = nice_ticks(max(h.counts, default=0))
    top = ticks[-1]
    parts = [_text(width / 2, -8, h.title, size=11, font_weight="bold")]
    parts += _y_axis(0, 0, height, ticks)
    parts.append(f"<line x1='0' y1='{height}' x2='{width}' y2='{height}' stroke='{_GREY}'/>")
    if h.numeric:
        lo, hi = float(h.edges[0]), float(h.edges[-1])  # type: ignore[arg-type]
        span = (hi - lo) or 1.0
        for i, count in enumerate(h.counts):
            a, b = float(h.edges[i]), float(h.edges[i + 1])  # type: ignore[arg-type]
            x, w = width * (a - lo) / span, max(width * (b - a) / span, 1.0)
            parts.append(_bar(x, w, height, count, top, f"{_num(a)} to {_num(b)}: {count:,}"))
        edges = [float(e) for e in h.edges]  # type: ignore[arg-type]
        return parts + _edge_ticks(edges, width, height, h.dtype, 5)
    order = sorted(range(len(h.counts)), key=lambda i: -h.counts[i])
    w = width / max(len(order), 1)
    for k, i in enumerate(order):
        label = str(h.edges[i])[:24]
        parts.append(_bar(k * w + 1, w - 2, height, h.counts[i], top, f"{label}: {h.counts[i]:,}"))
        parts.append(_rotated(k * w + w / 2, height + 10, label, -40))
    return parts


def _edge_ticks(edges: list[float], width: int, height: int, dtype: str, ticks: int) -> list[str]:
    """An x axis whose ticks sit on bin edges: every k-th edge, the first and last always."""
    lo, span = edges[0], (edges[-1] - edges[0]) or 1.0
    step = max(1, math.ceil((len(edges) - 1) / (ticks - 1)))
    shown = edges[::step] if (len(edges) - 1) % step == 0 else [*edges[::step], edges[-1]]
    parts = []
    for e in shown:
        x = width * (e - lo) / span
        parts.append(
            f"<line x1='{x:.1f}' y1='{height}' x2='{x:.1f}' y2='{height + 3}' stroke='{_GREY}'/>"
        )
        parts.append(_rotated(x, height + 10, edge_label(e, dtype), -30))
    return parts


def _bar(
    x: float,
    w: float,
    height: int,
    count: int,
    top: float,
    tip: str,
    *,
    below: int = 0,
    fill: str = BLUE,
) -> str:
    """A bar of ``count`` rows standing on ``below`` rows (stacked), its count as a hover title."""
    bar_h = height * count / top if top else 0
    y = height - height * (below + count) / top if top else height
    return (
        f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{bar_h:.1f}' "
        f"fill='{fill}' stroke='white' stroke-width='0.5'><title>{html.escape(tip)}</title></rect>"
    )


def histogram_grid(
    panels: Sequence[Histogram], *, columns: int = 4, width: int = 170, height: int = 90
) -> str | None:
    """Small multiples: one histogram per panel, ``columns`` to a row (None when none has rows)."""
    panels = [p for p in panels if p.counts]
    if not panels:
        return None
    cell_w, cell_h = width + 70, height + 85  # room for the axis labels and the title
    rows = math.ceil(len(panels) / columns)
    total_w, total_h = cell_w * min(len(panels), columns), cell_h * rows
    body = []
    for n, panel in enumerate(panels):
        x, y = (n % columns) * cell_w + 45, (n // columns) * cell_h + 25
        body.append(
            f"<g transform='translate({x} {y})'>{''.join(_panel(panel, width, height))}</g>"
        )
    return _document(total_w, total_h, body)


def _document(width: float, height: float, body: list[str]) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}'><rect width='100%' height='100%' fill='white'/>"
        + "".join(body)
        + "</svg>"
    )


def line_chart(
    x_labels: Sequence[str],
    lines: Sequence[Line],
    *,
    y_title: str,
    y_top: float | None = None,
    width: int = 560,
    height: int = 160,
) -> str | None:
    """Lines over categorical x positions (runs, in order), a legend when there are several."""
    if not x_labels or not lines:
        return None
    values = [v for line in lines for v in line.values if v is not None]
    ticks = nice_ticks(y_top if y_top is not None else max(values, default=1.0))
    top = ticks[-1]
    step = width / max(len(x_labels), 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return step * (i + 0.5), height - height * v / top

    body = [*_y_axis(0, 0, height, ticks)]
    body.append(f"<line x1='0' y1='{height}' x2='{width}' y2='{height}' stroke='{_GREY}'/>")
    body.append(_text(-38, height / 2, y_title, transform=f"rotate(-90 -38 {height / 2})"))
    every = max(1, math.ceil(len(x_labels) / 30))  # at most 30 labels
    for i, label in enumerate(x_labels):
        if i % every == 0:
            x, _ = point(i, 0)
            body.append(_rotated(x, height + 10, label, -40))
    for line in lines:
        body += _series(line, point)
    if len(lines) > 1:
        for k, line in enumerate(lines):
            x = width + 12
            body.append(f"<rect x='{x}' y='{k * 14}' width='10' height='3' fill='{line.color}'/>")
            body.append(_text(x + 14, k * 14 + 5, line.name, size=9, anchor="start"))
    legend = 130 if len(lines) > 1 else 20
    left = 95  # room for the first rotated label
    inner = f"<g transform='translate({left} 12)'>{''.join(body)}</g>"
    return _document(width + left + legend, height + 110, [inner])


def _series(line: Line, point: Callable[[int, float], tuple[float, float]]) -> list[str]:
    parts: list[str] = []
    run: list[str] = []
    for i, v in enumerate(line.values):
        if v is None:  # a gap: end the current stretch
            if len(run) > 1:
                parts.append(_path(run, line.color))
            run = []
            continue
        x, y = point(i, v)
        run.append(f"{x:.1f},{y:.1f}")
    if len(run) > 1:
        parts.append(_path(run, line.color))
    for i, (v, dot) in enumerate(zip(line.values, line.dots, strict=False)):
        if v is not None and dot:
            x, y = point(i, v)
            tip = html.escape(f"{line.name}: {_num(v)}")
            parts.append(
                f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{dot}'><title>{tip}</title></circle>"
            )
    return parts


def _path(points: list[str], color: str) -> str:
    return (
        f"<polyline points='{' '.join(points)}' fill='none' stroke='{color}' stroke-width='1.5'/>"
    )


def stacked_histogram(
    title: str,
    edges: Sequence[float],
    groups: dict[str, Sequence[int]],
    *,
    x_title: str,
    legend: str = "",
    width: int = 520,
    height: int = 220,
) -> str:
    """One histogram over ``edges`` with each bin's count split by group (stacked; the
    groups' colours under the ``legend`` title).
    """  # noqa: D205
    totals = [sum(c[i] for c in groups.values()) for i in range(len(edges) - 1)]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1]
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    body = [
        _text(width / 2, -10, title, size=12, font_weight="bold"),
        *_y_axis(0, 0, height, ticks),
    ]
    body.append(f"<line x1='0' y1='{height}' x2='{width}' y2='{height}' stroke='{_GREY}'/>")
    body.append(_text(-40, height / 2, "rows", transform=f"rotate(-90 -40 {height / 2})"))
    base = [0] * len(totals)
    for k, (name, counts) in enumerate(groups.items()):
        color = PALETTE[k % len(PALETTE)]
        for i, count in enumerate(counts):
            if not count:
                continue
            x, w = width * (edges[i] - lo) / span, max(width * (edges[i + 1] - edges[i]) / span, 1)
            tip = f"{name}, {_num(edges[i])} to {_num(edges[i + 1])}: {count:,}"
            body.append(_bar(x, w, height, count, top, tip, below=base[i], fill=color))
            base[i] += count
        if len(groups) > 1:
            y = k * 15 + 16
            body.append(f"<rect x='{width + 14}' y='{y}' width='10' height='10' fill='{color}'/>")
            body.append(_text(width + 28, y + 9, name, size=10, anchor="start"))
    if len(groups) > 1 and legend:
        body.append(_text(width + 14, 8, legend, size=10, anchor="start", font_weight="bold"))
    body += _edge_ticks(list(edges), width, height, "Float64", 7)
    body.append(_text(width / 2, height + 48, x_title, size=10))
    room = 120 if len(groups) > 1 else 20
    inner = f"<g transform='translate(60 30)'>{''.join(body)}</g>"
    return _document(width + 60 + room, height + 90, [inner])


# --------------------------------------------------------------------------- x-y panels
@dataclass(frozen=True)
class Layer:
    """One layer of an x-y panel: ``line``, ``dashed``, ``points``, ``band`` (between ``y``
    and ``upper``) or ``interval`` (a horizontal rule from ``x`` to ``upper`` at ``y``).
    """  # noqa: D205

    kind: str
    x: Sequence[float]
    y: Sequence[float]
    upper: Sequence[float] = ()
    color: str = BLUE
    opacity: float = 1.0


@dataclass(frozen=True)
class Panel:
    """One x-y chart: its layers, titles and size; a categorical y axis when ``y_labels``."""

    title: str
    layers: Sequence[Layer]
    x_title: str = ""
    y_title: str = ""
    width: int = 300
    height: int = 240
    #: how an x tick reads (a date axis gives days since 1970 and formats them)
    x_label: Callable[[float], str] = _num
    #: a categorical y: row ``i`` is labelled ``y_labels[i]``, the first at the top
    y_labels: Sequence[str] = ()


def nice_span(low: float, high: float, count: int = 5) -> list[float]:
    """Ticks covering ``low`` to ``high`` on a 1-2-5 step, about ``count`` of them."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high - low <= 0:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [step * i for i in range(first, last + 1)]


def _extent(panel: Panel, axis: str) -> list[float]:
    values: list[float] = []
    for layer in panel.layers:
        values += [v for v in (layer.x if axis == "x" else layer.y) if v is not None]
        if (layer.kind == "interval") == (axis == "x"):
            values += [v for v in layer.upper if v is not None]
    return values


def _polyline(points: list[str], color: str, *, dashed: bool = False, opacity: float = 1) -> str:
    dash = " stroke-dasharray='4 4'" if dashed else ""
    return (
        f"<polyline points='{' '.join(points)}' fill='none' stroke='{color}' "
        f"stroke-width='1.5' stroke-opacity='{opacity}'{dash}/>"
    )


def _layer(layer: Layer, px: Callable[[float], float], py: Callable[[float], float]) -> list[str]:
    pairs = [
        (x, y) for x, y in zip(layer.x, layer.y, strict=True) if x is not None and y is not None
    ]
    points = [f"{px(x):.1f},{py(y):.1f}" for x, y in pairs]
    if layer.kind in ("line", "dashed"):
        return [
            _polyline(points, layer.color, dashed=layer.kind == "dashed", opacity=layer.opacity)
        ]
    if layer.kind == "points":
        return [
            f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.5' fill='{layer.color}' "
            f"fill-opacity='{layer.opacity}'><title>{_num(x)}, {_num(y)}</title></circle>"
            for x, y in pairs
        ]
    if layer.kind == "band":
        top = [f"{px(x):.1f},{py(u):.1f}" for x, u in zip(layer.x, layer.upper, strict=True)]
        outline = " ".join([*top, *reversed(points)])
        return [
            f"<polygon points='{outline}' fill='{layer.color}' fill-opacity='{layer.opacity}'/>"
        ]
    return [
        f"<line x1='{px(a):.1f}' y1='{py(y):.1f}' x2='{px(b):.1f}' y2='{py(y):.1f}' "
        f"stroke='{layer.color}' stroke-width='1.5'><title>{_num(a)} to {_num(b)}</title></line>"
        for a, y, b in zip(layer.x, layer.y, layer.upper, strict=True)
    ]


def _xy_panel(panel: Panel) -> list[str]:
    """One panel drawn in a box of its width x height plot pixels at the origin."""
    w, h = panel.width, panel.height
    xt = nice_span(min(_extent(panel, "x"), default=0), max(_extent(panel, "x"), default=1))
    if panel.y_labels:
        yt, n = [], len(panel.y_labels)
        py: Callable[[float], float] = lambda v: h * (v + 0.5) / n  # noqa: E731
    else:
        yt = nice_span(min(_extent(panel, "y"), default=0), max(_extent(panel, "y"), default=1))
        py = lambda v: h - h * (v - yt[0]) / ((yt[-1] - yt[0]) or 1)  # noqa: E731
    px: Callable[[float], float] = lambda v: w * (v - xt[0]) / ((xt[-1] - xt[0]) or 1)  # noqa: E731
    parts = [_text(w / 2, -10, panel.title, size=11, font_weight="bold")]
    parts.append(f"<line x1='0' y1='0' x2='0' y2='{h}' stroke='{_GREY}'/>")
    parts.append(f"<line x1='0' y1='{h}' x2='{w}' y2='{h}' stroke='{_GREY}'/>")
    for t in xt:
        parts.append(
            f"<line x1='{px(t):.1f}' y1='{h}' x2='{px(t):.1f}' y2='{h + 3}' stroke='{_GREY}'/>"
        )
        parts.append(_text(px(t), h + 13, panel.x_label(t), size=8))
    ticks = [(float(i), label) for i, label in enumerate(panel.y_labels)] or [
        (t, _num(t)) for t in yt
    ]
    for t, label in ticks:
        parts.append(f"<line x1='-3' y1='{py(t):.1f}' x2='0' y2='{py(t):.1f}' stroke='{_GREY}'/>")
        parts.append(_text(-5, py(t) + 3, label[:28], size=8, anchor="end"))
    for layer in panel.layers:
        parts += _layer(layer, px, py)
    parts.append(_text(w / 2, h + 30, panel.x_title, size=10))
    parts.append(_text(-48, h / 2, panel.y_title, size=10, transform=f"rotate(-90 -48 {h / 2})"))
    return parts


def xy_chart(*panels: Panel) -> str:
    """Panels side by side, each with its axes, ticks, titles and layers (SVG text)."""
    left = 70 if any(p.y_labels for p in panels) else 60
    body, x = [], 0.0
    for panel in panels:
        body.append(f"<g transform='translate({x + left:.0f} 30)'>{''.join(_xy_panel(panel))}</g>")
        x += panel.width + left + 20
    height = max(p.height for p in panels) + 70
    return _document(x, height, body)


def date_label(days: float) -> str:
    """Days since 1970 as a date (an x tick on a date axis)."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=round(days))).isoformat()
