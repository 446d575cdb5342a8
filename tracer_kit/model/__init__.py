"""The model stage: a baseline model per blueprint, honestly evaluated on data it did not see.

- :mod:`~tracer_kit.model.churn`: who will churn (calibrated classifier, held-out metrics).
- :mod:`~tracer_kit.model.forecast`: the next days' revenue with intervals, chosen by backtest.
- :mod:`~tracer_kit.model.pricing`: per product, a constant-elasticity demand curve.
- :mod:`~tracer_kit.model.stage`: the registry of blueprint models the pipeline fits and applies.
- :mod:`~tracer_kit.model.saved`: the fitted model's skops file.
"""

from tracer_kit.model.churn import ChurnModel, fit_churn, label_values
from tracer_kit.model.saved import read_model, save_model
from tracer_kit.model.stage import (
    MODELS,
    BlueprintModel,
    ModelOutcome,
    apply_model,
    fit_model,
    headline,
)

__all__ = [
    "MODELS",
    "BlueprintModel",
    "ChurnModel",
    "ModelOutcome",
    "apply_model",
    "fit_churn",
    "fit_model",
    "headline",
    "label_values",
    "read_model",
    "save_model",
]
