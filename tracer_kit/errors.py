"""One exception tree for everything tracer-kit raises on purpose.

Every error a user can cause derives from :class:`TracerError`, carries structured
fields (file, line, column) and a message that names the bad thing and says what to
do. The CLI turns any :class:`TracerError` into one line on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
        self, message: str, *, issues: Sequence[Any] = (), path: str | Path | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.issues = list(issues)


class WarehouseBusyError(TracerError):
    """Another process held the warehouse lock for longer than the wait allows."""


class NotebookRunError(TracerError):
    """A notebook cell failed for a reason other than the quality gate."""


class ConfigError(TracerError):
    """A configuration value, parameter or option is invalid."""


class BlueprintError(ConfigError):
    """A blueprint is unknown or badly defined."""


class PipelineBugError(TracerError):
    """An internal invariant broke (rows not conserved, infinite features): a bug to report."""
