"""What a completed run left to apply again: its saved model and its fitted preprocessor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracer_kit.errors import TracerError
from tracer_kit.lazy import lazy_module
from tracer_kit.recipe import Recipe, read_recipe
from tracer_kit.record import RunRecord
from tracer_kit.warehouse import reading_run, run_row
from tracer_kit.workspace import DEFAULT_WAREHOUSE

if TYPE_CHECKING:
    from tracer_kit.preprocess import Preprocessor

__all__ = ["TrainedRun", "load_preprocessor", "trained_run", "training_recipe"]

_preprocess = lazy_module("tracer_kit.preprocess")  # scikit-learn, only when asked for


@dataclass(frozen=True)
class TrainedRun:
    """What a new file is scored with: a completed run's saved model and what it learned."""

    run_id: str
    blueprint: str
    record: RunRecord
    preprocessor: Path | None  # the scikit-learn form (skops), when the run saved one
    recipe: Path | None  # the fitted statistics (JSON); an older run's holds only its choices
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
        preprocessor=_path(outputs.get("preprocessor")),
        recipe=_path(outputs.get("preprocessor_json")),
        predictor=Path(predictor),
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value and Path(value).is_file() else None


def _recipe_of(preprocessor: Path | None, recipe: Path | None, what: str) -> Recipe:
    """The saved recipe, else the one inside an older run's skops preprocessor."""
    saved = read_recipe(recipe) if recipe is not None else None
    if saved is not None:
        return saved
    if preprocessor is None:
        raise TracerError(f"{what} has no saved preprocessor")
    return _preprocess.read_preprocessor(preprocessor).recipe()


def training_recipe(trained: TrainedRun) -> Recipe:
    """The preprocessing recipe the training run fitted (an older run's, from its skops file)."""
    return _recipe_of(trained.preprocessor, trained.recipe, f"run {trained.run_id}")


def load_preprocessor(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Preprocessor:
    """The preprocessor a run fitted, as a scikit-learn transformer built from its saved
    recipe; ``.transform(new_frame)`` repeats the run's matrix exactly, ``.recipe()`` gives
    the statistics, ``.save(path)`` writes it with skops.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> prep = tk.load_preprocessor(result.run_id)  # doctest: +SKIP
    >>> matrix = prep.transform(result.frame)  # doctest: +SKIP
    """  # noqa: D205
    with reading_run(run_id, warehouse=warehouse):
        row = run_row(run_id, warehouse=warehouse)
        outputs = row["outputs"] or {}
        preprocessor, recipe = (
            _path(outputs.get(k)) for k in ("preprocessor", "preprocessor_json")
        )
        what = f"run {run_id} (state {row['state']})"
        return _preprocess.Preprocessor.from_recipe(_recipe_of(preprocessor, recipe, what))
