"""What a run did and where its files are: :class:`RunRecord`, :class:`RunResult`, :class:`RunOutputs`.

:class:`RunRecord` is the one typed record of a run's facts beyond its counts: the options
it ran with, its dates, what the stages decided (column map, date formats, transform
counts, feature statistics, the preprocessor's choices, the model's summary and metrics),
personal data handling, the API pages read, the gate's verdict and the links to other runs
(``trained_by``, ``rerun_of``). The warehouse stores it as JSON in ``runs.params`` with its
``schema_version``; the report, the CLI, ``rerun``, ``predict`` and notebooks read it back
typed, and its JSON schema (:meth:`RunRecord.model_json_schema`) is what an API publishes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict
from pydantic import Field as ModelField

from tracer_kit.display import html_table, summary_html
from tracer_kit.types import ISSUE_COLUMNS, Issue
from tracer_kit.workspace import parquet_location

__all__ = [
    "RECORD_SCHEMA_VERSION",
    "EngineRecord",
    "GateVerdict",
    "ModelSummary",
    "PageRecord",
    "PersonalAtRest",
    "RunOutputs",
    "RunRecord",
    "RunResult",
    "TransformCount",
]

#: The version of :class:`RunRecord`'s stored JSON (older records are migrated on open).
RECORD_SCHEMA_VERSION = 1


class _Record(BaseModel):
    """A part of a run's record: keys a newer release or a plugin adds are kept, not refused;
    a value set later is checked (and converted) as one given at creation.
    """  # noqa: D205

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class EngineRecord(_Record):
    """The engine that ran the stages, when not the polars default."""

    name: str
    master: str | None = None
    version: str | None = None


class PageRecord(_Record):
    """One page of an HTTP API source: where, when, its status and the records it held."""

    url: str
    requested_at: str | None = None
    status: int | None = None
    first_row: int
    rows: int


class TransformCount(_Record):
    """How many values one transform step changed in one field."""

    field: str
    transform: str
    changed: int


class PersonalAtRest(_Record):
    """How the run's personal values are protected in bronze and quarantine."""

    mode: str
    columns: list[str] = ModelField(default_factory=list)
    key_fingerprint: str | None = None
    key_reference: str | None = None


class ModelSummary(_Record):
    """The model stage's summary: the model chosen (None: no model, with ``why``) and its numbers.

    Blueprint-specific parts (``scores``, ``totals``, ``products``, ``extras``...) are kept
    beside the common fields.
    """

    model: str | None = None
    why: str | None = None
    metrics: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    training_rows: int | None = None
    trained_by: str | None = None
    rows: int | None = None


class GateVerdict(_Record):
    """Whether the quality gate let the run go on, and the reasons when it did not."""

    passed: bool
    failures: list[str] = ModelField(default_factory=list)


class RunRecord(_Record):
    """A run's facts beyond its counts, typed; stored as JSON with :data:`RECORD_SCHEMA_VERSION`."""

    schema_version: int = RECORD_SCHEMA_VERSION
    #: The run's config as JSON (no secret: a pseudonymisation key is never recorded).
    config: dict[str, Any] = ModelField(default_factory=dict)
    run_date: dt.date | None = None
    reference_date: dt.date | None = None
    processed_dir: str | None = None
    output_dir: str | None = None
    engine: EngineRecord | None = None
    #: Rows the column profiles were computed on, when fewer than all the processed rows
    #: (a Spark run profiles a seeded sample on the driver).
    profiled_rows: int | None = None
    #: An API source's pages (None for other sources).
    pages: list[PageRecord] | None = None
    column_map: dict[str, str] = ModelField(default_factory=dict)
    date_formats: dict[str, Any] = ModelField(default_factory=dict)
    transforms: list[TransformCount] = ModelField(default_factory=list)
    #: Personal fields (blueprint names) and the source columns that hold them.
    personal: list[str] = ModelField(default_factory=list)
    personal_columns: list[str] = ModelField(default_factory=list)
    pseudonymise_key_fingerprint: str | None = None
    personal_at_rest: PersonalAtRest | None = None
    #: File-wide statistics the features used (a predict run reuses its training run's).
    feature_statistics: dict[str, Any] | None = None
    #: The fitted preprocessor's choices (columns, imputation, encoding).
    preprocess: dict[str, Any] | None = None
    model: ModelSummary | None = None
    #: The run whose saved model scored this one (predict).
    trained_by: str | None = None
    #: The run this one repeats (``tracer rerun``).
    rerun_of: str | None = None
    gate: GateVerdict | None = None

    @classmethod
    def from_stored(cls, stored: str | dict[str, Any] | None) -> RunRecord:
        """A record from the warehouse's JSON (or a dict of it)."""
        data = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
        return cls.model_validate(data)

    def update(self, **values: Any) -> None:
        """Set several facts at once, each checked as at creation (unknown names are kept)."""
        for name, value in values.items():
            setattr(self, name, value)

    def as_params(self) -> dict[str, Any]:
        """The facts recorded, as plain JSON values (what older releases called ``params``).

        Only facts that were set appear (with the schema version), so a record reads back
        exactly as it was written.
        """
        return {
            "schema_version": self.schema_version,
            **self.model_dump(mode="json", exclude_unset=True),
        }


