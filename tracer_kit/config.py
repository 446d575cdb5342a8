"""Run configuration: one pydantic model read from Python, JSON/YAML files, CLI flags and notebooks."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tracer_kit.connections import add_secret_params
from tracer_kit.errors import ConfigError, option
from tracer_kit.options import ReadOptions

__all__ = [
    "GROUPS",
    "PLUGIN_THRESHOLDS",
    "Config",
    "FeaturesConfig",
    "OutputConfig",
    "QualityConfig",
    "ModelConfig",
    "PreprocessConfig",
    "Thresholds",
    "config_to_jsonable",
    "load_config",
    "register_threshold",
    "validation_message",
]


#: Thresholds plugin checks declare (``Check.threshold``): name -> default, in [0, 1].
PLUGIN_THRESHOLDS: dict[str, float] = {}


def register_threshold(name: str, default: float) -> None:
    """Let ``Thresholds`` (configs, contracts) set ``name``; ``default`` when they do not."""
    if name in Thresholds.model_fields:
        raise ValueError(f"threshold {name!r} is a built-in one")
    if not 0 <= default <= 1:
        raise ValueError(f"threshold {name!r}: the default {default} is not in [0, 1]")
    PLUGIN_THRESHOLDS[name] = default


class Thresholds(BaseModel):
    """Quality thresholds; the defaults are in ``docs/contracts.md`` (Quality).

    Plugin checks add their own (:func:`register_threshold`); any other key is an error.
    """

    model_config = ConfigDict(extra="allow")

    completeness_critical: float = Field(0.5, ge=0, le=1)
    completeness: float = Field(0.95, ge=0, le=1)
    uniqueness: float = Field(1.0, ge=0, le=1)
    validity: float = Field(0.98, ge=0, le=1)
    outlier_share: float = Field(0.05, ge=0, le=1)
    max_high: int = Field(5, ge=0)
    min_score: float = Field(80, ge=0, le=100)

    @model_validator(mode="after")
    def _known_plugin_thresholds(self) -> Thresholds:
        for name, value in (self.model_extra or {}).items():
            if name not in PLUGIN_THRESHOLDS:
                known = [*type(self).model_fields, *PLUGIN_THRESHOLDS]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown threshold {name!r}{hint}")
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"threshold {name!r} should be a number in [0, 1]")
        return self

    def value(self, name: str) -> float:
        """A threshold by name: a built-in one, or a plugin check's (its default unless set)."""
        if name in type(self).model_fields or name in (self.model_extra or {}):
            return getattr(self, name)
        return PLUGIN_THRESHOLDS[name]


class PreprocessConfig(BaseModel):
    """How the model-ready matrix is built from the processed table."""

    model_config = ConfigDict(extra="forbid")

    missing: Literal["auto", "drop", "mean", "median", "mode"] = "auto"
    outliers: Literal["iqr", "zscore", "none"] = "iqr"
    encoding: Literal["auto", "onehot", "label", "target"] = "auto"
    scaling: Literal["robust", "standard", "minmax", "none"] = "robust"


class ModelConfig(BaseModel):
    """The model stage: whether it runs, how the held-out part is drawn, how far to forecast."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Share of labelled rows held out for evaluation (customer_churn), drawn with ``seed``.
    test_size: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    #: Days forecast after the history's end (revenue_projection); 30 and this many are reported.
    horizon: int = Field(90, ge=1, le=730)
    #: Candidate models to choose from (None: every candidate of the blueprint).
    candidates: list[str] | None = None
    #: The source column holding the label, whatever it is called (it becomes the blueprint's
    #: label field, e.g. customer_churn's ``churned``).
    label: str | None = None
    #: The label's positive value (e.g. ``Yes``, ``Left``) when it is not one of the
    #: recognised spellings (yes/no, true/false, 1/0, y/n); any other value is negative.
    positive: str | None = None


class QualityConfig(BaseModel):
    """What the quality stage is told: renames, field transforms, personal fields, thresholds."""

    model_config = ConfigDict(extra="forbid")

    column_map: dict[str, str] = Field(default_factory=dict)
    #: Apply only the ``column_map`` entries whose column the source has (``predict`` sets it:
    #: a file to score has no label column).
    map_present_only: bool = False
    #: Per field, transform steps replacing the blueprint's (``trim``, ``default=VALUE``...).
    transforms: dict[str, list[str | dict[str, Any]]] = Field(default_factory=dict)
    #: Fields holding personal data: never shown in the report, notebook or workbench.
    pii: list[str] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)


class FeaturesConfig(BaseModel):
    """What the features stage is told beyond the rows."""

    model_config = ConfigDict(extra="forbid")

    #: plan_type values lowest first (customer_churn's ``plan_value_score``).
    plan_levels: list[str] | None = None
    #: What a snapshot's ``tenure`` counts (customer_churn's snapshot form).
    tenure_unit: Literal["days", "weeks", "months"] = "months"

    @field_validator("plan_levels")
    @classmethod
    def _distinct_levels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            folded = [v.strip().casefold() for v in value]
            if not value or len(set(folded)) != len(folded) or "" in folded:
                msg = f"plan_levels={value!r} should list distinct, non-empty plan names, lowest first"
                raise ValueError(msg)
        return value


class OutputConfig(BaseModel):
    """Where a run's results are filed: its dataset, and the notebook that runs it."""

    model_config = ConfigDict(extra="forbid")

    #: The name drift and history compare runs by (default: the file name without a date).
    dataset: str | None = None
    #: An edited copy of the blueprint notebook to run (``tracer init``).
    notebook: str | None = None


