"""Matching a file's columns onto a blueprint's fields, with "did you mean" suggestions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tracer_kit.blueprints import Blueprint
from tracer_kit.cells import name_list, quoted
from tracer_kit.config import Config
from tracer_kit.errors import CompatibilityError, ConfigError, TracerError, option

__all__ = [
    "LABEL_LIKE",
    "config_column_map",
    "fits_blueprint",
    "label_like",
    "match_columns",
    "normalise_name",
    "suggest_columns",
]

#: Column names (normalised) that look like a churn label.
LABEL_LIKE = (
    "churn", "churned", "ischurned", "haschurned", "churnflag", "churnlabel", "exited",
    "attrition", "left", "cancelled", "canceled", "lost", "retained", "active",
)  # fmt: skip


def label_like(columns: Iterable[str]) -> list[str]:
    """The columns whose names look like a label (``Churn``, ``is_churned``, ``Exited``...)."""
    return [c for c in columns if normalise_name(c) in LABEL_LIKE]


def config_column_map(config: Config, blueprint: Blueprint) -> dict[str, str]:
    """The config's ``column_map`` plus its label column mapped onto the blueprint's label field."""
    label = config.model.label
    if label is None or blueprint.label is None or label == blueprint.label:
        return dict(config.quality.column_map)
    return {**config.quality.column_map, label: blueprint.label}


def normalise_name(name: str) -> str:
    """Lower-case with spaces, underscores, hyphens and dots removed (``Customer ID`` -> ``customerid``)."""
    return re.sub(r"[\s_\-.]+", "", name.strip().lower())


def suggest_columns(wanted: str, columns: Iterable[str], n: int = 3) -> list[str]:
    """The file's columns that look most like ``wanted``: normalised equality, then fuzzy matches."""
    columns = list(columns)
    target = normalise_name(wanted)
    by_norm: dict[str, list[str]] = {}
    for c in columns:
        by_norm.setdefault(normalise_name(c), []).append(c)
    exact = by_norm.get(target, [])
    fuzzy = difflib.get_close_matches(target, list(by_norm), n=n, cutoff=0.6)
    out = list(exact)
    for key in fuzzy:
        out.extend(c for c in by_norm[key] if c not in out)
    contains = [c for c in columns if target in normalise_name(c) or normalise_name(c) in target]
    out.extend(c for c in contains if c not in out and len(normalise_name(c)) >= 3)
    return out[:n]


def match_columns(
    columns: Sequence[str],
    blueprint: Blueprint,
    column_map: dict[str, str] | None = None,
    *,
    path: str | Path | None = None,
    present_only: bool = False,
) -> dict[str, str]:
    """The renames that map the file's columns onto the blueprint's fields.

    ``column_map`` (source -> field) is applied first (with ``present_only``, only its
    entries whose column the file has: a file to score has no label); then each field still
    absent that exactly one column matches (its declared ``column`` name, or its own name
    case-, space- and underscore-insensitively) is mapped too.

    Raises
    ------
    CompatibilityError
        When required fields are still missing; names each and the closest columns.
    ConfigError
        When ``column_map`` names a column the file lacks.
    """
    columns = list(columns)
    column_map = column_map or {}
    if present_only:
        folded = {normalise_name(c) for c in columns}
        column_map = {s: d for s, d in column_map.items() if normalise_name(s) in folded}
    mapping = _explicit_renames(columns, column_map, blueprint, path)
    present = {mapping.get(c, c) for c in columns}
    for f in blueprint.fields:
        if f.name in present:
            continue
        candidates = [
            c
            for c in columns
            if c not in mapping
            and c not in {x.name for x in blueprint.fields}
            and (c == f.column or normalise_name(c) == normalise_name(f.name))
        ]
        if len(candidates) == 1:
            mapping[candidates[0]] = f.name
            present.add(f.name)
    missing = [name for name in blueprint.required if name not in present]
    if missing:
        unused = [c for c in columns if c not in mapping]
        suggestions = {m: suggest_columns(m, unused) for m in missing}
        parts = []
        for m in missing:
            hint = suggestions[m]
            parts.append(
                f"{m!r} (did you mean {' or '.join(map(quoted, hint))}?)" if hint else repr(m)
            )
        where = f"{path}: " if path else ""
        plural = "s" if len(missing) > 1 else ""
        example = next(((s[0], m) for m, s in suggestions.items() if s), None)
        fix = (
            f"; map columns with {option('column_map', src=example[0], dst=example[1])}"
            if example
            else f"; the file's columns are {name_list(list(columns))}"
        )
        msg = (
            f"{where}blueprint {blueprint.name!r} needs field{plural} missing from the file: "
            + ", ".join(parts)
            + fix
        )
        raise CompatibilityError(msg, missing=missing, suggestions=suggestions, path=path)
    return {src: dst for src, dst in mapping.items() if src != dst}


def _resolve_source(src: str, columns: Sequence[str], path: str | Path | None) -> str:
    """The file's column a map entry names: exactly, else case-insensitively when only one fits."""
    if src in columns:
        return src
    folded = [c for c in columns if c.casefold() == src.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    where = path or "the file"
    if folded:
        msg = (
            f"{option('column_map', src=src, dst='...')}: {where} has several columns that "
            f"differ from {src!r} only by case ({name_list(folded)}); name one exactly"
        )
    else:
        hint = suggest_columns(src, columns)
        close = f" (did you mean {' or '.join(map(quoted, hint))}?)" if hint else ""
        msg = (
            f"{option('column_map', src=src, dst='...')} names column {src!r}, but {where} has "
            f"no such column{close}; its columns are {name_list(list(columns))}"
        )
    raise ConfigError(msg, path=path, column=src)


def _explicit_renames(
    columns: Sequence[str],
    column_map: dict[str, str],
    blueprint: Blueprint,
    path: str | Path | None,
) -> dict[str, str]:
    """The user's map resolved against the file; two sources landing on one field is an error."""
    mapping: dict[str, str] = {}
    for src, dst in column_map.items():
        mapping[_resolve_source(src, columns, path)] = dst
    targets: dict[str, list[str]] = {}
    for src, dst in mapping.items():
        targets.setdefault(dst, []).append(src)
    for c in columns:  # an unmapped column already named like a target also lands there
        if c not in mapping and c in targets:
            targets[c].append(c)
    clashes = {dst: srcs for dst, srcs in targets.items() if len(srcs) > 1}
    if clashes:
        dst, srcs = next(iter(clashes.items()))
        kind = "field" if dst in {f.name for f in blueprint.fields} else "column"
        msg = (
            f"{path or 'the file'}: columns {' and '.join(map(repr, srcs))} would both become "
            f"{kind} {dst!r}; map only one of them to {dst!r}"
        )
        raise ConfigError(msg, path=path, column=dst)
    return mapping


# --------------------------------------------------------------------------- typing from text


def fits_blueprint(blueprint: Blueprint, config: Config) -> Callable[[list[str]], bool]:
    """Whether a header row maps onto the blueprint's required fields (used to pick a sheet)."""

    def fits(columns: list[str]) -> bool:
        try:
            match_columns(
                columns,
                blueprint,
                config_column_map(config, blueprint),
                present_only=config.quality.map_present_only,
            )
        except TracerError:
            return False
        return True

    return fits
