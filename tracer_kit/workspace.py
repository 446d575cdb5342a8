"""Where a project's files live: one frozen object owns every path a run reads or writes.

By default a project is the current folder: ``data/warehouse.duckdb``, ``data/bronze/``,
``data/processed/``, ``data/staging/``, ``data/uploads/`` and ``reports/``. A caller may move
the warehouse, the processed folder or the reports; bronze and staging sit beside processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_PROCESSED",
    "DEFAULT_REPORTS",
    "DEFAULT_WAREHOUSE",
    "Workspace",
    "parquet_location",
]

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_PROCESSED = "data/processed"
DEFAULT_REPORTS = "reports"


@dataclass(frozen=True)
class Workspace:
    """The paths of one project, from the warehouse, processed and reports locations."""

    warehouse: Path = Path(DEFAULT_WAREHOUSE)
    processed: Path = Path(DEFAULT_PROCESSED)
    reports: Path = Path(DEFAULT_REPORTS)

    @classmethod
    def of(
        cls,
        warehouse: str | Path = DEFAULT_WAREHOUSE,
        processed: str | Path = DEFAULT_PROCESSED,
        reports: str | Path = DEFAULT_REPORTS,
    ) -> Workspace:
        """A workspace from user-given locations (strings or paths)."""
        return cls(Path(warehouse), Path(processed), Path(reports))

    @classmethod
    def at(cls, root: str | Path) -> Workspace:
        """The default layout under a project folder."""
        root = Path(root)
        return cls(root / DEFAULT_WAREHOUSE, root / DEFAULT_PROCESSED, root / DEFAULT_REPORTS)

    @property
    def bronze(self) -> Path:
        """Raw records, one Parquet file per input file and read options, per blueprint."""
        return self.processed.parent / "bronze"

    @property
    def staging(self) -> Path:
        """Runs' outputs until their commit."""
        return self.processed.parent / "staging"

    @property
    def uploads(self) -> Path:
        """Files uploaded through the workbench (inputs, not outputs)."""
        return self.processed.parent / "uploads"

    @property
    def outputs(self) -> tuple[Path, ...]:
        """Folders that hold only tracer-kit's own outputs (never offered as inputs)."""
        return (self.bronze, self.processed, self.staging)

    def run_staging(self, run_id: str) -> Path:
        """A run's staging folder."""
        return self.staging / run_id

    def run_reports(self, run_id: str) -> Path:
        """A run's report folder."""
        return self.reports / run_id

    def processed_file(self, blueprint: str, run_id: str) -> Path:
        """A run's processed rows."""
        return self.processed / blueprint / f"{run_id}.parquet"


def parquet_location(path: str | Path) -> str | None:
    """What ``read_parquet`` reads for a stored output: the file, or the part files of a
    folder the Spark engine's executors wrote; None when it is missing.
    """  # noqa: D205
    p = Path(path)
    if p.is_file():
        return str(p)
    if p.is_dir() and next(p.glob("*.parquet"), None) is not None:
        return str(p / "*.parquet")
    return None
