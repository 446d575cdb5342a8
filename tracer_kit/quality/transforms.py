"""Field transforms: cleaning applied to a field's text before its checks, and pseudonymisation.

A field declares its transforms (``Field(transforms=("trim", "lower"))``, or a run's
``transforms: {field: [steps]}`` config), each a registered :class:`Transform` by name,
``default=VALUE`` for one that takes an argument. They run in order on the text, before
typing and checks; every run records how many values each step changed. A personal field
(``pii``) shows no values anywhere, and the ``pseudonymise`` step replaces its values,
after the checks saw them, by a keyed hash (HMAC-SHA256, 32 hex characters) whose key
comes from ``pseudonymise_key`` in the config or the ``TRACER_PSEUDONYMISE_KEY``
environment variable and is never written to any output.

:func:`register_transform` adds a transform; :data:`TRANSFORMS` is the registry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from tracer_kit.blueprints import Blueprint
from tracer_kit.blueprints.constraints import TEXT_KINDS
from tracer_kit.config import Config
from tracer_kit.errors import ConfigError, option
from tracer_kit.quality.names import Aggregates

__all__ = [
    "KEY_ENV",
    "TRANSFORMS",
    "Step",
    "Transform",
    "TransformPlan",
    "configured",
    "parse_step",
    "plan",
    "describe",
    "key_for_kernel",
    "register_transform",
]

#: The environment variable the pseudonymisation key is read from.
KEY_ENV = "TRACER_PSEUDONYMISE_KEY"


@dataclass(frozen=True)
class Transform:
    """A named text -> text expression; ``phase="finish"`` runs after the checks (pseudonymise)."""

    name: str
    text: str
    apply: Callable[[pl.Expr, str | None], pl.Expr]
    takes_argument: bool = False
    phase: Literal["clean", "finish"] = "clean"


#: Every transform by name, in registration order.
TRANSFORMS: dict[str, Transform] = {}


def register_transform(transform: Transform) -> Transform:
    """Add (or replace) a transform in the registry; returns it."""
    TRANSFORMS[transform.name] = transform
    return transform


def _default(text: pl.Expr, value: str | None) -> pl.Expr:
    stripped = text.str.strip_chars()
    missing = text.is_null() | (stripped == "")
    return pl.when(missing).then(pl.lit(value)).otherwise(text)


for _t in (
    Transform("trim", "remove surrounding whitespace", lambda t, _: t.str.strip_chars()),
    Transform(
        "collapse_spaces",
        "runs of inner whitespace become one space",
        lambda t, _: t.str.replace_all(r"\s+", " "),
    ),
    Transform("lower", "lower case", lambda t, _: t.str.to_lowercase()),
    Transform("upper", "upper case", lambda t, _: t.str.to_uppercase()),
    Transform(
        "email",
        "an email address trimmed, lower case, without a mailto: prefix",
        lambda t, _: t.str.strip_chars().str.to_lowercase().str.strip_prefix("mailto:"),
    ),
    Transform(
        "strip_html",
        "HTML tags removed, the common entities decoded",
        lambda t, _: (
            t.str.replace_all(r"<[^>]*>", "")
            .str.replace_all("&nbsp;", " ", literal=True)
            .str.replace_all("&lt;", "<", literal=True)
            .str.replace_all("&gt;", ">", literal=True)
            .str.replace_all("&quot;", '"', literal=True)
            .str.replace_all("&#39;", "'", literal=True)
            .str.replace_all("&amp;", "&", literal=True)
        ),
    ),
    Transform("default", "a missing value becomes VALUE", _default, takes_argument=True),
    Transform(
        "pseudonymise",
        "the value replaced by a keyed hash (after the checks; needs the key)",
        lambda t, key: t,  # the key is bound in TransformPlan.finish
        phase="finish",
    ),
):
    register_transform(_t)


@dataclass(frozen=True)
class Step:
    """One transform applied to one field (with its argument)."""

    field: str
    transform: Transform
    argument: str | None = None

    @property
    def label(self) -> str:
        """``name`` or ``name=argument``, as written in a config."""
        return (
            self.transform.name
            if self.argument is None
            else f"{self.transform.name}={self.argument}"
        )


def parse_step(field: str, spec: str | Mapping[str, Any]) -> Step:
    """A step from ``"trim"``, ``"default=basic"`` or ``{"default": "basic"}``."""
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            msg = f"transform for {field!r} should be one name or name: value, got {dict(spec)!r}"
            raise ConfigError(msg, column=field)
        name, argument = next(iter(spec.items()))
        argument = None if argument is None else str(argument)
    else:
        name, sep, rest = str(spec).partition("=")
        argument = rest if sep else None
    name = name.strip()
    transform = TRANSFORMS.get(name)
    if transform is None:
        msg = f"unknown transform {name!r} for field {field!r}; known: {', '.join(TRANSFORMS)}"
        raise ConfigError(msg, column=field)
    if transform.takes_argument != (argument is not None):
        need = f"{name}=VALUE" if transform.takes_argument else name
        msg = f"transform {name!r} for field {field!r} is written {need}"
        raise ConfigError(msg, column=field)
    return Step(field, transform, argument)


def configured(blueprint: Blueprint, config: Config) -> Blueprint:
    """``blueprint`` with the config's transforms and personal fields applied to its fields.

    A config's ``transforms`` for a field replace the field's own; ``pii`` adds personal
    fields; ``model.positive`` lifts the label's pattern (its values are the positive one or
    anything else).
    """
    names = set(blueprint.field_names)
    unknown = [n for n in [*config.quality.transforms, *config.quality.pii] if n not in names]
    if unknown:
        msg = (
            f"transforms or pii name field(s) {', '.join(map(repr, unknown))} "
            f"that blueprint {blueprint.name!r} does not have; its fields are "
            f"{', '.join(blueprint.field_names)}"
        )
        raise ConfigError(msg, column=unknown[0])
    positive = config.model.positive is not None and blueprint.label is not None
    if not config.quality.transforms and not config.quality.pii and not positive:
        return blueprint
    fields = tuple(
        dataclasses.replace(
            f,
            transforms=tuple(config.quality.transforms.get(f.name, f.transforms)),
            pii=f.pii or f.name in config.quality.pii,
            # a label with its own positive value: any value is valid (positive or not)
            pattern=None if positive and f.name == blueprint.label else f.pattern,
        )
        for f in blueprint.fields
    )
    return dataclasses.replace(blueprint, fields=fields)


def _keyed_hash(key: bytes) -> Callable[[pl.Series], pl.Series]:
    def digest(values: pl.Series) -> pl.Series:
        out = [
            None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32]
            for v in values.to_list()
        ]
        return pl.Series(values.name, out, dtype=pl.String)

    return digest


@dataclass(frozen=True)
class TransformPlan:
    """A run's transform steps, as expressions over the text and over the typed rows."""

    steps: tuple[Step, ...]
    key: bytes | None = None

    @property
    def fields(self) -> set[str]:
        """Fields whose text a cleaning step changes (never typed by the clean fast path)."""
        return {s.field for s in self.steps if s.transform.phase == "clean"}

    def _chains(self) -> dict[str, list[pl.Expr]]:
        """Per field, the text after each cleaning step, in order."""
        chains: dict[str, list[pl.Expr]] = {}
        for s in self.steps:
            if s.transform.phase != "clean":
                continue
            prev = chains.get(s.field, [pl.col(s.field)])[-1]
            chains.setdefault(s.field, [pl.col(s.field)]).append(
                s.transform.apply(prev, s.argument)
            )
        return chains

    def apply(self, text: pl.LazyFrame) -> pl.LazyFrame:
        """``text`` with each field's cleaning steps applied."""
        chains = self._chains()
        return (
            text.with_columns(chain[-1].alias(f) for f, chain in chains.items()) if chains else text
        )

    def finish(self) -> list[pl.Expr]:
        """Expressions replacing pseudonymised fields' typed values (run after the checks)."""
        fields = [s.field for s in self.steps if s.transform.name == "pseudonymise"]
        if not fields or self.key is None:
            return []
        digest = _keyed_hash(self.key)
        return [
            pl.col(f).cast(pl.String).map_batches(digest, pl.String, is_elementwise=True).alias(f)
            for f in fields
        ]

    def count_changes(self, text: pl.LazyFrame) -> list[dict[str, Any]]:
        """How many values each step changed: ``{"field", "transform", "changed"}`` per step."""
        if not self.steps:
            return []
        agg = Aggregates()
        chains = self._chains()
        index: dict[str, int] = {}
        for i, s in enumerate(self.steps):
            if s.transform.phase == "clean":
                n = index[s.field] = index.get(s.field, 0) + 1
                before, after = chains[s.field][n - 1], chains[s.field][n]
                agg.add(str(i), "changed", before.ne_missing(after).sum(), "sum")
            else:  # pseudonymise changes every value present
                agg.add(str(i), "changed", pl.col(s.field).is_not_null().sum(), "sum")
        found = agg.collect(text.select(sorted({s.field for s in self.steps})))
        return [
            {"field": s.field, "transform": s.label, "changed": int(found[str(i)]["changed"])}
            for i, s in enumerate(self.steps)
        ]


