"""What a completed run left to apply again: its saved model and its fitted preprocessor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracer_kit.errors import TracerError
from tracer_kit.preprocess import Preprocessor, read_preprocessor
from tracer_kit.record import RunRecord
from tracer_kit.warehouse import reading_run, run_row
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["TrainedRun", "load_preprocessor", "trained_run"]


@dataclass(frozen=True)
class TrainedRun:
    """What a new file is scored with: a completed run's saved model and what it learned."""

    run_id: str
    blueprint: str
    record: RunRecord
    preprocessor: Path
    predictor: Path

    @property
    def config(self) -> dict[str, Any]:
        """The training run's config (as JSON)."""
        return self.record.config

    @property
    def reference_date(self) -> dt.date | None:
        """The date the training run's features were computed at."""
        return self.record.reference_date

    @property
    def statistics(self) -> dict[str, Any] | None:
        """The file-wide statistics the training run's features used."""
        return self.record.feature_statistics


def trained_run(run_id: str, warehouse: str | Path) -> TrainedRun:
    """The training run ``run_id``: it must be COMPLETED with a saved model.

    Raises
    ------
    TracerError
        For an unknown run, one that did not complete, or one without a model.
    """
    row = run_row(run_id, warehouse=warehouse)
    outputs, record = row["outputs"] or {}, row["record"]
    if row["state"] != "COMPLETED":
        raise TracerError(
            f"run {run_id} is {row['state']}; only a completed run's model can predict"
        )
    predictor = outputs.get("predictor")
    if not predictor or not Path(predictor).is_file():
        why = (record.model.why if record.model else None) or "its model stage did not save a model"
        raise TracerError(f"run {run_id} has no saved model: {why}")
    return TrainedRun(
        run_id=run_id,
        blueprint=row["blueprint"],
        record=record,
        preprocessor=Path(outputs["preprocessor"]),
        predictor=Path(predictor),
    )


def load_preprocessor(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Preprocessor:
    """The preprocessor a run fitted; ``.transform(new_frame)`` repeats the run's matrix exactly.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> prep = tk.load_preprocessor(result.run_id)  # doctest: +SKIP
    >>> matrix = prep.transform(result.frame)  # doctest: +SKIP
    """
    with reading_run(run_id, warehouse=warehouse):
        row = run_row(run_id, warehouse=warehouse)
        path = row["outputs"].get("preprocessor")
        if not path or not Path(path).exists():
            raise TracerError(f"run {run_id} has no saved preprocessor (state {row['state']})")
        return read_preprocessor(path)
