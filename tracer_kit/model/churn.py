"""customer_churn's model: who will churn, as a calibrated probability, evaluated on held-out customers.

With a ``churned`` label (yes/no, true/false, 1/0, y/n, any case):

1. a seeded split by customer, stratified on the label (default 80/20);
2. a leakage guard decided by cross-validation on the training part: a single input that
   alone reaches an AUC above 0.99 is left out of the model (and reported);
3. candidates, each a scikit-learn pipeline whose preprocessing is fitted on the training
   part only: a regularised logistic regression, the same over cubic splines of each number
   (a smooth curve per input: churn often falls fastest in the first months) and a
   ``HistGradientBoostingClassifier``, chosen by cross-validated log loss on the training
   part, then calibrated (sigmoid: the ranking is kept, no probability is exactly 0 or 1);
4. on the held-out part: ROC AUC, PR AUC, Brier score, log loss, lift and capture rate in
   the top decile, each beside the trivial baseline (everyone at the training base rate),
   the ROC and calibration curves, and permutation importance of the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tracer_kit.errors import ConfigError
from tracer_kit.model.compiled import sklearn_probabilities

__all__ = [
    "LEAKAGE_AUC",
    "CalibratedModel",
    "ChurnModel",
    "chosen_candidates",
    "fit_churn",
    "input_preprocessor",
    "label_values",
    "permutation_drivers",
    "split_inputs",
]

#: A single input that alone separates the classes better than this is a leak.
LEAKAGE_AUC = 0.99
#: Cross-validation folds of the leakage guard, the model choice and the calibration.
FOLDS = 3
_YES = ("yes", "true", "1", "y", "1.0")
_NO = ("no", "false", "0", "n", "0.0")


def label_values(label: pl.Expr, positive: str | None = None) -> pl.Expr:
    """The label as 1 / 0 (null when missing or unreadable): yes/no, true/false, 1/0, y/n, any
    case; with ``positive``, that value (any case) is 1 and any other non-empty value 0.
    """  # noqa: D205
    text = label.cast(pl.String).str.strip_chars().str.to_lowercase()
    if positive is not None:
        return (
            pl.when(text == positive.strip().lower())
            .then(pl.lit(1, dtype=pl.Int8))
            .when(text.is_not_null() & (text != ""))
            .then(pl.lit(0, dtype=pl.Int8))
        )
    return (
        pl.when(text.is_in(_YES))
        .then(pl.lit(1, dtype=pl.Int8))
        .when(text.is_in(_NO))
        .then(pl.lit(0, dtype=pl.Int8))
    )


@dataclass
class ChurnModel:
    """A fitted, calibrated churn model and how it did on customers it never saw."""

    estimator: Any  # the calibrated scikit-learn pipeline: predict_proba over ``inputs``
    chosen: str
    inputs: list[str]
    left_out: dict[str, float]  # leaking input -> its cross-validated AUC alone
    cv_log_loss: dict[str, float]  # candidate -> mean cross-validated log loss (training part)
    metrics: dict[str, float]  # held-out metrics
    baseline: dict[str, float]  # the same metrics for "everyone at the base rate"
    importance: list[dict[str, Any]]  # input, mean and std drop in ROC AUC when permuted
    roc: dict[str, list[float]] = field(default_factory=dict)
    calibration: dict[str, list[float]] = field(default_factory=dict)
    confusion: dict[str, float] = field(default_factory=dict)
    rows_train: int = 0
    rows_test: int = 0

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Churn probability of each row of ``frame`` (the model's inputs must be present)."""
        return sklearn_probabilities(self.estimator, self.inputs, frame)


def _split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    return train_test_split(index, test_size=test_size, random_state=seed, stratify=y)


def split_inputs(frame: pl.DataFrame, inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """The inputs that are numbers (or flags), and those that are text (categories)."""
    numeric = [c for c in inputs if frame.schema[c].is_numeric() or frame.schema[c] == pl.Boolean]
    text = [c for c in inputs if frame.schema[c] == pl.String]
    return numeric, text


def input_preprocessor(numeric: list[str], text: list[str], *, splines: bool = False) -> Any:
    """Median-imputed, scaled numbers (with ``splines``, a cubic spline basis each) and
    one-hot categories (rare ones pooled), fitted on whatever part it is given.
    """  # noqa: D205
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

    parts = []
    if numeric:
        steps = [SimpleImputer(strategy="median"), StandardScaler()]
        if splines:  # a smooth curve per number (churn falls fastest in the first months)
            steps.append(SplineTransformer(n_knots=5, degree=3, extrapolation="linear"))
        parts.append(("num", make_pipeline(*steps), numeric))
    if text:
        encoder = OneHotEncoder(handle_unknown="ignore", min_frequency=10, sparse_output=False)
        parts.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), text))
    return ColumnTransformer(parts, remainder="drop")


