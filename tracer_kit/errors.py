"""One exception tree for everything tracer-kit raises on purpose.

Every error a user can cause derives from :class:`TracerError`, carries structured
fields (file, line, column) and a message that names the bad thing and says what to
do. The CLI turns any :class:`TracerError` into one line on stderr.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BlueprintError",
    "CompatibilityError",
    "ConfigError",
    "EmptyMatrixError",
    "ExportError",
    "INTERFACES",
    "IngestError",
    "NotebookRunError",
    "PipelineBugError",
    "QualityGateError",
    "TracerError",
    "WarehouseBusyError",
    "interface",
    "option",
    "speaking",
]


class TracerError(Exception):
    """Base class of every error tracer-kit raises on purpose.

    Parameters
    ----------
    message
        One sentence for a person: what is wrong and, where possible, what to do.
    path
        The file the error is about, when there is one.
    line
        1-based physical line in that file, when known.
    column
        The column (field) name, when known.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self.message


class IngestError(TracerError):
    """A file cannot be read: empty, binary, wrong encoding, ragged rows, too large."""


class CompatibilityError(TracerError):
    """The file lacks fields the blueprint requires.

    Attributes
    ----------
    missing
        The required field names not found in the file.
    suggestions
        For each missing field, the file's columns that look closest to it.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        suggestions: dict[str, list[str]] | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.missing = list(missing)
        self.suggestions = dict(suggestions or {})


class QualityGateError(TracerError):
    """The quality gate stopped the run; ``issues`` lists the findings that did it."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        issues: Sequence[Any] = (),
        path: str | Path | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(message, path=path)
        self.issues = list(issues)
        self.result = result  # the run's RunResult, when a pipeline run stopped at the gate


class WarehouseBusyError(TracerError):
    """Another process held the warehouse lock for longer than the wait allows."""


class NotebookRunError(TracerError):
    """A notebook cell failed for a reason other than the quality gate."""


class ConfigError(TracerError):
    """A configuration value, parameter or option is invalid."""


class ExportError(TracerError):
    """Exporting a run to another database failed; nothing was written there."""


class BlueprintError(ConfigError):
    """A blueprint is unknown or badly defined."""


class EmptyMatrixError(TracerError):
    """The processed rows hold no number or category to build a model-ready matrix from."""


class PipelineBugError(TracerError):
    """An internal invariant broke (rows not conserved, infinite features): a bug to report."""


def error_class(name: str) -> type[TracerError] | None:
    """The :class:`TracerError` subclass called ``name`` (an exception name from a notebook cell)."""
    found: list[type[TracerError]] = [TracerError]
    for cls in found:
        found.extend(c for c in cls.__subclasses__() if c not in found)
    return next((c for c in found if c.__name__ == name), None)


# --------------------------------------------------------------------------- spelling options

# How each option is spelled where the user typed it: a message names the CLI flag in the
# CLI, the keyword argument in Python and the field label in the workbench.
_SPELLINGS: dict[str, dict[str, str]] = {
    "column_map": {
        "cli": "--map {src}={dst}",
        "python": "column_map={{'{src}': '{dst}'}}",
        "widget": "Map: {src}={dst}",
    },
    "on_bad_lines": {
        "cli": "--on-bad-lines {value}",
        "python": "on_bad_lines='{value}'",
        "widget": "on_bad_lines '{value}' in the config",
    },
    "reference_date": {
        "cli": "--reference-date {value}",
        "python": "reference_date='{value}'",
        "widget": "Ref. date {value}",
    },
    "encoding": {
        "cli": "--encoding {value}",
        "python": "encoding='{value}'",
        "widget": "encoding '{value}' in the config",
    },
    "sheet": {
        "cli": "--sheet {value}",
        "python": "sheet='{value}'",
        "widget": "sheet '{value}' in the config",
    },
    "delimiter": {
        "cli": "--delimiter '{value}'",
        "python": "delimiter='{value}'",
        "widget": "delimiter '{value}' in the config",
    },
    "format": {
        "cli": "--format {value}",
        "python": "format='{value}'",
        "widget": "format '{value}' in the config",
    },
    "max_bytes": {
        "cli": "--max-bytes {value}",
        "python": "max_bytes={value}",
        "widget": "max_bytes {value} in the config",
    },
    "transforms": {
        "cli": "--transform FIELD=STEP,STEP",
        "python": "transforms={{'FIELD': ['STEP']}}",
        "widget": "transforms in the config",
    },
    "pii": {
        "cli": "--pii FIELD",
        "python": "pii=['FIELD']",
        "widget": "pii in the config",
    },
    "label": {
        "cli": "--label {value}",
        "python": "model={{'label': '{value}'}}",
        "widget": "label '{value}' in the config (model.label)",
    },
    "positive": {
        "cli": "--positive {value}",
        "python": "model={{'positive': '{value}'}}",
        "widget": "positive '{value}' in the config (model.positive)",
    },
    "pseudonymise_key": {
        "cli": "pseudonymise_key in the --config file",
        "python": "pseudonymise_key='...'",
        "widget": "pseudonymise_key in the config",
    },
}
INTERFACES = ("python", "cli", "widget")


def interface() -> str:
    """Where the user is: ``cli``, ``widget`` or ``python`` (``TRACER_INTERFACE``; a notebook kernel inherits it)."""
    name = os.environ.get("TRACER_INTERFACE", "python")
    return name if name in INTERFACES else "python"


def option(name: str, **values: Any) -> str:
    """An option as the user would type it here, e.g. ``--map A=B`` in the CLI, ``column_map={'A': 'B'}`` in Python."""
    forms = _SPELLINGS[name]
    return forms[interface()].format(**{k: str(v) for k, v in values.items()})


@contextlib.contextmanager
def speaking(name: str) -> Iterator[None]:
    """Messages raised inside spell options as ``name`` (``cli``, ``widget``, ``python``) does."""
    before = os.environ.get("TRACER_INTERFACE")
    os.environ["TRACER_INTERFACE"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TRACER_INTERFACE", None)
        else:
            os.environ["TRACER_INTERFACE"] = before
