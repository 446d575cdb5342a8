"""revenue_projection and price_optimization on hand-computed rows; the registry and custom blueprints."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import polars as pl
import pytest

import tracer_kit as tk

from .conftest import venv_bin, write_csv


def col(df: pl.DataFrame, name: str) -> list:
    return df.get_column(name).to_list()


@pytest.fixture
def revenue(workdir):
    path = write_csv(
        workdir / "rev.csv",
        "date,revenue,customer_count",
        [
            "2025-01-01,100,2",
            "2025-01-01,50,",  # same date: summed with the row above
            "2025-01-02,300,3",
            # 2025-01-03 is missing: filled with revenue 0
            "2025-01-04,0,0",
            "2025-01-05,75,",
        ],
    )
    r = tk.run_pipeline(path, "revenue_projection", report=False)
    assert (r.rows_in, r.rows_valid, r.rows_out) == (5, 5, 5)
    return r.frame


def test_revenue_aggregates_and_fills_dates(revenue):
    assert col(revenue, "date") == [dt.date(2025, 1, d) for d in range(1, 6)]
    assert col(revenue, "revenue") == [150.0, 300.0, 0.0, 0.0, 75.0]
    assert col(revenue, "customer_count") == [2, 3, None, 0, None]
    assert col(revenue, "is_filled") == [False, False, True, False, False]
    # an aggregated row's source_row is its group's smallest; a filled date's is null
    assert col(revenue, "source_row") == [1, 3, None, 4, 5]


def test_revenue_moving_average_growth_volatility(revenue):
    # means of 150 | 150,300 | 150,300,0 | ... (fewer days at the start)
    assert col(revenue, "revenue_ma_7") == pytest.approx([150.0, 225.0, 150.0, 112.5, 105.0])
    assert col(revenue, "revenue_ma_90") == pytest.approx([150.0, 225.0, 150.0, 112.5, 105.0])
    # 300/150 - 1; 0/300 - 1; then the earlier day is 0 -> null
    assert col(revenue, "revenue_growth_1d") == [None, 1.0, -1.0, None, None]
    assert col(revenue, "revenue_growth_7d") == [None] * 5
    # sample std: null with 1 value; std(150, 300); std(150, 300, 0); ...
    assert col(revenue, "revenue_volatility_7")[0] is None
    assert col(revenue, "revenue_volatility_7")[1:] == pytest.approx(
        [106.06601717798213, 150.0, 143.61406616345073, 125.49900398011133]
    )


def test_revenue_calendar_and_per_customer(revenue):
    # 2025-01-01 is a Wednesday, ISO week 1
    assert col(revenue, "day_of_week") == [3, 4, 5, 6, 7]
    assert col(revenue, "is_weekend") == [False, False, False, True, True]
    assert col(revenue, "week") == [1, 1, 1, 1, 1]
    assert (col(revenue, "month"), col(revenue, "quarter")) == ([1] * 5, [1] * 5)
    # 150/2, 300/3; null when the count is absent or 0
    assert col(revenue, "revenue_per_customer") == [75.0, 100.0, None, None, None]


@pytest.fixture
def prices(workdir):
    path = write_csv(
        workdir / "prices.csv",
        "product_id,price,quantity_sold,date",
        [
            "A,10,100,2025-01-01",
            "B,5,0,2025-01-01",
            "A,12,60,2025-01-03",  # out of date order in the file
            "A,10,80,2025-01-02",  # constant price vs 2025-01-01
            "B,4,10,2025-01-02",  # previous quantity 0
            "C,7,3,2025-01-01",  # a single row for the product
        ],
    )
    r = tk.run_pipeline(path, "price_optimization", report=False)
    assert r.rows_out == 6
    return r.frame


def test_price_rows_sorted_by_product_then_date(prices):
    assert list(zip(col(prices, "product_id"), col(prices, "source_row"), strict=True)) == [
        ("A", 1),
        ("A", 4),
        ("A", 3),
        ("B", 2),
        ("B", 5),
        ("C", 6),
    ]


def test_revenue_and_price_changes(prices):
    assert col(prices, "revenue") == [1000.0, 800.0, 720.0, 0.0, 40.0, 21.0]
    assert col(prices, "price_change") == [None, 0.0, 2.0, None, -1.0, None]
    assert col(prices, "price_change_pct") == pytest.approx([None, 0.0, 0.2, None, -0.2, None])


def test_elasticity_null_never_infinite(prices):
    # A day 3: ln(60/80) / ln(12/10); constant price, zero quantity and first rows -> null
    values = col(prices, "price_elasticity")
    assert values[2] == pytest.approx(-1.5778829311823859)
    assert [v for i, v in enumerate(values) if i != 2] == [None] * 5


def test_demand_mean_and_slope(prices):
    assert col(prices, "demand_ma_7") == pytest.approx([100.0, 90.0, 80.0, 0.0, 5.0, 3.0])
    # slope of (0,100),(1,80) = -20; of (0,100),(1,80),(2,60) = -20; B: (0,0),(1,10) = 10
    assert col(prices, "demand_slope_7") == [None, -20.0, -20.0, None, 10.0, None]


def test_price_indexes(prices):
    # product medians: A 10, B 4.5, C 7; catalogue median of 10,5,12,10,4,7 = 8.5
    assert col(prices, "price_index_product") == pytest.approx(
        [1.0, 1.0, 1.2, 1.1111111111111112, 0.8888888888888888, 1.0]
    )
    assert col(prices, "price_index_catalogue") == pytest.approx(
        [
            1.1764705882352942,
            1.1764705882352942,
            1.411764705882353,
            0.5882352941176471,
            0.47058823529411764,
            0.8235294117647058,
        ]
    )


def test_price_rules_quarantine_zero_price(workdir):
    path = write_csv(
        workdir / "p.csv",
        "product_id,price,quantity_sold,date",
        ["A,0,1,2025-01-01", "A,1,-1,2025-01-02", "A,2,3,2025-01-03"],
    )
    q = tk.validate(path, "price_optimization")
    assert q.quarantine["reasons"].to_list() == [["out_of_range"], ["out_of_range"]]


def test_registry_lists_the_three_builtins():
    names = [bp.name for bp in tk.list_blueprints()]
    assert {"customer_churn", "revenue_projection", "price_optimization"} <= set(names)
    with pytest.raises(
        tk.ConfigError, match="unknown blueprint 'customer_chrun'.*Did you mean 'customer_churn'"
    ):
        tk.get_blueprint("customer_chrun")


CUSTOM = """
import polars as pl
from tracer_kit import Blueprint, Feature, Field

