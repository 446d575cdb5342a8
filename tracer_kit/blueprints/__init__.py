"""The blueprint registry: built-ins, entry points (``tracer_kit.blueprints``) and user folders.

A user blueprint is a Python file in ``./blueprints/`` (or in the folders listed in the
``TRACER_BLUEPRINTS`` path) that defines a module-level ``BLUEPRINT`` (a :class:`Blueprint`)
or calls :func:`register_blueprint`, or a contract file there (``.yaml``, ``.yml``,
``.json``, ``.toml``; :mod:`tracer_kit.blueprints.contract`). ``get_blueprint`` also takes
a contract file's path.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
import threading
from importlib import metadata
from pathlib import Path

from tracer_kit.blueprints import stats
from tracer_kit.blueprints._base import (
    DATE_CONVENTIONS,
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
from tracer_kit.blueprints.constraints import CONSTRAINTS, Constraint, constraint_words
from tracer_kit.blueprints.contract import contract_schema, is_contract_path, load_contract
from tracer_kit.errors import BlueprintError

__all__ = [
    "CONSTRAINTS",
    "Constraint",
    "constraint_words",
    "contract_schema",
    "is_contract_path",
    "load_contract",
    "DATE_CONVENTIONS",
    "KIND_DTYPES",
    "NAME_PATTERN",
    "Blueprint",
    "DatasetRules",
    "Feature",
    "FeatureContext",
    "Field",
    "ModelSpec",
    "Rule",
    "RuleContext",
    "SparkPlan",
    "blueprint_form",
    "check_blueprint",
    "code_site",
    "get_blueprint",
    "list_blueprints",
    "register_blueprint",
    "stats",
]


def blueprint_form(
    blueprint: Blueprint,
    columns: list[str] | tuple[str, ...],
    column_map: dict[str, str] | None = None,
) -> Blueprint:
    """The form of ``blueprint`` a source with these ``columns`` (renamed by ``column_map``) calls for.

    A blueprint with one form is itself; customer_churn has a date form and a snapshot form
    (``tenure`` instead of ``account_created_date``).
    """
    if blueprint.form_for is None:
        return blueprint
    renamed = [(column_map or {}).get(c, c) for c in columns]
    return blueprint.form_for(
        frozenset(
            c.strip().lower().replace(" ", "").replace("_", "").replace("-", "") for c in renamed
        )
    )


_BUILTIN_MODULES = ("customer_churn", "price_optimization", "revenue_projection")
_registry: dict[str, Blueprint] = {}
_loaded_paths: set[Path] = set()
_contracts: dict[Path, tuple[int, Blueprint]] = {}
_builtins_loaded = False
_builtins_lock = threading.Lock()  # (runs on threads may ask for their first blueprint at once)


def code_site(fn: object) -> str:
    """``file:line`` where a function is defined (a user's feature code), or ``""``."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_blueprint(blueprint: Blueprint) -> None:
    """Run a blueprint's feature code on no rows: every declared feature must be built, every
    built column declared, every column it reads a field. One line naming the blueprint, the
    feature or column, and the feature code's file and line otherwise.

    Raises
    ------
    BlueprintError
        When the feature code and the declaration disagree.
    """  # noqa: D205
    import datetime as dt
    import re

    import polars as pl

    schema = {"source_row": pl.Int64(), "source_line": pl.Int64()}
    schema.update({f.name: f.dtype for f in blueprint.fields})
    today = dt.date(2000, 1, 1)
    ctx = FeatureContext(run_date=today, reference_date=today)
    where = f"blueprint {blueprint.name!r} ({code_site(blueprint.build_features)})"
    try:
        built = blueprint.build_features(pl.LazyFrame(schema=schema), ctx).collect_schema().names()
    except pl.exceptions.ColumnNotFoundError as exc:
        found = re.search(r'"([^"]+)"', str(exc))
        column = found.group(1) if found else _first_line(exc)
        msg = (
            f"{where}: the feature code reads column {column!r}, which no field declares "
            f"(fields: {', '.join(blueprint.field_names)})"
        )
        raise BlueprintError(msg) from None
    except Exception as exc:
        raise BlueprintError(
            f"{where}: the feature code fails on no rows: {_first_line(exc)}"
        ) from None
    declared, fields = blueprint.feature_names, set(blueprint.field_names)
    missing = [f for f in declared if f not in built]
    if missing:
        raise BlueprintError(
            f"{where}: feature {missing[0]!r} is declared but the code does not build it"
        )
    stray = [c for c in built if c not in declared and c not in fields and c not in schema]
    if stray:
        msg = f"{where}: the code builds {stray[0]!r}, which no Feature declares; declare it or drop it"
        raise BlueprintError(msg)


def register_blueprint(blueprint: Blueprint, *, replace: bool = False) -> Blueprint:
    """Add ``blueprint`` to the registry so the CLI, notebooks and widgets can use it.

    Raises
    ------
    BlueprintError
        When another blueprint already has that name and ``replace`` is false.
    """
    if not isinstance(blueprint, Blueprint):
        msg = f"register_blueprint expects a Blueprint, got {type(blueprint).__name__}"
        raise BlueprintError(msg)
    check_blueprint(blueprint)
    existing = _registry.get(blueprint.name)
    if existing is not None and existing is not blueprint and not replace:
        msg = f"a blueprint named {blueprint.name!r} is already registered; pass replace=True"
        raise BlueprintError(msg)
    _registry[blueprint.name] = blueprint
    return blueprint


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _builtins_lock:
        if _builtins_loaded:
            return
        for module in _BUILTIN_MODULES:
            mod = importlib.import_module(f"tracer_kit.blueprints.{module}")
            register_blueprint(mod.BLUEPRINT, replace=True)
        _builtins_loaded = True


def _user_folders() -> list[Path]:
    folders = [Path.cwd() / "blueprints"]
    extra = os.environ.get("TRACER_BLUEPRINTS")
    if extra:
        folders.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return folders


def _load_contract_file(path: Path) -> Blueprint:
    """The blueprint of a contract file, read again whenever the file changed since."""
    resolved = path.resolve()
    try:
        stamp = resolved.stat().st_mtime_ns
    except OSError as exc:
        raise BlueprintError(f"cannot read blueprint file {path}: {exc}", path=path) from None
    cached = _contracts.get(resolved)
    if cached is None or cached[0] != stamp:
        cached = (stamp, load_contract(resolved))
        _contracts[resolved] = cached
    if _registry.get(cached[1].name) is cached[1]:
        return cached[1]
    return register_blueprint(cached[1], replace=True)


def _contract_files() -> list[Path]:
    return [
        path
        for folder in _user_folders()
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if is_contract_path(path) and path.is_file() and not path.name.startswith(("_", "."))
    ]


def _scan_contracts() -> None:
    """Register every contract file in the user folders (two declaring one name: an error)."""
    seen: dict[str, Path] = {}
    for path in _contract_files():
        bp = _load_contract_file(path)
        if bp.name in seen:
            msg = f"{path}: blueprint {bp.name!r} is also declared in {seen[bp.name]}"
            raise BlueprintError(msg, path=path)
        seen[bp.name] = path


def _load_file(path: Path) -> None:
    resolved = path.resolve()
    if resolved in _loaded_paths:
        return
    _loaded_paths.add(resolved)
    name = f"tracer_kit_user_blueprint_{resolved.stem}_{abs(hash(resolved)) % 10**8}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BlueprintError as exc:
        _loaded_paths.discard(resolved)
        raise BlueprintError(f"blueprint file {path}: {exc}", path=path) from None
    except Exception as exc:
        _loaded_paths.discard(resolved)
        msg = f"cannot load blueprint file {path}: {type(exc).__name__}: {_first_line(exc)}"
        raise BlueprintError(msg, path=path) from None
    bp = getattr(module, "BLUEPRINT", None)
    if bp is not None:
        try:
            register_blueprint(bp, replace=True)
        except BlueprintError as exc:
            _loaded_paths.discard(resolved)
            raise BlueprintError(f"blueprint file {path}: {exc}", path=path) from None


def _load_plugins() -> None:
    for ep in metadata.entry_points(group="tracer_kit.blueprints"):
        try:
            obj = ep.load()
        except Exception as exc:
            msg = f"cannot load blueprint entry point {ep.name!r} ({ep.value}): {exc}"
            raise BlueprintError(msg) from None
        obj = obj() if callable(obj) and not isinstance(obj, Blueprint) else obj
        register_blueprint(obj, replace=True)
    for folder in _user_folders():
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_"):
                    _load_file(path)
    _scan_contracts()


def list_blueprints() -> list[Blueprint]:
    """All known blueprints (built-in, entry points, user folders), sorted by name."""
    _load_builtins()
    _load_plugins()
    return [_registry[name] for name in sorted(_registry)]


def get_blueprint(name: str | Blueprint) -> Blueprint:
    """The blueprint called ``name``.

    Raises
    ------
    BlueprintError
        When no blueprint has that name; the message lists the known ones.
    """
    if isinstance(name, Blueprint):
        return name
    _load_builtins()
    if is_contract_path(name) and Path(name).is_file():  # a contract file named by its path
        return _load_contract_file(Path(name))
    _scan_contracts()  # (cheap: a folder listing; a file is read again only once edited)
    if name not in _registry:
        _load_plugins()
    if name not in _registry:
        known = sorted(_registry)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        msg = f"unknown blueprint {name!r}; known blueprints: {', '.join(known)}.{hint}"
        raise BlueprintError(msg)
    return _registry[name]