def _key(config: Config) -> bytes:
    secret = config.pseudonymise_key.get_secret_value() if config.pseudonymise_key else None
    secret = secret or os.environ.get(KEY_ENV)
    if not secret:
        msg = (
            f"the pseudonymise transform needs a key: set {KEY_ENV} in the environment "
            f"or {option('pseudonymise_key')} in the project's config"
        )
        raise ConfigError(msg)
    return secret.encode()


def plan(blueprint: Blueprint, config: Config) -> TransformPlan:
    """Every field's steps, in field order (checked against the registry)."""
    steps: list[Step] = []
    for f in blueprint.fields:
        steps.extend(parse_step(f.name, spec) for spec in f.transforms)
    kinds = {f.name: f.kind for f in blueprint.fields}
    for s in steps:
        if s.transform.phase == "finish" and kinds[s.field] not in TEXT_KINDS:
            msg = f"field {s.field!r} is a {kinds[s.field]}; only text fields can be pseudonymised"
            raise ConfigError(msg, column=s.field)
    needs_key = any(s.transform.phase == "finish" for s in steps)
    return TransformPlan(tuple(steps), _key(config) if needs_key else None)


def describe(steps: Sequence[Step]) -> str:
    """``field: step, step; field: step`` for messages and the report."""
    by_field: dict[str, list[str]] = {}
    for s in steps:
        by_field.setdefault(s.field, []).append(s.label)
    return "; ".join(f"{f}: {', '.join(labels)}" for f, labels in by_field.items())


@contextlib.contextmanager
def key_for_kernel(config: Config) -> Iterator[None]:
    """While inside, a config's pseudonymisation key is in :data:`KEY_ENV` (for a notebook kernel).

    The kernel inherits the environment, so the key never goes into the notebook's
    parameters (which the executed notebook keeps).
    """
    if config.pseudonymise_key is None:
        yield
        return
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = config.pseudonymise_key.get_secret_value()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before
