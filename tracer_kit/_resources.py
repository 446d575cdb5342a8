"""Where the shipped notebook and templates live: inside the wheel, or at the repository's top level."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_path(relative: str) -> Path:
    """Path of a shipped file such as ``notebooks/blueprint.ipynb`` or ``templates/report.html.j2``.

    A wheel carries them under ``tracer_kit/_templates/``; an editable install reads the
    repository's top-level ``notebooks/`` and ``templates/``.
    """
    for base in (_PACKAGE / "_templates", _PACKAGE.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    msg = f"tracer-kit is missing its shipped file {relative!r}; reinstall the package"
    raise FileNotFoundError(msg)
