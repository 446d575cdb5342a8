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

from tracer_kit.config import PreprocessConfig
from tracer_kit.errors import BlueprintError
from tracer_kit.heavy import pandera_polars

FieldKind = Literal["id", "string", "category", "date", "float", "int", "email", "url", "phone"]

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
}

#: Reusable format validators (full-match regexes) for the text kinds.
KIND_PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$",
    "url": r"^https?://[A-Za-z0-9.\-]+(:\d+)?(/[^\s]*)?$",
    "phone": r"^\+?[0-9][0-9 ().\-]{5,}[0-9]$",
}

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

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
    """One input column a blueprint knows: its kind, whether it is required, its range and pattern."""

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

    def __post_init__(self) -> None:
        if self.kind not in KIND_DTYPES:
            msg = (
                f"field {self.name!r}: unknown kind {self.kind!r}{_at(user_site())}; use one of "
                f"{', '.join(KIND_DTYPES)}"
            )
            raise BlueprintError(msg)

    @property
    def dtype(self) -> pl.DataType:
        """The polars dtype values of this field are cast to."""
        return KIND_DTYPES[self.kind]

    @property
    def is_numeric(self) -> bool:
        """Whether outlier checks apply."""
        return self.kind in {"float", "int"}

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
        declared = [*self.key, *([self.identifier] if self.identifier else [])]
        for col in (*declared, *([self.label] if self.label else [])):
            if col not in names:
                what = "label" if col == self.label else "key column"
                msg = f"blueprint {self.name!r}: {what} {col!r} is not one of its fields"
                raise BlueprintError(msg)

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
            checks = []
            if f.ge is not None:
                checks.append(pa.Check.ge(f.ge))
            if f.gt is not None:
                checks.append(pa.Check.gt(f.gt))
            if f.full_pattern is not None:
                checks.append(pa.Check.str_matches(f.full_pattern))
            columns[f.name] = pa.Column(
                f.dtype,
                nullable=not f.required,
                unique=f.name == self.identifier,
                required=f.required,
                checks=checks,
                coerce=False,
            )
        return pa.DataFrameSchema(columns, name=self.name, strict=False, coerce=False)
