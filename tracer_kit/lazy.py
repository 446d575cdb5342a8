"""Modules imported when first used, for entry points whose start-up time people feel.

``tracer --help`` takes 0.2 s; importing every stage (scikit-learn, scipy, pandera, DuckDB,
pyarrow) takes 2.3 s on the machine this was measured on. The CLI declares the modules its
commands use with :func:`lazy_module` at its top, so each command pays only for what it
runs, and the declarations stay where an import graph (``tests/test_architecture.py``)
sees them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "lazy_module"]


class LazyModule:
    """Stands for a module until one of its names is used; then it is imported (once)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)  # (thread-safe, cached)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> LazyModule:
    """``name``, imported on first attribute access (see the module docstring)."""
    return LazyModule(name)
