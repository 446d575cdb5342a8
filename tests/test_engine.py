"""The engine interface: every engine implements every operation, frames find their engine
by type, and an engine is chosen once, by name, before any run starts.
"""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit import engine as engines
from tracer_kit.errors import ConfigError

from .conftest import venv_bin


@pytest.mark.parametrize("name", list(engines.ENGINES))
def test_every_engine_implements_every_operation_and_resolves_by_name(name):
    engine = tk.resolve_engine(name)
    assert isinstance(engine, tk.Engine)
    assert engine.name == name
    assert type(engine).__abstractmethods__ == frozenset()
    assert tk.resolve_engine(engine) is engine  # an engine is returned as is


def test_an_engine_missing_an_operation_cannot_be_made():
    class Partial(tk.Engine):  # every operation but the row count
        name = "partial"
        frame_types = ()
        locals().update(
            {
                op: engines.PolarsEngine.__dict__[op]
                for op in tk.Engine.__abstractmethods__
                if op != "count_rows"
            }
        )

    with pytest.raises(TypeError, match="count_rows"):
        Partial()


def test_a_frame_goes_to_the_engine_registered_for_its_type(monkeypatch):
    assert engines.engine_of(pl.LazyFrame({"a": [1]})) is engines.POLARS
    assert engines.engine_of(pl.DataFrame({"a": [1]})) is engines.POLARS
    with pytest.raises(TypeError, match="no engine runs frames of type dict"):
        engines.engine_of({"a": [1]})

    class Wrapped:  # a frame of a third engine: the operations follow its registration
        def __init__(self, lf: pl.LazyFrame) -> None:
            self.lf = lf

    class Counting(engines.PolarsEngine):
        name = "counting"
        frame_types = (Wrapped,)

        @classmethod
        def for_frame(cls, frame):
            return cls()

        def count_rows(self, frame):
            return 1000 + frame.lf.select(pl.len()).collect().item()

    monkeypatch.setattr(engines, "_BY_TYPE", dict(engines._BY_TYPE))
    tk.register_engine(Counting)
    assert engines.count_rows(Wrapped(pl.LazyFrame({"a": [1, 2, 3]}))) == 1003
    assert engines.count_rows(pl.LazyFrame({"a": [1, 2, 3]})) == 3


def test_a_bad_engine_choice_stops_before_any_run(tmp_path, sample_csv):
    warehouse = tmp_path / "w.duckdb"
    with pytest.raises(ConfigError, match=r"^engine 'dask': use polars or spark$"):
        tk.run_pipeline(sample_csv, "customer_churn", engine="dask", warehouse=warehouse)
    with pytest.raises(ConfigError, match=r"needs engine 'spark' \(--engine spark\)$"):
        tk.run_pipeline(sample_csv, "customer_churn", spark=object(), warehouse=warehouse)
    assert not warehouse.exists()  # no run was recorded, nothing was written
    assert not (tmp_path / "reports").exists()

    def tracer(*args):
        return subprocess.run(
            [venv_bin("tracer"), "run", str(sample_csv), "-b", "customer_churn", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = tracer("--engine", "dask", "--no-notebook")
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].endswith("engine 'dask': use polars or spark")
    assert "Traceback" not in out.stderr
    out = tracer("--master", "local[2]", "--no-notebook")
    assert out.returncode != 0
    assert "a Spark master or session needs engine 'spark' (--engine spark)" in out.stderr
    assert not (tmp_path / "data").exists()


def test_the_spark_engine_starts_its_session_when_first_used_not_when_chosen():
    pytest.importorskip("pyspark")
    code = """
import tracer_kit as tk
from pyspark.sql import SparkSession
engine = tk.resolve_engine("spark", master="local[1]")
print(engine.master, SparkSession.getActiveSession() is None)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["local[1]", "True"]


def test_read_columns_names_what_a_plan_reads_by_polars_own_projection_pushdown():
    """What the Spark engine reads from Parquet and ships to Python for a pass of polars
    steps: the columns the plan reads, every branch's; None when it reads them all.
    """
    from tracer_kit.spark.frame import read_columns

    schema = pl.Schema({"a": pl.Int64, "b": pl.String, "c": pl.Float64, "d": pl.Date})
    derived = lambda lf: lf.with_columns(x=pl.col("a") * 2).select(pl.col("x").sum())  # noqa: E731
    assert read_columns(schema, derived) == ["a"]
    assert read_columns(schema, lambda lf: lf.filter(pl.col("c") > 1).select("b")) == ["b", "c"]
    branches = lambda lf: pl.concat(  # noqa: E731
        [lf.filter(pl.col("d").is_null()).select("b"), lf.filter(pl.col("a") > 1).select("b")]
    )
    assert read_columns(schema, branches) == ["a", "b", "d"]  # (each branch's, schema order)
    assert read_columns(schema, lambda lf: lf.select(pl.len())) == ["a"]  # (a count reads one)
    assert read_columns(schema, lambda lf: lf) is None
    assert read_columns(schema, lambda lf: lf.drop_nulls().select("b")) is None  # (every column)

    def refuses_no_rows(lf: pl.LazyFrame) -> pl.LazyFrame:
        if lf.collect().height == 0:
            raise ValueError("Found array with 0 sample(s)")  # (as scikit-learn says)
        return lf.select("a")

    assert read_columns(schema, refuses_no_rows) is None  # (it cannot tell: every column)