class Config(BaseModel):
    """Everything a run can be told; every field has a sensible default.

    Examples
    --------
    >>> Config(reference_date="2025-06-30").reference_date
    datetime.date(2025, 6, 30)
    """

    model_config = ConfigDict(extra="forbid")

    #: How to read the source (:class:`~tracer_kit.options.ReadOptions`; a run quarantines
    #: bad lines by default). A config file may also give these keys at its top level.
    read: ReadOptions = Field(default_factory=lambda: ReadOptions(on_bad_lines="quarantine"))
    quality: QualityConfig = Field(default_factory=QualityConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    #: The date "as of" which the data is judged (default: the latest date in the file).
    reference_date: dt.date | None = None
    #: The run's date (default: today, UTC); a rerun passes the original's.
    run_date: dt.date | None = None
    #: Where the AES-256 key for personal values at rest is (``env:NAME``; default
    #: ``TRACER_ENCRYPTION_KEY``); the key itself is never written in a config.
    encryption_key: str | None = None
    #: More URL query parameter names whose values are secrets (masked wherever recorded).
    secret_params: list[str] = Field(default_factory=list)
    #: The key of the ``pseudonymise`` transform (else ``TRACER_PSEUDONYMISE_KEY``); never saved.
    pseudonymise_key: SecretStr | None = Field(None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _group_keys_at_top(cls, data: Any) -> Any:
        """A group's options may be given at the config's top level (``format: csv``,
        ``thresholds:``, ``dataset:``), as configs of earlier releases did; a run
        quarantines bad lines unless told otherwise.
        """  # noqa: D205
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for group, model in GROUPS.items():
            flat = set(model.model_fields) & data.keys()
            if not flat and group not in data:
                continue
            given = data.get(group)
            nested = (
                given.model_dump(exclude_unset=True)
                if isinstance(given, BaseModel)
                else dict(given or {})
            )
            for key in flat:
                nested[key] = data.pop(key)
            data[group] = {"on_bad_lines": "quarantine", **nested} if group == "read" else nested
        return data

    @field_validator("reference_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()[:10])
            except ValueError:
                msg = (
                    f"{option('reference_date', value=value)} is not a date in the expected "
                    "format YYYY-MM-DD (e.g. 2024-06-30)"
                )
                raise ConfigError(msg) from None
        return value


#: The groups of options a config nests, each a model of its own.
GROUPS: dict[str, type[BaseModel]] = {
    "read": ReadOptions,
    "quality": QualityConfig,
    "features": FeaturesConfig,
    "output": OutputConfig,
}


def _read_config_file(path: Path) -> Any:
    """A config file's content (JSON, or YAML by extension); one clear error when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read config file {path}: {exc.strerror}"
        raise ConfigError(msg, path=path) from None
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or getattr(exc, "msg", None) or str(exc)
        what = " ".join(str(what).split())
        kind = path.suffix.lstrip(".").upper() or "JSON"
        msg = f"config file {path} is not valid {kind}{where}: {what}"
        raise ConfigError(msg, path=path, line=mark.line + 1 if mark else None) from None


def validation_message(exc: ValidationError, *, root: str = "config") -> str:
    """A pydantic error as one line: ``where: what; where: what`` (``where`` under ``root``)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if root != "config":
            where = f"{root}.{where}" if where else root
        parts.append(f"{where or root}: {err['msg']}")
    return "; ".join(parts)


def load_config(source: Config | dict[str, Any] | str | Path | None) -> Config:
    """Build a :class:`Config` from a Config, a dict, or a ``.json``/``.yaml`` file path.

    Raises
    ------
    ConfigError
        When the file cannot be read or a value is invalid; the message names the field.
    """
    if source is None:
        return Config()
    if isinstance(source, Config):
        if source.secret_params:
            add_secret_params(source.secret_params)
        return source
    data: Any = _read_config_file(Path(source)) if isinstance(source, (str, Path)) else source
    if not isinstance(data, dict):
        msg = f"config should be a mapping of Config fields, got {type(data).__name__}"
        raise ConfigError(msg)
    try:
        loaded = Config.model_validate(data)
    except ConfigError:
        raise
    except ValidationError as exc:
        raise ConfigError("invalid config: " + validation_message(exc)) from None
    if loaded.secret_params:
        add_secret_params(loaded.secret_params)
    return loaded


def config_to_jsonable(config: Config) -> dict[str, Any]:
    """The config as JSON-like types (dates as ISO strings), for notebooks and the runs table."""
    return config.model_dump(mode="json")