def _candidates(numeric: list[str], text: list[str], seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return {
        "logistic_regression": make_pipeline(
            input_preprocessor(numeric, text), LogisticRegression(C=1.0, max_iter=2000)
        ),
        "logistic_splines": make_pipeline(
            input_preprocessor(numeric, text, splines=True),
            LogisticRegression(C=1.0, max_iter=3000),
        ),
        "hist_gradient_boosting": make_pipeline(
            input_preprocessor(numeric, text),
            HistGradientBoostingClassifier(
                max_iter=100, learning_rate=0.1, early_stopping=True, random_state=seed
            ),
        ),
    }


def _single_input(frame: pl.DataFrame, name: str) -> np.ndarray:
    """One input as a numeric column for a shallow tree: text as level codes, nulls as -1."""
    col = pl.col(name)
    if frame.schema[name] == pl.String:
        col = col.cast(pl.Categorical).to_physical().cast(pl.Float64)
    return frame.select(col.cast(pl.Float64).fill_nan(None).fill_null(-1.0)).to_numpy()


def _leaks(frame: pl.DataFrame, y: np.ndarray, inputs: list[str], seed: int) -> dict[str, float]:
    """Inputs whose cross-validated AUC alone (a shallow tree on that input) is above the limit."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    found = {}
    for name in inputs:
        tree = DecisionTreeClassifier(max_depth=4, random_state=seed)
        column = _single_input(frame, name)
        auc = float(cross_val_score(tree, column, y, cv=folds, scoring="roc_auc").mean())
        if auc > LEAKAGE_AUC:
            found[name] = round(auc, 4)
    return found


def _top_decile(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(lift, capture rate) of the 10% highest scores (ties broken by position, stable)."""
    k = max(int(np.ceil(0.1 * len(y))), 1)
    top = np.argsort(-p, kind="stable")[:k]
    rate = y.mean()
    hit = y[top].mean()
    return (float(hit / rate) if rate else 0.0, float(y[top].sum() / y.sum()) if y.sum() else 0.0)


#: The probability above which the confusion table calls a customer a churner.
THRESHOLD = 0.5


def confusion(y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    """Held-out customers by truth and by call at ``threshold``: true and false positives and negatives."""
    called = p >= threshold
    return {
        "threshold": threshold,
        "true_positive": int((called & (y == 1)).sum()),
        "false_positive": int((called & (y == 0)).sum()),
        "false_negative": int((~called & (y == 1)).sum()),
        "true_negative": int((~called & (y == 0)).sum()),
    }


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, log loss, top-decile lift and capture rate."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    constant = np.ptp(p) == 0
    lift, capture = _top_decile(y, p)
    return {
        "roc_auc": 0.5 if constant else float(roc_auc_score(y, p)),
        "pr_auc": float(y.mean()) if constant else float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "lift_top_decile": 1.0 if constant else lift,
        "capture_top_decile": 0.1 if constant else capture,
    }


class CalibratedModel:
    """A fitted classifier and the calibrator fitted on its out-of-fold probabilities.

    The same model ``CalibratedClassifierCV(..., ensemble=False)`` builds, from the
    cross-validated predictions the model choice already made (no second round of fits).
    ``method`` is ``isotonic`` (an ``IsotonicRegression``) or ``sigmoid`` (a logistic
    regression on the probability's logit).
    """

    _estimator_type = "classifier"

    def __init__(self, estimator: Any = None, calibrator: Any = None, method: str = "sigmoid"):
        self.estimator = estimator
        self.calibrator = calibrator
        self.method = method
        self.classes_ = np.array([0, 1])

    def fit(self, x: Any, y: Any) -> CalibratedModel:
        """Already fitted (scikit-learn's inspection tools expect the method)."""
        return self

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
        )

    def calibrate(self, p: np.ndarray) -> np.ndarray:
        """The calibrated churn probability of the classifier's ``p``."""
        return _calibrate(self.calibrator, self.method, p)

    def predict_proba(self, x: Any) -> np.ndarray:
        """[P(retained), P(churned)] per row."""
        q = self.calibrate(self.estimator.predict_proba(x)[:, 1])
        return np.column_stack([1 - q, q])

    def predict(self, x: Any) -> np.ndarray:
        """1 where the churn probability is at least 0.5."""
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p)).reshape(-1, 1)


def _calibrate(calibrator: Any, method: str, p: np.ndarray) -> np.ndarray:
    if method == "isotonic":
        return np.clip(calibrator.predict(p), 0.0, 1.0)
    return calibrator.predict_proba(_logit(p))[:, 1]


