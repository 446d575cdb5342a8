"""Warm kernels (which differences of the environment a kernel started ahead may be given) and
what a cold command imports."""

from __future__ import annotations

import os

import pytest

from tracer_kit.kernels import PATCHABLE, environment_changes

from .conftest import modules_imported_by


def test_presentation_variables_are_patched_and_secrets_refuse_the_kernel(monkeypatch):
    monkeypatch.delenv("TRACER_INTERFACE", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    before = dict(os.environ)
    assert environment_changes(before) == {}
    monkeypatch.setenv("TRACER_INTERFACE", "cli")
    monkeypatch.delenv("COLUMNS")
    assert environment_changes(before) == {"TRACER_INTERFACE": "cli", "COLUMNS": None}
    monkeypatch.setenv("TRACER_DB_URL", "postgresql://u:secret@127.0.0.1/db")
    assert environment_changes(before) is None  # a password for this run alone: a kernel of its own
    assert "TRACER_DB_URL" not in PATCHABLE and "TRACER_PSEUDONYMISE_KEY" not in PATCHABLE


@pytest.mark.parametrize(
    ("command", "also_not"),
    [
        # (pandera without its pandas API; repeated ids of a small file grouped without DuckDB)
        (["validate", "-b", "customer_churn"], ("pandas", "hypothesis", "duckdb")),
        (["run", "-b", "customer_churn", "--no-model", "--no-notebook"], ("pandas",)),
        (["profile"], ("pandera", "pandas")),  # (a profile validates nothing)
    ],
    ids=["validate", "run-without-model", "profile"],
)
def test_a_cold_command_does_not_import_the_server_or_scikit_learn(
    sample_csv, workdir, command, also_not
):
    """A command that needs no model imports no scikit-learn, skops or chart engine (the
    preprocessing recipe is fitted and applied in polars; the report draws SVG), the console
    script no pandas, and a profile no pandera.
    """
    argv = ["tracer", command[0], str(sample_csv), *command[1:]]
    if command[0] != "profile":
        argv.append("--local")
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "from tracer_kit.launch import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code"
    )
    heavy = (
        "sklearn",
        "skops",
        "altair",
        "vl_convert",
        "tracer_kit.preprocess",
        "tracer_kit.server.app",
        "fastapi",
        "tracer_kit.server.schedules",
        "tracer_kit.server.commands",  # (`tracer serve` and `schedule` are added when named)
        "cronsim",
        "tracer_kit.ingest.api",  # (HTTP sources: urllib.request, ssl)
        "ssl",
        "yaml",  # (contracts written in YAML)
        *also_not,
    )
    assert modules_imported_by(code, heavy) == []


def test_pandera_loads_on_a_thread_without_pyspark_s_warning_in_a_recording_stage():
    """pandera imports ``pyspark.pandas`` to see whether it exists, and pyspark then warns about
    pandas 3; warning filters are process-wide, so the stage recording its library warnings
    while pandera loads on the preload thread must not see it (CI caught the line in a run's
    log once). The block is lifted afterwards (no ``None`` left in ``sys.modules``).
    """
    pytest.importorskip("pyspark")
    code = (
        "import warnings\n"
        "from tracer_kit.heavy import pandera_polars, preload_pandera\n"
        "preload_pandera()  # as a validation starts, then its stage records warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    pandera_polars()\n"
        "assert not [w for w in caught if 'PySpark' in str(w.message)], caught\n"
        "import sys\n"
        "assert 'pyspark.pandas' not in sys.modules, 'still blocked'\n"
    )
    assert modules_imported_by(code, ("pandera.polars", "pyspark.pandas")) == ["pandera.polars"]


@pytest.mark.parametrize("lean", [True, False], ids=["console-script", "notebook"])
def test_pandera_is_lean_only_in_the_console_script(lean):
    """The console script imports pandera as an install without pandas would, and its polars
    checks still fail bad rows; pandas stays importable afterwards.
    Anywhere else (a notebook, a server) pandera keeps its pandas API for the user's code.
    """
    code = (
        "import sys\n"
        "import polars as pl\n"
        "from tracer_kit import heavy\n"
        + ("heavy.lean_process()\n" if lean else "")
        + "pa = heavy.pandera_polars()\n"
        "import pandas\n"
        "assert pandas.DataFrame({'x': [1]}).shape == (1, 1)  # pandas itself is whole\n"
        "schema = pa.DataFrameSchema({'x': pa.Column(pl.Int64, pa.Check.ge(0), unique=True)})\n"
        "try:\n"
        "    schema.validate(pl.DataFrame({'x': [3, -1, 3]}), lazy=True)\n"
        "except pa.errors.SchemaErrors as exc:\n"
        "    assert exc.failure_cases.height == 3, exc.failure_cases\n"
        "else:\n"
        "    raise AssertionError('bad rows passed')\n"
        "import pandera\n"
        "print('pandas api' if hasattr(pandera, 'DataFrameSchema') else 'polars only')\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == (["polars", "only"] if lean else ["pandas", "api"])
