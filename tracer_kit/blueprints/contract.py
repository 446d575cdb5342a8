"""Blueprints declared in a file: a contract (YAML, JSON or TOML) read into a :class:`Blueprint`.

The file's format is one pydantic model (:class:`ContractSpec`); its JSON Schema is what
``tracer contract schema`` prints, and the field keys that are constraints come from
:data:`~tracer_kit.blueprints.constraints.CONSTRAINTS`. A contract becomes the same
:class:`Blueprint` a Python file would declare: fields, key, rules as SQL boolean
expressions, dataset checks, features as SQL expressions (run by polars' SQL engine, one
after the other, so a feature may use the ones before it), and thresholds.

A bad file is one :class:`~tracer_kit.errors.BlueprintError` naming the file, the line and
the key, with "did you mean" for a misspelt key, raised before any data is read.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic import Field as Spec

from tracer_kit.blueprints._base import (
    KIND_DTYPES,
    NAME_PATTERN,
    Blueprint,
    DatasetRules,
    Feature,
    FeatureContext,
    Field,
    ModelSpec,
    Rule,
    RuleContext,
    SparkPlan,
)
from tracer_kit.blueprints.constraints import CONSTRAINTS
from tracer_kit.config import PreprocessConfig, Thresholds, validation_message
from tracer_kit.errors import BlueprintError
from tracer_kit.lazy import lazy_module

# Read only when a contract is written in YAML (20 ms of every cold command otherwise).
yaml = lazy_module("yaml")

__all__ = [
    "CONTRACT_SUFFIXES",
    "ContractSpec",
    "contract_schema",
    "is_contract_path",
    "load_contract",
    "parse_contract",
]

#: File suffixes read as contracts.
CONTRACT_SUFFIXES = (".yaml", ".yml", ".json", ".toml")

_STRICT = ConfigDict(extra="forbid")


def _field_spec_model() -> type[BaseModel]:
    """The model of one field's declaration; its constraint keys come from ``CONSTRAINTS``."""
    annotations = {
        "number": float | None,
        "integer": int | None,
        "string": str | None,
        "array": list[str | int | float] | None,
    }
    constraint_fields: dict[str, Any] = {
        c.key: (
            annotations[c.schema["type"]],
            Spec(None, description=c.description, json_schema_extra={"reason": c.reason}),
        )
        for c in CONSTRAINTS
    }
    return create_model(
        "FieldSpec",
        __config__=_STRICT,
        __doc__="One field of the contract: its kind, whether it is required, its constraints.",
        kind=(Literal[tuple(KIND_DTYPES)], Spec(description="what the values are")),
        required=(bool, Spec(False, description="a row without a value is quarantined")),
        unique=(bool, Spec(False, description="no value may repeat (the identifier)")),
        ignore_case=(
            bool,
            Spec(False, description="allowed values match without case or surrounding spaces"),
        ),
        format=(
            str | None,
            Spec(
                None,
                description="dates: day_first, month_first, iso or a strftime format (%d/%m/%Y)",
            ),
        ),
        pii=(bool, Spec(False, description="personal data: its values are never shown")),
        transforms=(list[str], Spec(default_factory=list, description="text steps before checks")),
        default=(
            str | int | float | bool | None,
            Spec(None, description="the value a missing one is read as"),
        ),
        description=(str, Spec("", description="what the field holds")),
        column=(
            str | None,
            Spec(None, description="the source's column name, when it is not the field's"),
        ),
        references=(
            str | None,
            Spec(
                None,
                description="DATASET.FIELD: every value must be in that dataset's latest run",
                json_schema_extra={"reason": "not_in_reference"},
            ),
        ),
        **constraint_fields,
    )


FieldSpec = _field_spec_model()


class RuleSpec(BaseModel):
    """A row rule: a SQL boolean expression over the fields that every row must satisfy."""

    model_config = _STRICT
    name: str = Spec(pattern=NAME_PATTERN.pattern, description="the quarantine reason")
    check: str = Spec(min_length=1, description="SQL boolean expression, true on a good row")
    severity: Literal["low", "medium", "high"] = "medium"
    description: str = ""