class RunOutputs(BaseModel):
    """Where a run's files and tables are (absent keys: not written by this run).

    It reads and writes as the plain ``{name: path}`` mapping the warehouse keeps, so runs
    recorded by older releases load unchanged; ``extra`` keys (a custom output) are kept.
    """

    model_config = ConfigDict(extra="allow")

    warehouse: str | None = None
    table: str | None = None
    parquet: str | None = None
    parquet_sha256: str | None = None
    report: str | None = None
    model: str | None = None
    model_sha256: str | None = None
    preprocessor: str | None = None
    preprocessor_json: str | None = None
    predictions: str | None = None
    predictor: str | None = None
    bronze: str | None = None
    quarantine: str | None = None
    staging: str | None = None
    log: str | None = None
    notebook: str | None = None
    notebook_html: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The path of output ``key`` (as a mapping would)."""
        value = self.as_dict().get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def items(self) -> Any:
        """(name, path) of every output written."""
        return self.as_dict().items()

    def keys(self) -> Any:
        """Names of the outputs written."""
        return self.as_dict().keys()

    def as_dict(self) -> dict[str, str]:
        """The outputs written, as the warehouse keeps them."""
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


def _scan(path: str | None) -> Any:
    """A lazy scan of a run's Parquet output (a file, or the Spark engine's folder), or None."""
    location = parquet_location(path) if path else None
    return None if location is None else pl.scan_parquet(location)


class RunResult(BaseModel):
    """What a run did: state, counts, score and its parts, issues, features, timings, outputs.

    ``frame`` is the processed polars DataFrame (None with ``return_frame=False`` or when
    the run did not complete).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    blueprint: str
    state: str
    input_path: str
    dataset: str | None = None
    input_sha256: str | None = None
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_out: int = 0
    quality_score: float | None = None
    score_parts: dict[str, float] = ModelField(default_factory=dict)
    issues: list[Issue] = ModelField(default_factory=list)
    features_created: list[str] = ModelField(default_factory=list)
    stage_seconds: dict[str, float] = ModelField(default_factory=dict)
    record: RunRecord = ModelField(default_factory=RunRecord)
    outputs: RunOutputs = ModelField(default_factory=RunOutputs)
    error: str | None = None
    frame: Any = ModelField(default=None, repr=False, exclude=True)

    def __repr__(self) -> str:
        return f"RunResult({self.summary()}, {len(self.issues)} issues)"

    def __str__(self) -> str:
        return self.__repr__()

    @property
    def quarantine(self) -> Any:
        """The run's quarantined rows (reasons, raw records) as a lazy frame; None when none
        were kept beside its rows (a failed run's are in the warehouse: ``tracer quarantine``).
        """  # noqa: D205
        return _scan(self.outputs.get("quarantine"))

    @property
    def params(self) -> dict[str, Any]:
        """The run's record as plain JSON values (:meth:`RunRecord.as_params`)."""
        return self.record.as_params()

    @property
    def predictions(self) -> Any:
        """The run's predictions as a lazy frame; None when the run made none."""
        return _scan(self.outputs.get("predictions"))

    def _repr_html_(self) -> str:
        return summary_html(self) + html_table(self.issues, list(ISSUE_COLUMNS))

    def summary(self) -> str:
        """One line for people: state, counts, score."""
        score = f"{self.quality_score:.1f}" if self.quality_score is not None else "-"
        return (
            f"{self.run_id} {self.blueprint} {self.state}: {self.rows_in} rows in, "
            f"{self.rows_valid} valid, {self.rows_quarantined} quarantined, {self.rows_out} out, "
            f"score {score}"
        )
