"""The model stage: a baseline model per blueprint, honestly evaluated on data it did not see.

- :mod:`~tracer_kit.model.churn`: who will churn (calibrated classifier, held-out metrics).
"""

from tracer_kit.model.churn import ChurnModel, fit_churn, label_values

__all__ = ["ChurnModel", "fit_churn", "label_values"]