class RowsSpec(BaseModel):
    """Bounds on the number of rows read."""

    model_config = _STRICT
    min: int | None = Spec(None, ge=0)
    max: int | None = Spec(None, ge=0)


class FreshnessSpec(BaseModel):
    """The latest value of a date field must be at most ``max_age_days`` before the reference date."""

    model_config = _STRICT
    field: str
    max_age_days: int = Spec(ge=0)


class DatasetSpec(BaseModel):
    """Checks on the whole dataset (issues, never quarantine)."""

    model_config = _STRICT
    rows: RowsSpec | None = None
    freshness: FreshnessSpec | None = None


class ModelFileSpec(BaseModel):
    """The blueprint's model: a task and the columns it uses."""

    model_config = _STRICT
    task: Literal["classification", "regression", "forecast"]
    label: str | None = Spec(None, description="classification: the column it predicts")
    target: str | None = Spec(None, description="regression: the number it predicts")
    date: str | None = Spec(None, description="forecast: the date of each row")
    value: str | None = Spec(None, description="forecast: the number summed per day and forecast")
    horizon: int | None = Spec(None, ge=1, le=3650, description="forecast: days ahead")
    id: str | None = Spec(None, description="the column a prediction is for")
    inputs: list[str] | None = Spec(
        None, description="the model's inputs (default: every number, flag and category)"
    )


class SparkSpec(BaseModel):
    """How the Spark engine runs the features (default: from the features' windows)."""

    model_config = _STRICT
    mode: Literal["rows", "groups"]
    by: list[str] = Spec(default_factory=list)


class ContractSpec(BaseModel):
    """A blueprint declared in a file (``blueprints/<name>.yaml``, ``.yml``, ``.json``, ``.toml``)."""

    model_config = ConfigDict(extra="forbid", title="tracer-kit contract")
    name: str | None = Spec(
        None, pattern=NAME_PATTERN.pattern, description="defaults to the file's stem"
    )
    description: str = ""
    fields: dict[str, FieldSpec] = Spec(min_length=1)  # type: ignore[valid-type]
    key: list[str] = Spec(default_factory=list, description="fields that order a processed row")
    identifier: str | None = Spec(None, description="the field whose values are unique")
    reference: str | None = Spec(
        None, description="the date field whose latest value is the reference date"
    )
    rules: list[RuleSpec] = Spec(default_factory=list)
    dataset: DatasetSpec | None = None
    features: dict[str, str] = Spec(
        default_factory=dict, description="name: SQL expression over fields and earlier features"
    )
    model: ModelFileSpec | None = None
    thresholds: dict[str, float] = Spec(default_factory=dict)
    preprocess: PreprocessConfig | None = None
    spark: SparkSpec | None = None


def contract_schema() -> dict[str, Any]:
    """The JSON Schema of a contract file (for editors: completion and checks)."""
    schema = ContractSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def is_contract_path(name: str | Path) -> bool:
    """Whether ``name`` names a contract file (by its suffix)."""
    return str(name).lower().endswith(CONTRACT_SUFFIXES)


# --------------------------------------------------------------------------- reading


class _Located:
    """The text of a contract and where each key path is written in it (line numbers)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text
        self.node = None
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            try:
                self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                self.node = None

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The 1-based line of the deepest key of ``loc`` found in the file."""
        node, line = self.node, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if match is None:
                    break
                line, node = match[0].start_mark.line + 1, match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        if line is None and self.node is None:
            return self._search(loc)
        return line

    def _search(self, loc: Sequence[str | int]) -> int | None:
        names = [str(p) for p in loc if isinstance(p, str)]
        for name in reversed(names):
            pattern = re.compile(rf"(^|[\s{{,\[.\"']){re.escape(name)}[\"']?\s*[=:\].]")
            for number, text in enumerate(self.text.splitlines(), start=1):
                if pattern.search(text):
                    return number
        return None

    def at(self, loc: Sequence[str | int]) -> str:
        """``file:line`` (or just the file) for a key path."""
        line = self.line(loc)
        return f"{self.path}:{line}" if line else str(self.path)