BLUEPRINT = Blueprint(
    name="order_margin",
    description="Margin per order.",
    fields=(
        Field("order_id", "id", required=True),
        Field("amount", "float", required=True, ge=0),
        Field("cost", "float", required=True, ge=0),
    ),
    key=("order_id",),
    identifier="order_id",
    features=(Feature("margin", pl.Float64(), "amount - cost"),),
    build_features=lambda lf, ctx: lf.with_columns((pl.col("amount") - pl.col("cost")).alias("margin")),
)
"""


def test_custom_blueprint_from_user_folder(workdir):
    (workdir / "blueprints").mkdir()
    (workdir / "blueprints" / "order_margin.py").write_text(textwrap.dedent(CUSTOM))
    path = write_csv(
        workdir / "orders.csv", "order_id,amount,cost", ["O1,10,4", "O2,5,5", "O1,1,1"]
    )
    listing = subprocess.run(
        [venv_bin("tracer"), "blueprints"], capture_output=True, text=True, cwd=workdir
    )
    assert listing.returncode == 0 and "order_margin" in listing.stdout
    r = tk.run_pipeline(path, "order_margin", report=False)
    assert (r.rows_valid, r.rows_quarantined) == (2, 1)
    assert col(r.frame, "margin") == [6.0, 0.0]
    assert tk.query("SELECT count(*) AS n FROM order_margin_processed")["n"].item() == 2


def test_entry_point_blueprints_are_loaded(monkeypatch):
    from importlib import metadata

    import tracer_kit.blueprints as registry

    module = type(sys)("fake_plugin")
    namespace: dict = {}
    exec(textwrap.dedent(CUSTOM).replace("order_margin", "plugin_margin"), namespace)
    module.BLUEPRINT = namespace["BLUEPRINT"]
    monkeypatch.setitem(sys.modules, "fake_plugin", module)
    ep = metadata.EntryPoint(
        name="plugin_margin", value="fake_plugin:BLUEPRINT", group="tracer_kit.blueprints"
    )
    monkeypatch.setattr(
        registry.metadata, "entry_points", lambda group: [ep] if group == ep.group else []
    )
    assert "plugin_margin" in [bp.name for bp in tk.list_blueprints()]
    assert tk.get_blueprint("plugin_margin").feature_names == ("margin",)


def test_init_copies_notebooks_and_templates(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "init", str(tmp_path / "mine")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine" / "notebooks" / "blueprint.ipynb").exists()
    assert (tmp_path / "mine" / "notebooks" / "workbench.ipynb").exists()
    assert (tmp_path / "mine" / "templates" / "report.html.j2").exists()
