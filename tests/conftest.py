"""Shared fixtures: every test works in its own temporary folder with its own warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHURN_HEADER = (
    "customer_id,last_activity_date,account_created_date,total_value,"
    "support_tickets,feature_usage_count,plan_type"
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current folder, so data/ and reports/ land in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACER_LOCK_TIMEOUT", "10")
    return tmp_path


def write_csv(path: Path, header: str, rows: list[str], *, newline: str = "\n") -> Path:
    path.write_text(newline.join([header, *rows]) + newline, encoding="utf-8")
    return path


@pytest.fixture
def churn_file(workdir: Path):
    def make(rows: list[str], name: str = "churn.csv", header: str = CHURN_HEADER) -> Path:
        return write_csv(workdir / name, header, rows)

    return make


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    path = REPO / "data" / "samples" / "customers.csv"
    assert path.exists(), "the committed sample data/samples/customers.csv is missing"
    return path


def modules_imported_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(done.stdout.strip().splitlines()[-1])


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the tests."""
    import sys

    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of the tests' own (see tests/postgres.py), stopped at the end."""
    from .postgres import running_postgres

    with running_postgres() as server:
        yield server
