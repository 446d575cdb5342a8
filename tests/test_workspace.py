"""One object owns every path of a project."""

from __future__ import annotations

from pathlib import Path

from tracer_kit.workspace import Workspace


def test_default_layout_under_a_project_folder():
    space = Workspace.at("/srv/project")
    assert space.warehouse == Path("/srv/project/data/warehouse.duckdb")
    assert space.bronze == Path("/srv/project/data/bronze")
    assert space.staging == Path("/srv/project/data/staging")
    assert space.uploads == Path("/srv/project/data/uploads")
    assert space.run_reports("r1") == Path("/srv/project/reports/r1")
    assert space.processed_file("customer_churn", "r1") == Path(
        "/srv/project/data/processed/customer_churn/r1.parquet"
    )
    assert space.outputs == (space.bronze, space.processed, space.staging)


def test_moved_processed_folder_carries_bronze_and_staging():
    space = Workspace.of("w.duckdb", "/big/disk/processed", "out")
    assert space.bronze == Path("/big/disk/bronze") and space.staging == Path("/big/disk/staging")
    assert space.run_staging("r2") == Path("/big/disk/staging/r2")


def test_severity_and_state_are_declared_once():
    from tracer_kit.quality import SEVERITIES
    from tracer_kit.types import RunState, Severity, by_severity
    from tracer_kit.warehouse import STATES

    assert SEVERITIES == ("critical", "high", "medium", "low")
    assert STATES == ("PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED")
    assert Severity("high").rank == 1 and RunState.COMPLETED == "COMPLETED"
    issues = [
        {"severity": "low", "n": 1},
        {"severity": "critical", "n": 2},
        {"severity": "low", "n": 3},
    ]
    assert [i["n"] for i in by_severity(issues)] == [2, 1, 3]


def test_tunables_live_in_one_settings_object():
    import pytest

    from tracer_kit.settings import override, settings

    before = settings.sort_chunk_rows
    with override(sort_chunk_rows=10) as s:
        assert s.sort_chunk_rows == 10 and settings.sort_chunk_rows == 10
    assert settings.sort_chunk_rows == before
    with pytest.raises(TypeError, match="unknown setting"), override(chunk=1):
        pass