def _parse_text(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"{path}:{line}" if line else str(path)
        raise BlueprintError(f"{where}: not valid {suffix[1:].upper()}: {first}") from None


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys allowed where ``loc`` points (for "did you mean")."""
    models: dict[str, type[BaseModel]] = {
        "fields": FieldSpec,
        "rules": RuleSpec,
        "dataset": DatasetSpec,
        "spark": SparkSpec,
        "preprocess": PreprocessConfig,
        "model": ModelFileSpec,
    }
    parent = [p for p in loc[:-1] if isinstance(p, str)]
    model: type[BaseModel] = ContractSpec
    if parent and parent[0] in models:
        model = models[parent[0]]
        if parent[0] == "dataset" and len(parent) > 1:
            model = {"rows": RowsSpec, "freshness": FreshnessSpec}.get(parent[1], DatasetSpec)
    return list(model.model_fields)


def _spec_error(exc: ValidationError, located: _Located) -> BlueprintError:
    err = exc.errors()[0]
    loc = err["loc"]
    key = ".".join(str(p) for p in loc) or "contract"
    what = err["msg"]
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
        what = f"unknown key {str(loc[-1])!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        key = ".".join(str(p) for p in loc[:-1]) or "contract"
    elif err["type"] == "literal_error":
        close = difflib.get_close_matches(str(err.get("input")), _literal_options(err), n=1)
        what = f"{what}, got {err.get('input')!r}" + (
            f"; did you mean {close[0]!r}?" if close else ""
        )
    return BlueprintError(f"{located.at(loc)}: {key}: {what}", path=located.path)


def _literal_options(err: Any) -> list[str]:
    expected = (err.get("ctx") or {}).get("expected", "")
    return re.findall(r"'([^']+)'", expected)


def parse_contract(text: str, path: str | Path = "<contract>") -> Blueprint:
    """The blueprint a contract's text declares (``path`` names it in messages and picks the format).

    Raises
    ------
    BlueprintError
        One line naming the file, the line and the key.
    """
    path = Path(path)
    located = _Located(path, text)
    data = _parse_text(path, text)
    if not isinstance(data, dict):
        raise BlueprintError(f"{path}: a contract is a mapping of keys (name, fields, ...)")
    try:
        spec = ContractSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, located) from None
    return _blueprint(spec, located)


def load_contract(path: str | Path) -> Blueprint:
    """The blueprint a contract file declares (see :func:`parse_contract`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BlueprintError(f"cannot read blueprint file {path}: {exc}", path=path) from None
    return parse_contract(text, path)


# --------------------------------------------------------------------------- building


def _fields(spec: ContractSpec, located: _Located) -> tuple[Field, ...]:
    out = []
    for name, f in spec.fields.items():
        if not NAME_PATTERN.match(name):
            msg = (
                f"{located.at(['fields', name])}: field {name!r}: names are lower-case letters, "
                "digits and underscores (map the file's own column names with --map)"
            )
            raise BlueprintError(msg, path=located.path)
        values = f.model_dump(exclude={"unique"})
        values["transforms"] = tuple(values["transforms"])
        if values.get("default") is not None:
            values["default"] = str(values["default"])
        try:
            out.append(Field(name=name, **values))
        except BlueprintError as exc:
            said = re.sub(r" \([^()]*:\d+\)", "", str(exc))  # (a caller's site, not the file's)
            raise BlueprintError(
                f"{located.at(['fields', name])}: {said}", path=located.path
            ) from None
    return tuple(out)


def _identifier(spec: ContractSpec, located: _Located) -> str | None:
    unique = [name for name, f in spec.fields.items() if f.unique]
    if spec.identifier is not None:
        unique = [u for u in unique if u != spec.identifier]
        if unique:
            msg = f"{located.at(['fields', unique[0]])}: only the identifier ({spec.identifier}) can be unique"
            raise BlueprintError(msg, path=located.path)
        return spec.identifier
    if len(unique) > 1:
        msg = (
            f"{located.at(['fields', unique[1]])}: one unique field (the identifier) per "
            f"contract; {', '.join(unique)} are all marked unique"
        )
        raise BlueprintError(msg, path=located.path)
    return unique[0] if unique else None


def _sql(text: str, where: str, known: Sequence[str], located: _Located) -> pl.Expr:
    """The polars expression of a SQL expression, every column it reads a known one."""
    try:
        expr = pl.sql_expr(text)
        names = expr.meta.root_names()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BlueprintError(
            f"{where}: {text!r} does not parse: {first}", path=located.path
        ) from None
    unknown = [n for n in names if n not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"{where}: {text!r} reads {unknown[0]!r}, which is not a field{hint}"
        raise BlueprintError(msg, path=located.path)
    return expr


def _rules(spec: ContractSpec, fields: Sequence[str], located: _Located) -> tuple[Rule, ...]:
    out = []
    for i, r in enumerate(spec.rules):
        where = f"{located.at(['rules', i, 'check'])}: rule {r.name!r}"
        expr = _sql(r.check, where, fields, located)
        columns = tuple(dict.fromkeys(expr.meta.root_names())) or (fields[0],)

        def fails(ctx: RuleContext, text: str = r.check) -> pl.Expr:
            return ~pl.sql_expr(text)

        out.append(
            Rule(
                reason=r.name,
                columns=columns,
                description=r.description or f"not ({r.check})",
                fails=fails,
                severity=r.severity,
            )
        )
    return tuple(out)


class SqlFeatures:
    """``build_features`` of a contract: each feature a SQL expression, added in order."""

    def __init__(self, features: Sequence[tuple[str, str]]) -> None:
        self.features = tuple(features)

    def __call__(self, valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
        """Add every feature to ``valid`` (polars' SQL engine; windows included)."""
        out = valid
        for name, text in self.features:
            out = out.sql(f'SELECT *, {text} AS "{name}" FROM self')
        return out


_WINDOW = re.compile(r"\bover\s*\(", re.IGNORECASE)
_PARTITION = re.compile(r"\bpartition\s+by\s+([a-z_][a-z0-9_]*)\s*(,|\border\b|\))", re.IGNORECASE)


def _spark_plan(spec: ContractSpec) -> SparkPlan | None:
    """Row by row without windows; per group when every window partitions by one same field."""
    if spec.spark is not None:
        return SparkPlan(spec.spark.mode, by=tuple(spec.spark.by))
    texts = list(spec.features.values())
    windows = [t for t in texts if _WINDOW.search(t)]
    if not windows:
        return SparkPlan("rows")
    keys = set()
    for t in windows:
        found = _PARTITION.findall(t)
        if len(found) != len(_WINDOW.findall(t)) or any(sep == "," for _, sep in found):
            return None
        keys.update(k.lower() for k, _ in found)
    return SparkPlan("groups", by=(keys.pop(),)) if len(keys) == 1 else None


def _features(
    spec: ContractSpec, fields: tuple[Field, ...], located: _Located
) -> tuple[tuple[Feature, ...], SqlFeatures]:
    """The declared features with the dtypes their SQL gives, checked one by one on no rows."""
    schema: dict[str, pl.DataType] = {"source_row": pl.Int64(), "source_line": pl.Int64()}
    schema.update({f.name: f.dtype for f in fields})
    frame = pl.LazyFrame(schema=schema)
    nulls = pl.LazyFrame([pl.Series(n, [None], dtype=t) for n, t in schema.items()])
    declared: list[Feature] = []
    for name, text in spec.features.items():
        where = f"{located.at(['features', name])}: feature {name!r}"
        if not NAME_PATTERN.match(name) or name in schema:
            what = "is already a field" if name in schema else "should be a lower-case name"
            raise BlueprintError(f"{where} {what}", path=located.path)
        step = SqlFeatures([(name, text)])
        try:
            frame = step(frame, _NO_CONTEXT)
            dtype = frame.collect_schema()[name]
            nulls = step(nulls, _NO_CONTEXT).collect().lazy()
        except Exception as exc:
            raise BlueprintError(f"{where}: {_first_line(exc)}", path=located.path) from None
        declared.append(Feature(name, dtype, text))
    return tuple(declared), SqlFeatures(list(spec.features.items()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    return re.sub(r"\s+", " ", line)


_NO_CONTEXT = FeatureContext(run_date=dt.date(2000, 1, 1), reference_date=None)


def _model(spec: ContractSpec, located: _Located) -> ModelSpec | None:
    if spec.model is None:
        return None
    values = spec.model.model_dump()
    values["inputs"] = tuple(values["inputs"]) if values["inputs"] is not None else None
    try:
        return ModelSpec(**values)
    except BlueprintError as exc:
        raise BlueprintError(f"{located.at(['model'])}: model: {exc}", path=located.path) from None


def _dataset(spec: ContractSpec) -> DatasetRules | None:
    if spec.dataset is None:
        return None
    rows, fresh = spec.dataset.rows, spec.dataset.freshness
    return DatasetRules(
        min_rows=rows.min if rows else None,
        max_rows=rows.max if rows else None,
        freshness=fresh.field if fresh else None,
        max_age_days=fresh.max_age_days if fresh else None,
    )


def _check_names(spec: ContractSpec, names: Sequence[str], located: _Located) -> None:
    """Every field a key, identifier, reference or dataset check names is declared."""
    named: list[tuple[list[str | int], str]] = [(["key", i], k) for i, k in enumerate(spec.key)]
    for key in ("identifier", "reference"):
        if getattr(spec, key) is not None:
            named.append(([key], getattr(spec, key)))
    if spec.dataset is not None and spec.dataset.freshness is not None:
        named.append((["dataset", "freshness", "field"], spec.dataset.freshness.field))
    for loc, name in named:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"{located.at(loc)}: {'.'.join(map(str, loc))}: {name!r} is not a field{hint}"
            raise BlueprintError(msg, path=located.path)


def _check_model_names(spec: ContractSpec, known: Sequence[str], located: _Located) -> None:
    """Every column the model names is a field or a feature."""
    if spec.model is None:
        return
    named = [(k, getattr(spec.model, k)) for k in ("label", "target", "date", "value", "id")]
    named += [("inputs", c) for c in spec.model.inputs or ()]
    for key, name in named:
        if name is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = (
                f"{located.at(['model', key])}: model.{key}: {name!r} is no field or feature{hint}"
            )
            raise BlueprintError(msg, path=located.path)


def _blueprint(spec: ContractSpec, located: _Located) -> Blueprint:
    name = spec.name or located.path.stem
    if not NAME_PATTERN.match(name):
        msg = (
            f"{located.path}: the blueprint's name {name!r} (from the file name) should be "
            "lower-case letters, digits and underscores; set name: in the file"
        )
        raise BlueprintError(msg, path=located.path)
    try:
        Thresholds.model_validate(spec.thresholds)
    except ValidationError as exc:
        msg = f"{located.at(['thresholds'])}: {validation_message(exc, root='thresholds')}"
        raise BlueprintError(msg, path=located.path) from None
    fields = _fields(spec, located)
    names = [f.name for f in fields]
    _check_names(spec, names, located)
    features, build = _features(spec, fields, located)
    _check_model_names(spec, [*names, *(f.name for f in features), "source_row"], located)
    rules = _rules(spec, names, located)
    identifier = _identifier(spec, located)
    dates = [f.name for f in fields if f.kind == "date"]
    reference = spec.reference or (
        spec.dataset.freshness.field if spec.dataset and spec.dataset.freshness else None
    )
    try:
        return Blueprint(
            name=name,
            description=spec.description,
            fields=fields,
            key=tuple(spec.key),
            identifier=identifier,
            features=features,
            build_features=build,
            rules=rules,
            reference_column=reference if reference in dates else None,
            preprocess=spec.preprocess or PreprocessConfig(),
            spark=_spark_plan(spec),
            dataset=_dataset(spec),
            model=_model(spec, located),
            thresholds=dict(spec.thresholds),
            origin=str(located.path),
        )
    except BlueprintError as exc:
        raise BlueprintError(f"{located.path}: {exc}", path=located.path) from None
