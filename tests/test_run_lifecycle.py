"""One run lifecycle for the pipeline and the notebook runner: every run ends exactly once."""

from __future__ import annotations

import pytest

import tracer_kit as tk
from tracer_kit.run import RunLifecycle
from tracer_kit.types import RunState
from tracer_kit.warehouse import open_warehouse


def _state(run_id):
    row = tk.query(f"SELECT state, error FROM runs WHERE run_id = '{run_id}'").row(0)
    return row


def test_leaving_on_an_error_records_failed_or_cancelled(workdir):
    open_warehouse("data/warehouse.duckdb")
    for run_id, error, expected in (
        ("r-tracer", tk.ConfigError("bad option"), ("FAILED", "bad option")),
        ("r-bug", ValueError("oops"), ("FAILED", "ValueError: oops")),
        ("r-stop", KeyboardInterrupt(), ("CANCELLED", "cancelled by the user (Ctrl-C)")),
    ):
        with pytest.raises(type(error)), RunLifecycle("data/warehouse.duckdb", run_id) as life:
            life.start({"run_id": run_id, "blueprint": "customer_churn"})
            with life.stage("ingest"):
                pass
            raise error
        assert _state(run_id) == expected
        assert set(life.seconds) == {"ingest"}


def test_a_committed_run_is_not_overwritten(workdir):
    open_warehouse("data/warehouse.duckdb")
    with pytest.raises(RuntimeError), RunLifecycle("data/warehouse.duckdb", "r1") as life:
        life.start({"run_id": "r1", "blueprint": "customer_churn"}, RunState.PENDING)
        life.committed()
        raise RuntimeError("after the commit point")
    assert _state("r1") == ("PENDING", None)


def test_a_bad_notebook_path_fails_the_run_instead_of_leaving_it_pending(workdir):
    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    with pytest.raises(tk.ConfigError, match="does not exist"):
        tk.run_notebook(src, "customer_churn", config={"notebook": "missing.ipynb"})
    state, error = tk.query("SELECT state, error FROM runs").row(0)
    assert state == "FAILED" and "missing.ipynb does not exist" in error
