"""The files a run writes beside its processed Parquet, one registered :class:`Output` each.

An output declares its files (a key in the run's outputs and a suffix after the run id) and
a ``write`` that fills them in the run's staging folder. Every output is written before the
commit point and moved into place by the commit with the processed Parquet, so a run's files
appear together or not at all; ``tracer runs delete`` and ``tracer prune`` remove them by
the same keys. :func:`register_output` adds one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer_kit.blueprints import Blueprint
from tracer_kit.engine import materialize
from tracer_kit.lazy import lazy_module
from tracer_kit.skops_files import dump_skops

_preprocess = lazy_module("tracer_kit.preprocess")  # scikit-learn: only with a saved model

__all__ = ["OUTPUTS", "Output", "OutputContext", "output_keys", "register_output"]


@dataclass
class OutputContext:
    """What an output may read: the processed rows and what the run learned on the way."""

    run_id: str
    blueprint: Blueprint
    processed: Any  # a polars LazyFrame, or on Spark a PartitionFrame
    #: Values stages share with outputs (the fitted :class:`~tracer_kit.recipe.Recipe`
    #: under ``"recipe"``, the model's outcome under ``"model"``).
    fitted: dict[str, Any] = field(default_factory=dict)
    #: Facts an output adds to the run's record (:class:`~tracer_kit.record.RunRecord`).
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """One output: ``files`` maps an outputs key to a file-name suffix after the run id.

    ``stage`` is the stage that writes it (``preprocess`` or ``model``); a ``write`` may
    leave a file out (no model, no predictions), and the run then records no path for it.
    """

    name: str
    text: str
    files: Mapping[str, str]
    write: Callable[[OutputContext, dict[str, Path]], None]
    stage: str = "preprocess"


#: Every output by name, in the order they are written.
OUTPUTS: dict[str, Output] = {}


def register_output(output: Output) -> Output:
    """Add (or replace) an output; returns it."""
    OUTPUTS[output.name] = output
    return output


def output_keys() -> tuple[str, ...]:
    """Every outputs key a run's files are recorded under (the processed Parquet first)."""
    return ("parquet", *(key for o in OUTPUTS.values() for key in o.files))


def _write_matrix(ctx: OutputContext, paths: dict[str, Path]) -> None:
    if ctx.fitted.get("recipe") is None:
        return  # (no number or category to build a matrix from)
    keys = ctx.blueprint.key if ctx.blueprint.aggregates else ()  # (a filled day has no source row)
    # written, not counted: the run knows its processed rows (on Spark a count is two jobs)
    materialize(ctx.fitted["recipe"].matrix_plan(ctx.processed, keys=keys), paths["model"])


def _write_recipe(ctx: OutputContext, paths: dict[str, Path]) -> None:
    if ctx.fitted.get("recipe") is None:
        return
    ctx.fitted["recipe"].save(paths["preprocessor_json"])
    ctx.notes["preprocess"] = ctx.fitted["recipe"].describe()


def _write_preprocessor(ctx: OutputContext, paths: dict[str, Path]) -> None:
    """Beside a saved model, the recipe as a scikit-learn object (the model stage has it loaded)."""
    outcome = ctx.fitted.get("model")
    if ctx.fitted.get("recipe") is None or outcome is None or outcome.saved is None:
        return
    dump_skops(_preprocess.Preprocessor.from_recipe(ctx.fitted["recipe"]), paths["preprocessor"])


def _write_predictions(ctx: OutputContext, paths: dict[str, Path]) -> None:
    outcome = ctx.fitted.get("model")
    if outcome is not None and outcome.has_predictions:
        outcome.write_predictions(paths["predictions"])


def _write_predictor(ctx: OutputContext, paths: dict[str, Path]) -> None:
    outcome = ctx.fitted.get("model")
    if outcome is not None:
        outcome.save(paths["predictor"])


register_output(
    Output(
        "model_matrix",
        "the model-ready matrix: the fitted preprocessor applied to the processed rows",
        {"model": ".model.parquet"},
        _write_matrix,
    )
)
register_output(
    Output(
        "recipe",
        "the fitted preprocessing: its choices and statistics (JSON), all a matrix is built from",
        {"preprocessor_json": ".preprocessor.json"},
        _write_recipe,
    )
)
register_output(
    Output(
        "predictions",
        "one row per prediction unit: prediction, confidence (and intervals where they exist)",
        {"predictions": ".predictions.parquet"},
        _write_predictions,
        stage="model",
    )
)
register_output(
    Output(
        "predictor",
        "the fitted model (skops) that tracer predict applies to new files",
        {"predictor": ".predictor.skops"},
        _write_predictor,
        stage="model",
    )
)
register_output(
    Output(
        "preprocessor",
        "beside a saved model, the fitted preprocessing as a scikit-learn transformer (skops)",
        {"preprocessor": ".preprocessor.skops"},
        _write_preprocessor,
        stage="model",
    )
)