def _calibrator(p: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    """Sigmoid (Platt) calibration of the out-of-fold probabilities.

    Strictly increasing, so the model's ranking (its ROC AUC) is kept whole and no customer
    gets a probability of exactly 0 or 1. (Isotonic regression, used before for 1,000 rows
    and more, is a step function: it tied customers, lowering the AUC, and gave hundreds of
    them exactly 0 or 1 with "confidence 1.0". Models saved with it still load.)
    """
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e6).fit(_logit(p), y), "sigmoid"


def _choose(
    x: Any,
    y: np.ndarray,
    numeric: list[str],
    text: list[str],
    seed: int,
    names: Sequence[str] | None,
) -> tuple[str, Any, dict[str, float]]:
    """The candidate with the lowest cross-validated log loss, fitted on ``x`` and calibrated
    on its out-of-fold probabilities.
    """  # noqa: D205
    from sklearn.base import clone
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    candidates = chosen_candidates(_candidates(numeric, text, seed), names, "churn")
    out_of_fold = {
        name: cross_val_predict(m, x, y, cv=folds, method="predict_proba")[:, 1]
        for name, m in candidates.items()
    }
    scores = {name: float(log_loss(y, p, labels=[0, 1])) for name, p in out_of_fold.items()}
    chosen = min(scores, key=scores.__getitem__)
    calibrator, method = _calibrator(out_of_fold[chosen], y)
    model = CalibratedModel(clone(candidates[chosen]).fit(x, y), calibrator, method)
    return chosen, model, {k: round(v, 6) for k, v in scores.items()}


def permutation_drivers(
    model: Any,
    x: Any,
    y: np.ndarray,
    seed: int,
    *,
    scoring: str = "roc_auc",
    name: str = "auc_drop",
) -> list[dict[str, Any]]:
    """Permutation importance on the held-out part (3 shuffles per input): how much the
    ``scoring`` worsens per input, under ``name``, largest first.
    """  # noqa: D205
    from sklearn.inspection import permutation_importance

    perm = permutation_importance(model, x, y, scoring=scoring, n_repeats=3, random_state=seed)
    rows = [
        {"input": c, name: float(m), "std": float(s)}
        for c, m, s in zip(x.columns, perm.importances_mean, perm.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: -r[name])


def chosen_candidates(
    candidates: dict[str, Any], names: Sequence[str] | None, what: str
) -> dict[str, Any]:
    """The candidates named in the config's ``model.candidates`` (all without it).

    Raises
    ------
    ConfigError
        For a name no candidate has.
    """
    if not names:
        return candidates
    unknown = sorted(set(names) - set(candidates))
    if unknown:
        msg = (
            f"model.candidates: unknown {what} model {unknown[0]!r}; known: {', '.join(candidates)}"
        )
        raise ConfigError(msg)
    return {k: v for k, v in candidates.items() if k in names}


def fit_churn(
    frame: pl.DataFrame,
    inputs: Sequence[str],
    *,
    label: str = "churned",
    test_size: float = 0.2,
    seed: int = 0,
    candidates: Sequence[str] | None = None,
    positive: str | None = None,
) -> ChurnModel:
    """Fit, choose, calibrate and evaluate a churn model on ``frame`` (one row per customer).

    Raises
    ------
    ConfigError
        When the label has too few rows of either class to split and evaluate.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    rows = frame.filter(label_values(pl.col(label), positive).is_not_null())
    y = rows.select(label_values(pl.col(label), positive)).to_series().to_numpy().astype(int)
    if min(int(y.sum()), int(len(y) - y.sum())) < 20:
        msg = f"{label!r} needs at least 20 churned and 20 retained customers to fit and evaluate a model"
        raise ConfigError(msg, column=label)
    numeric, text = split_inputs(rows, inputs)
    train, test = _split(y, test_size, seed)
    left_out = _leaks(rows[train], y[train], numeric + text, seed)
    numeric = [c for c in numeric if c not in left_out]
    text = [c for c in text if c not in left_out]
    x = rows.select(numeric + text).to_pandas()
    chosen, model, scores = _choose(x.iloc[train], y[train], numeric, text, seed, candidates)
    p = model.predict_proba(x.iloc[test])[:, 1]
    y_test = y[test]
    fpr, tpr, _ = roc_curve(y_test, p)
    observed, predicted = calibration_curve(y_test, p, n_bins=10, strategy="quantile")
    return ChurnModel(
        estimator=model,
        chosen=chosen,
        inputs=numeric + text,
        left_out=left_out,
        cv_log_loss=scores,
        metrics=evaluate(y_test, p),
        baseline=evaluate(y_test, np.full(len(y_test), y[train].mean())),
        importance=permutation_drivers(model, x.iloc[test], y_test, seed),
        roc={"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        calibration={"predicted": predicted.tolist(), "observed": observed.tolist()},
        confusion=confusion(y_test, p),
        rows_train=len(train),
        rows_test=len(test),
    )
