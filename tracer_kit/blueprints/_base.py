"""What a blueprint is: one declaration that the CLI, notebooks, widgets and report all read."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from tracer_kit.blueprints.constraints import CONSTRAINTS, KIND_PATTERNS, NUMERIC_KINDS, TEXT_KINDS
from tracer_kit.config import PreprocessConfig
from tracer_kit.errors import BlueprintError
from tracer_kit.heavy import pandera_polars

FieldKind = Literal[
    "id", "string", "category", "date", "float", "int", "email", "url", "phone", "bool", "datetime"
]

#: polars dtype a field of each kind is cast to.
KIND_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(),
    "string": pl.String(),
    "category": pl.String(),
    "email": pl.String(),
    "url": pl.String(),
    "phone": pl.String(),
    "date": pl.Date(),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "bool": pl.Boolean(),
    "datetime": pl.Datetime("us"),
}

#: A date field's ``format``: one of these conventions, or a strftime format (``%d.%m.%Y``).
DATE_CONVENTIONS = {"day_first": "dmy", "month_first": "mdy", "iso": "iso"}

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
#: ``dataset.field`` (a dataset name may hold dots; the field is after the last one).
REFERENCE = re.compile(r"^[^\s]+\.[a-z][a-z0-9_]*$")

_PACKAGE = str(Path(__file__).resolve().parent.parent)


def user_site() -> str:
    """``file:line`` of the innermost caller outside tracer-kit (a user's blueprint file), or ``""``."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith((_PACKAGE, "<")):
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _at(site: str) -> str:
    return f" ({site})" if site else ""


@dataclass(frozen=True)
class Field:
    """One input column a blueprint knows: its kind, whether it is required, and its constraints.

    The constraint keys (``ge``, ``gt``, ``le``, ``lt``, ``pattern``, ``min_length``,
    ``max_length``, ``allowed``) are declared in :data:`~tracer_kit.blueprints.constraints.CONSTRAINTS`,
    which derives their checks, reasons and words.
    """

    name: str
    kind: FieldKind
    required: bool = False
    ge: float | None = None
    gt: float | None = None
    pattern: str | None = None
    description: str = ""
    #: Transform steps applied to the text before the checks (names in ``TRANSFORMS``).
    transforms: tuple[str, ...] = ()
    #: Personal data: its values are never shown (report, notebook, workbench, issues).
    pii: bool = False
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    #: The values allowed (text kinds); with ``ignore_case`` matched without case or
    #: surrounding spaces, and stored as spelled here.
    allowed: tuple[str, ...] | None = None
    ignore_case: bool = False
    #: Dates: ``day_first``, ``month_first``, ``iso`` or a strftime format; None: decided from the data.
    format: str | None = None
    #: The text a missing value is read as (before any check).
    default: str | None = None
    #: The source's own name for the column, when it is not the field's name written
    #: another way (``Price (€)`` for ``price``).
    column: str | None = None
    #: ``dataset.field``: every value must be one of that field's values in the latest
    #: completed run of that dataset (reason ``not_in_reference``).
    references: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KIND_DTYPES:
            msg = (
                f"field {self.name!r}: unknown kind {self.kind!r}{_at(user_site())}; use one of "
                f"{', '.join(KIND_DTYPES)}"
            )
            raise BlueprintError(msg)
        for c in CONSTRAINTS:
            if getattr(self, c.key) is not None and self.kind not in c.kinds:
                msg = (
                    f"field {self.name!r}: {c.key} applies to {', '.join(sorted(c.kinds))} "
                    f"fields, not to a {self.kind}{_at(user_site())}"
                )
                raise BlueprintError(msg)
        if self.format is not None and self.kind not in ("date", "datetime"):
            msg = f"field {self.name!r}: format applies to date and datetime fields only"
            raise BlueprintError(msg)
        if (
            self.format is not None
            and self.format not in DATE_CONVENTIONS
            and "%" not in self.format
        ):
            msg = (
                f"field {self.name!r}: format {self.format!r} is neither a convention "
                f"({', '.join(DATE_CONVENTIONS)}) nor a strftime format such as %d/%m/%Y"
            )
            raise BlueprintError(msg)
        if self.references is not None and not REFERENCE.match(self.references):
            msg = (
                f"field {self.name!r}: references {self.references!r} should be "
                "DATASET.FIELD (the dataset's latest completed run holds the values)"
            )
            raise BlueprintError(msg)
        if self.allowed is not None and not isinstance(self.allowed, tuple):
            object.__setattr__(self, "allowed", tuple(str(v) for v in self.allowed))

    @property
    def dtype(self) -> pl.DataType:
        """The polars dtype values of this field are cast to."""
        return KIND_DTYPES[self.kind]

    @property
    def is_numeric(self) -> bool:
        """Whether outlier checks apply."""
        return self.kind in NUMERIC_KINDS

    @property
    def is_text(self) -> bool:
        """Whether the values are text (patterns, lengths, pseudonymisation apply)."""
        return self.kind in TEXT_KINDS

    @property
    def full_pattern(self) -> str | None:
        """The regex a non-null value must match: the field's own, else its kind's."""
        return self.pattern or KIND_PATTERNS.get(self.kind)


@dataclass(frozen=True)
class RuleContext:
    """Dates a cross-field rule may compare against."""

    run_date: dt.date
    reference_date: dt.date | None
    plan_levels: tuple[str, ...] | None = None  # ordered plan names (lowest first), from the config


@dataclass(frozen=True)
class Rule:
    """A cross-field, row-level rule; ``fails`` returns a boolean expression that is true on a bad row.

    ``reason`` is the quarantine reason recorded for the failing rows (e.g. ``future_date``).
    """

    reason: str
    columns: tuple[str, ...]
    description: str
    fails: Callable[[RuleContext], pl.Expr]
    #: How bad a failing row is (``low``, ``medium``, ``high``): the severity of the rule's issue.
    severity: Literal["low", "medium", "high"] = "low"


@dataclass(frozen=True)
class ModelSpec:
    """What the model stage does for a blueprint: a task of the model registry, and its columns.

    The tasks (``tracer_kit.model.MODEL_TASKS``): ``classification`` (``label``: who is
    positive; a calibrated classifier, held-out metrics beside the base rate, the leakage
    guard), ``regression`` (``target``: ridge and gradient boosting, MAE/RMSE/R² beside the
    mean), ``forecast`` (``date`` and ``value``: the next ``horizon`` days, chosen by
    backtest), and the built-ins' own ``churn`` (a classification in churn's words) and
    ``elasticity`` (a demand curve per ``id``). ``id`` names the column a prediction is for
    (default: the blueprint's identifier, else ``source_row``); ``inputs`` the model's inputs
    (default: every number, flag and category the rows hold, but the label or target,
    identifiers, dates and personal fields).
    """

    task: str
    label: str | None = None
    target: str | None = None
    date: str | None = None
    value: str | None = None
    id: str | None = None
    inputs: tuple[str, ...] | None = None
    horizon: int | None = None

    #: The columns each generic task needs.
    NEEDS = {"classification": ("label",), "regression": ("target",), "forecast": ("date", "value")}

    def __post_init__(self) -> None:
        for key in self.NEEDS.get(self.task, ()):
            if getattr(self, key) is None:
                msg = f"a {self.task} model needs {key}= (the column it {_NEEDS_WORDS[key]})"
                raise BlueprintError(msg)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the spec names."""
        named = (self.label, self.target, self.date, self.value, self.id, *(self.inputs or ()))
        return tuple(c for c in named if c is not None)


_NEEDS_WORDS = {
    "label": "predicts",
    "target": "predicts",
    "date": "orders the series by",
    "value": "forecasts",
}


@dataclass(frozen=True)
class DatasetRules:
    """Checks on the dataset as a whole: they raise issues and never quarantine a row.

    ``min_rows`` / ``max_rows`` bound the rows read; ``freshness`` names a date field whose
    latest value must be at most ``max_age_days`` before the reference date (else the run
    date).
    """

    min_rows: int | None = None
    max_rows: int | None = None
    freshness: str | None = None
    max_age_days: int | None = None

    def __post_init__(self) -> None:
        if (self.freshness is None) != (self.max_age_days is None):
            msg = "a freshness check needs both the date field and max_age_days"
            raise BlueprintError(msg)


@dataclass(frozen=True)
class Feature:
    """A created column: its name, dtype and exact formula (shown in docs, CLI and report)."""

    name: str
    dtype: pl.DataType
    formula: str


@dataclass(frozen=True)
class FeatureContext:
    """What feature functions may know beyond the rows: the run's dates and file-wide statistics.

    ``statistics`` holds the whole-column values the features use (JSON-able, from the
    blueprint's ``feature_statistics``): computed on the run's own valid rows, or, when a
    saved model scores a new file, the training run's, so a row gets the same features in
    either file.
    """

    run_date: dt.date
    reference_date: dt.date | None
    plan_levels: tuple[str, ...] | None = None  # ordered plan names (lowest first), from the config
    statistics: Mapping[str, Any] | None = None
    tenure_unit: str = "months"  # what a snapshot's ``tenure`` counts (days, weeks or months)


FeatureFn = Callable[[pl.LazyFrame, FeatureContext], pl.LazyFrame]
StatisticsFn = Callable[[pl.LazyFrame, FeatureContext], dict[str, Any]]


@dataclass(frozen=True)
class SparkPlan:
    """How the Spark engine runs a blueprint's own ``build_features`` (no second copy of it).

    ``build_features`` stays plain polars; the plan says which rows it needs together:

    ``"rows"``
        Row by row once ``feature_statistics`` are known: each Arrow batch on the executors.
    ``"groups"``
        Exact within groups of ``by`` (windows per product): Spark brings each group's rows
        to one executor (a hash shuffle by ``by``, never a single partition), which runs
        ``build_features`` on them.
    ``"reduce"``
        ``build_features`` starts by aggregating to one row per ``by`` (e.g. per date) with
        ``reduce``: the executors reduce each batch, Spark groups the partial rows by
        ``by`` and reduces again, and ``build_features`` runs on the driver over that small
        result. ``reduce`` must give the same rows when applied to its own output (sums,
        minimums, counts kept as sums), so the two-level reduction is exact.

    A blueprint without a plan runs on the polars engine only.
    """

    mode: Literal["rows", "groups", "reduce"]
    by: tuple[str, ...] = ()
    reduce: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None

    def __post_init__(self) -> None:
        if self.mode in ("groups", "reduce") and not self.by:
            msg = f"SparkPlan({self.mode!r}) needs the columns to group by (by=...)"
            raise BlueprintError(msg)
        if (self.mode == "reduce") != (self.reduce is not None):
            msg = "SparkPlan takes reduce= with mode 'reduce' only, and then needs it"
            raise BlueprintError(msg)


@dataclass(frozen=True)
class Blueprint:
    """One analysis recipe: fields, rules, features, preprocessing defaults and report hints.

    Parameters
    ----------
    name
        Lower-case identifier (``^[a-z][a-z0-9_]*$``); also the prefix of its warehouse tables.
    description
        One line for listings.
    fields
        Input columns, required and optional.
    key
        Columns that identify and order a processed row (``source_row`` breaks ties).
    identifier
        The column whose values must be unique, or ``None``.
    features
        The created columns, in output order, with their formulas.
    build_features
        ``(valid_rows, context) -> LazyFrame`` adding the feature columns; pure polars.
    rules
        Cross-field row rules; a failing row is quarantined with the rule's reason.
    reference_column
        A date column whose latest value (not after the run date) is the default reference date.
    aggregates
        True when ``build_features`` changes the number of rows (e.g. one row per date).
    preprocess
        Default preprocessing choices.
    target
        Target column for target encoding, or ``None``.
    label
        The field a model predicts (customer_churn: ``churned``), or ``None``: never a
        feature, left out of every model-ready matrix and preprocessor.
    report_hints
        Free-form hints for the report (e.g. which feature to chart first).
    null_cause
        ``(feature, valid_rows, context) -> str | None``: why a feature came out null for
        most rows (e.g. values outside a known hierarchy), for the issue that says so.
    feature_statistics
        ``(valid_rows, context) -> dict``: the whole-column statistics ``build_features``
        reads from ``context.statistics`` (JSON-able; stored with the run), or ``None``
        when every feature is row by row.
    spark
        How the Spark engine runs ``build_features`` (:class:`SparkPlan`), or ``None``: the
        blueprint then runs on the polars engine only.
    form_for
        ``(target_columns) -> Blueprint``: the form of this blueprint a source's columns call
        for (customer_churn: its snapshot form when the file has ``tenure`` and no
        ``account_created_date``), or ``None`` when it has one form.
    dataset
        Checks on the whole dataset (:class:`DatasetRules`: row count, freshness), or ``None``.
    model
        What the model stage does (:class:`ModelSpec`), or ``None``: no model. A
        classification's label and a regression's target become ``label``.
    thresholds
        Quality thresholds this blueprint sets, over the config's (``{"validity": 0.99}``).
    origin
        The contract file a blueprint was read from (``""`` for Python blueprints).
    """

    name: str
    description: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    features: tuple[Feature, ...]
    build_features: FeatureFn
    identifier: str | None = None
    rules: tuple[Rule, ...] = ()
    reference_column: str | None = None
    aggregates: bool = False
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    target: str | None = None
    label: str | None = None
    report_hints: dict[str, Any] = field(default_factory=dict)
    sample: str | None = None
    null_cause: Callable[[str, pl.LazyFrame, FeatureContext], str | None] | None = None
    feature_statistics: StatisticsFn | None = None
    spark: SparkPlan | None = None
    form_for: Callable[[frozenset[str]], Blueprint] | None = None
    dataset: DatasetRules | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    model: ModelSpec | None = None
    #: Where the blueprint was declared (a contract file), for messages; ``""`` for Python ones.
    origin: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            msg = (
                f"blueprint name={self.name!r} should match {NAME_PATTERN.pattern} "
                "(lower-case letters, digits and underscores, starting with a letter)"
            )
            raise BlueprintError(msg)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            msg = f"blueprint {self.name!r} declares a field twice"
            raise BlueprintError(msg)
        if self.dataset is not None and self.dataset.freshness is not None:
            if self.dataset.freshness not in names:
                msg = f"blueprint {self.name!r}: freshness field {self.dataset.freshness!r} is not one of its fields"
                raise BlueprintError(msg)
        declared = [*self.key, *([self.identifier] if self.identifier else [])]
        for col in (*declared, *([self.label] if self.label else [])):
            if col not in names:
                what = "label" if col == self.label else "key column"
                msg = f"blueprint {self.name!r}: {what} {col!r} is not one of its fields"
                raise BlueprintError(msg)
        if self.model is not None:
            self._check_model(names)

    def _check_model(self, names: list[str]) -> None:
        assert self.model is not None
        known = {*names, *(f.name for f in self.features), "source_row"}
        unknown = [c for c in self.model.columns if c not in known]
        if unknown:
            msg = f"blueprint {self.name!r}: its model names {unknown[0]!r}, which is no field or feature"
            raise BlueprintError(msg)
        predicted = self.model.label or self.model.target
        if predicted is not None and self.label is None:
            object.__setattr__(self, "label", predicted)  # never a feature of any matrix

    def __repr__(self) -> str:
        return (
            f"Blueprint({self.name!r}: {len(self.required)} required, {len(self.optional)} "
            f"optional fields, {len(self.features)} features)"
        )

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td><code>{escape(f.name)}</code></td><td>{escape(f.kind)}</td>"
            f"<td>{'required' if f.required else 'optional'}</td></tr>"
            for f in self.fields
        )
        feats = "".join(
            f"<tr><td><code>{escape(f.name)}</code></td><td>{escape(f.formula)}</td></tr>"
            for f in self.features
        )
        return (
            f"<p><b>{escape(self.name)}</b>: {escape(self.description)}</p>"
            f"<table><tr><th>field</th><th>kind</th><th></th></tr>{rows}</table>"
            f"<table><tr><th>feature</th><th>formula</th></tr>{feats}</table>"
        )

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required fields (the critical fields)."""
        return tuple(f.name for f in self.fields if f.required)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of every field, in order."""
        return tuple(f.name for f in self.fields)

    @property
    def personal(self) -> frozenset[str]:
        """Fields holding personal data (``pii``, or pseudonymised): their values are never shown."""
        return frozenset(f.name for f in self.fields if f.pii or "pseudonymise" in f.transforms)

    @property
    def optional(self) -> tuple[str, ...]:
        """Names of the optional fields."""
        return tuple(f.name for f in self.fields if not f.required)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the created columns, in output order."""
        return tuple(f.name for f in self.features)

    @property
    def chart_column(self) -> str | None:
        """The column the report charts: the ``chart`` hint, else the last numeric feature, else
        the last numeric field (``None`` when there is none).
        """  # noqa: D205
        hinted = self.report_hints.get("chart")
        if hinted:
            return hinted
        numeric = [f.name for f in self.features if f.dtype.is_numeric()]
        numeric = numeric or [f.name for f in self.fields if f.is_numeric]
        return numeric[-1] if numeric else None

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        msg = f"blueprint {self.name!r} has no field {name!r}"
        raise BlueprintError(msg)

    def processed_schema(self) -> dict[str, pl.DataType]:
        """Columns of ``<name>_processed`` (without ``run_id``): source_row, fields, features, extras."""
        schema: dict[str, pl.DataType] = {"source_row": pl.Int64()}
        schema.update({f.name: f.dtype for f in self.fields})
        schema.update({f.name: f.dtype for f in self.features})
        schema["extras"] = pl.String()
        return schema

    def pandera_schema(self):
        """The pandera (polars backend) schema valid rows satisfy: dtypes, nullability, ranges, patterns.

        It is checked with ``coerce=False`` on the typed valid rows, so a breach is a bug in
        the casting or quarantine, never a user error.
        """
        pa = pandera_polars()

        columns = {}
        for f in self.fields:
            checks = [
                c.pandera(pa, c.value(f), f)
                for c in CONSTRAINTS
                if c.value(f) is not None and f.kind in c.kinds
            ]
            columns[f.name] = pa.Column(
                f.dtype,
                nullable=not f.required,
                unique=f.name == self.identifier,
                required=f.required,
                checks=checks,
                coerce=False,
            )
        return pa.DataFrameSchema(columns, name=self.name, strict=False, coerce=False)
