"""A run's fitted model on disk: written with skops (no pickle), read trusting only known types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracer_kit.errors import TracerError

__all__ = ["TrainedRun", "read_model", "save_model", "trained_run"]


def save_model(saved: dict[str, Any], path: str | Path) -> Path:
    """Write a model stage's ``saved`` dict (estimators, numbers, lists) with skops (reproducible bytes)."""
    from tracer_kit.preprocess import dump_skops

    return dump_skops(saved, path)


def read_model(path: str | Path) -> dict[str, Any]:
    """A saved model, refusing any type but scikit-learn's, NumPy's and tracer-kit's."""
    from tracer_kit.preprocess import load_skops

    return load_skops(path, "a model")


@dataclass(frozen=True)
class TrainedRun:
    """What a new file is scored with: a completed run's saved model and what it learned."""

    run_id: str
    blueprint: str
    config: dict[str, Any]
    reference_date: str | None
    statistics: dict[str, Any] | None
    preprocessor: Path
    predictor: Path


def trained_run(run_id: str, warehouse: str | Path) -> TrainedRun:
    """The training run ``run_id``: it must be COMPLETED with a saved model.

    Raises
    ------
    TracerError
        For an unknown run, one that did not complete, or one without a model.
    """
    from tracer_kit.warehouse import run_row

    row = run_row(run_id, warehouse=warehouse)
    outputs, params = row["outputs"] or {}, row["params"] or {}
    if row["state"] != "COMPLETED":
        raise TracerError(
            f"run {run_id} is {row['state']}; only a completed run's model can predict"
        )
    predictor = outputs.get("predictor")
    if not predictor or not Path(predictor).is_file():
        why = (params.get("model") or {}).get("why") or "its model stage did not save a model"
        raise TracerError(f"run {run_id} has no saved model: {why}")
    return TrainedRun(
        run_id=run_id,
        blueprint=row["blueprint"],
        config=params.get("config") or {},
        reference_date=params.get("reference_date"),
        statistics=params.get("feature_statistics"),
        preprocessor=Path(outputs["preprocessor"]),
        predictor=Path(predictor),
    )
