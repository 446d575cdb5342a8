"""A contract for an orders file, end to end: the CLI and the notebook give the same run.

The orders contract declares fields, two row rules, a reference to a customers run, two SQL
features (one windowed) and a regression of a planted margin; the model must find the
planted coefficients (``tests/orders_contract.py``). The Spark engine's run of the same
contract is compared in ``tests/test_spark.py``.
"""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

import tracer_kit as tk
from tracer_kit.cli import app
from tracer_kit.model import read_model

from .orders_contract import (
    COEFFICIENTS,
    INTERCEPT,
    MISSING_CUSTOMER_ROWS,
    SHIPPED_EARLY_ROWS,
    write_project,
)

pytestmark = pytest.mark.slow


def outputs(run_id: str) -> dict[str, pl.DataFrame]:
    """The run's processed rows, quarantine and predictions, without its run id."""
    where = f"WHERE run_id = '{run_id}'"
    return {
        "processed": tk.query(
            f"SELECT * EXCLUDE (run_id) FROM orders_processed {where} ORDER BY source_row"
        ),
        "quarantine": tk.query(
            f"SELECT source_row, reasons, failures FROM quarantine_orders {where} ORDER BY source_row"
        ),
        "predictions": tk.query(
            f"SELECT * EXCLUDE (run_id, model_run_id) FROM predictions_orders {where} "
            "ORDER BY order_id"
        ),
    }


@pytest.fixture
def project(workdir):
    customers, orders = write_project(workdir)
    assert tk.run_pipeline(customers, "customers", report=False).state == "COMPLETED"
    return orders


def test_the_orders_contract_runs_the_same_from_the_cli_and_the_notebook(project):
    cli = CliRunner().invoke(app, ["run", "orders.csv", "-b", "orders", "--no-notebook"])
    assert cli.exit_code == 0, cli.output
    assert "regression model of margin (ridge)" in cli.output
    by_cli = tk.query("SELECT run_id FROM runs WHERE blueprint = 'orders'").item()
    notebook = tk.run_notebook(project, "orders")
    assert notebook.state == "COMPLETED"
    a, b = outputs(by_cli), outputs(notebook.run_id)
    for name in a:
        assert a[name].height and a[name].equals(b[name]), name
    quarantined = dict(a["quarantine"].select("source_row", "reasons").iter_rows())
    assert quarantined == {
        **{r: ["not_in_reference"] for r in MISSING_CUSTOMER_ROWS},
        **{r: ["shipped_after_ordered"] for r in SHIPPED_EARLY_ROWS},
    }
    row = a["processed"].filter(pl.col("source_row") == 1).row(0, named=True)
    assert row["revenue"] == pytest.approx(
        row["quantity"] * row["unit_price"] * (1 - row["discount"])
    )


def test_the_regression_finds_the_planted_coefficients(project):
    result = tk.run_pipeline(project, "orders", report=False)
    summary = result.record.model
    assert summary.model == "ridge" and summary.metrics["r2"] > 0.99
    assert summary.metrics["mae"] < 0.5 < summary.baseline["mae"]  # noise sd 0.5: MAE ≈ 0.4
    saved = read_model(result.outputs.predictor)
    base = pl.DataFrame({"quantity": [5], "unit_price": [20.0], "discount": [0.1]}).to_pandas()
    at = float(saved["estimator"].predict(base)[0])
    assert at == pytest.approx(3 * 5 - 2 * 20 + 10 * 0.1 + INTERCEPT, abs=0.3)
    # within three standard errors of each estimate: noise sd 0.5 over ~320 training rows
    # (quantity's sd is 5.8, unit_price's 14, discount's 0.11: se 0.005, 0.002, 0.25)
    tolerance = {"quantity": 0.05, "unit_price": 0.05, "discount": 0.75}
    for name, coefficient in COEFFICIENTS.items():
        moved = base.copy()
        moved[name] = moved[name] + 1
        found = float(saved["estimator"].predict(moved)[0]) - at
        assert found == pytest.approx(coefficient, abs=tolerance[name]), name
    predictions = pl.read_parquet(result.outputs.predictions)
    assert predictions.columns == ["order_id", "prediction", "lower", "upper", "confidence"]
    assert predictions.height == result.rows_out
    assert (predictions["lower"] < predictions["prediction"]).all()


def test_a_missing_reference_run_is_one_clear_line(workdir):
    write_project(workdir)
    out = CliRunner().invoke(app, ["run", "orders.csv", "-b", "orders", "--no-notebook"])
    assert out.exit_code == 1
    assert "references customers.customer_id: no completed run of dataset 'customers'" in out.output
