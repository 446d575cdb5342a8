"""A run's fitted model on disk: written with skops (no pickle), read trusting only known types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracer_kit.skops_files import dump_skops, load_skops

__all__ = ["read_model", "save_model"]


def save_model(saved: dict[str, Any], path: str | Path) -> Path:
    """Write a model stage's ``saved`` dict (estimators, numbers, lists) with skops (reproducible bytes)."""
    return dump_skops(saved, path)


def read_model(path: str | Path) -> dict[str, Any]:
    """A saved model, refusing any type but scikit-learn's, NumPy's and tracer-kit's."""
    return load_skops(path, "a model")
