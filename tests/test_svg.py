"""Charts written as SVG from their numbers: exact geometry on hand-computed bins, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tracer_kit.svg import (
    Histogram,
    Layer,
    Line,
    Panel,
    histogram_grid,
    line_chart,
    nice_span,
    nice_ticks,
    stacked_histogram,
    xy_chart,
)

from .conftest import modules_imported_by

NS = "{http://www.w3.org/2000/svg}"


def test_ticks_step_by_one_two_five_and_reach_the_top():
    assert nice_ticks(2300) == [0, 1000, 2000, 3000]
    assert nice_ticks(100) == [0.0, 50.0, 100.0]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(0) == [0.0, 1.0]


def test_histogram_bars_sit_on_their_edges_with_heights_in_proportion():
    svg = histogram_grid([Histogram("a<b", [0.0, 1.0, 3.0], [10, 5])], width=100, height=50)
    root = ET.fromstring(svg)  # well-formed XML, the title escaped
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    geometry = [(float(r.get("x")), float(r.get("width")), float(r.get("height"))) for r in bars]
    # x over [0, 3] on 100 px; ticks 0, 5, 10 so 10 rows fill the 50 px plot
    assert geometry == [(0.0, 33.3, 50.0), (33.3, 66.7, 25.0)]
    assert [b.find(f"{NS}title").text for b in bars] == ["0 to 1: 10", "1 to 3: 5"]
    assert "a<b" in [t.text for t in root.iter(f"{NS}text")]


def test_categories_are_ordered_by_count_and_an_empty_panel_is_left_out():
    svg = histogram_grid([Histogram("plan", ["basic", "gold"], [2, 9]), Histogram("x", [], [])])
    root = ET.fromstring(svg)
    tips = [t.text for t in root.iter(f"{NS}title")]
    assert tips == ["gold: 9", "basic: 2"]
    assert histogram_grid([Histogram("x", [], [])]) is None


def test_a_line_has_a_gap_where_a_value_is_missing_and_red_dots_where_asked():
    line = Line("score", [90.0, None, 80.0, 70.0], dots=["#4c78a8", None, "#e45756", None])
    root = ET.fromstring(line_chart(["r1", "r2", "r3", "r4"], [line], y_title="score", y_top=100))
    polylines = [p.get("points") for p in root.iter(f"{NS}polyline")]
    assert len(polylines) == 1 and len(polylines[0].split()) == 2  # r3 to r4; r1 stands alone
    dots = [(c.get("fill"), c.find(f"{NS}title").text) for c in root.iter(f"{NS}circle")]
    assert dots == [("#4c78a8", "score: 90"), ("#e45756", "score: 80")]


def test_a_report_starts_no_chart_engine_with_or_without_a_model(workdir, sample_csv):
    code = (
        "import tracer_kit as tk\n"
        f"r = tk.run_pipeline({str(sample_csv)!r}, 'customer_churn', "
        "config={'model': {'enabled': False}}, return_frame=False)\n"
        f"m = tk.run_pipeline({str(sample_csv)!r}, 'customer_churn', return_frame=False)\n"
        "html = open(m.outputs.report).read()\n"
        "assert 'ROC (held-out customers)' in __import__('base64').b64decode("
        "html.split('data:image/svg+xml;base64,')[1].split('\"')[0]).decode()"
    )
    assert modules_imported_by(code, ("altair", "vl_convert")) == []


def test_xy_panels_draw_bands_lines_points_and_intervals_on_their_scales():
    band = Layer("band", [0.0, 10.0], [1.0, 2.0], [3.0, 4.0], opacity=0.2)
    line = Layer("line", [0.0, 10.0], [2.0, 3.0])
    left = Panel("forecast", [band, line], x_title="day", y_title="value", width=100, height=100)
    rows = Panel(
        "",
        [
            Layer("interval", [-2.0, -1.0], [0.0, 1.0], [0.0, 1.0]),
            Layer("points", [-1.0, -0.5], [0.0, 1.0]),
        ],
        width=100,
        height=40,
        y_labels=["P1", "P2"],
    )
    root = ET.fromstring(xy_chart(left, rows))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "forecast" in texts and "P1" in texts and "P2" in texts and "day" in texts
    # y ticks 1..4 on a 1-step: the band's lower left (x 0, y 1) sits at the bottom left corner
    (polygon,) = [p.get("points").split() for p in root.iter(f"{NS}polygon")]
    assert polygon[-1] == "0.0,100.0" and polygon[0] == "0.0,33.3"
    rules = [
        (r.get("x1"), r.get("x2"), r.get("y1"))
        for r in root.iter(f"{NS}line")
        if r.find(f"{NS}title") is not None
    ]
    # x from -2 to 1 over 100 px; rows at 1/4 and 3/4 of 40 px
    assert rules == [("0.0", "66.7", "10.0"), ("33.3", "100.0", "30.0")]
    assert nice_span(-2.0, 0.0) == [-2.0, -1.5, -1.0, -0.5, 0.0]


def test_stacked_bins_add_up_per_bin_and_each_group_has_its_colour():
    svg = stacked_histogram(
        "t", [0.0, 1.0, 2.0], {"a": [4, 0], "b": [4, 2]}, x_title="x", legend="g", height=100
    )
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    # ticks 0, 2, ..., 8: the first bin's two groups fill the plot, the second a quarter
    got = [(r.find(f"{NS}title").text, r.get("fill"), float(r.get("height"))) for r in bars]
    assert got == [
        ("a, 0 to 1: 4", "#4c78a8", 50.0),
        ("b, 0 to 1: 4", "#f58518", 50.0),
        ("b, 1 to 2: 2", "#f58518", 25.0),
    ]
    assert float(bars[1].get("y")) == 0.0  # stacked on a
    assert "g" in [t.text for t in root.iter(f"{NS}text")]
