"""The model stage: a baseline model per blueprint, honestly evaluated on data it did not see.

- :mod:`~tracer_kit.model.churn`: who will churn (calibrated classifier, held-out metrics).
- :mod:`~tracer_kit.model.forecast`: the next days' revenue with intervals, chosen by backtest.
- :mod:`~tracer_kit.model.regression`: a number per row (ridge or gradient boosting), held out.
- :mod:`~tracer_kit.model.plots`: each task's chart.
- :mod:`~tracer_kit.model.pricing`: per product, a constant-elasticity demand curve.
- :mod:`~tracer_kit.model.stage`: the registry of model tasks the pipeline fits and applies.
- :mod:`~tracer_kit.model.saved`: the fitted model's skops file.
"""

from tracer_kit.model.churn import ChurnModel, fit_churn, label_values
from tracer_kit.model.regression import RegressionModel, fit_regression
from tracer_kit.model.saved import read_model, save_model
from tracer_kit.model.stage import (
    MODEL_OFF,
    MODEL_TASKS,
    ModelOutcome,
    ModelTask,
    apply_model,
    fit_model,
    headline,
    model_chart,
    model_inputs,
    model_task,
    prediction_id,
    register_model_task,
)

__all__ = [
    "MODEL_OFF",
    "MODEL_TASKS",
    "ChurnModel",
    "ModelOutcome",
    "ModelTask",
    "RegressionModel",
    "apply_model",
    "fit_churn",
    "fit_model",
    "fit_regression",
    "headline",
    "label_values",
    "model_chart",
    "model_inputs",
    "model_task",
    "prediction_id",
    "read_model",
    "register_model_task",
    "save_model",
]
