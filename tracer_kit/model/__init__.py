"""The model stage: a baseline model per blueprint, honestly evaluated on data it did not see.

- :mod:`~tracer_kit.model.churn`: who will churn (calibrated classifier, held-out metrics).
- :mod:`~tracer_kit.model.stage`: the registry of blueprint models the pipeline runs.
"""

from tracer_kit.model.churn import ChurnModel, fit_churn, label_values
from tracer_kit.model.stage import MODELS, ModelOutcome, fit_model

__all__ = ["MODELS", "ChurnModel", "ModelOutcome", "fit_churn", "fit_model", "label_values"]
