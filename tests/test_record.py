"""One run record: what a run learned, typed, stored with its schema version, read back the same."""

from __future__ import annotations

import json

import duckdb
import pytest

import tracer_kit as tk
from tracer_kit._resources import resource_path
from tracer_kit.record import RECORD_SCHEMA_VERSION, GateVerdict, ModelSummary, RunRecord
from tracer_kit.warehouse import run_row

TINY = resource_path("tracer_kit/samples/customers_tiny.csv")


def test_a_run_stores_its_typed_record_and_reads_it_back(workdir):
    result = tk.run_pipeline(TINY, "customer_churn", config={"pii": ["customer_id"]}, report=False)
    record = run_row(result.run_id)["record"]
    assert isinstance(record, RunRecord) and record == result.record
    assert record.schema_version == RECORD_SCHEMA_VERSION == 1
    assert record.gate == GateVerdict(passed=True, failures=[])
    assert record.personal == ["customer_id"] and record.personal_at_rest.mode == "pseudonymised"
    assert isinstance(record.model, ModelSummary) and record.model.training_rows is None
    assert record.config["read"]["on_bad_lines"] == "quarantine"
    assert record.transforms == []  # (no transform step was configured)
    # stored as JSON with only the facts set, so it reads back exactly as written
    with duckdb.connect("data/warehouse.duckdb", read_only=True) as con:
        stored = json.loads(con.execute("SELECT params FROM runs").fetchone()[0])
    assert stored["schema_version"] == 1 and "rerun_of" not in stored and "engine" not in stored
    assert RunRecord.from_stored(stored) == record
    assert result.params == record.as_params()  # (the plain-JSON form older code reads)


def test_a_gate_failure_is_a_verdict_in_the_record_not_a_message(workdir):
    with pytest.raises(tk.QualityGateError) as failed:
        tk.run_pipeline(TINY, "customer_churn", config={"thresholds": {"min_score": 100}})
    result = failed.value.result
    assert result.record.gate.passed is False
    assert result.record.gate.failures == [f for f in result.record.gate.failures if f]
    assert "quality score" in result.record.gate.failures[0]
    # the report and the notebook read the verdict, whatever the error's wording
    stored = run_row(result.run_id)
    assert stored["record"].gate == result.record.gate
    assert "Quality gate FAILED" in result._repr_html_()


def test_the_record_has_a_schema_an_api_can_publish():
    schema = RunRecord.model_json_schema()
    for name in ("schema_version", "config", "gate", "model", "trained_by", "rerun_of", "pages"):
        assert name in schema["properties"], name
    assert set(schema["$defs"]) >= {"GateVerdict", "ModelSummary", "PageRecord", "TransformCount"}
    # a newer release's or a plugin's facts are kept, not refused
    record = RunRecord.from_stored({"schema_version": 1, "a_plugin_fact": {"n": 3}})
    assert record.as_params()["a_plugin_fact"] == {"n": 3}
