"""revenue_projection's model: the next days' revenue with prediction intervals, chosen by backtest.

Candidates: ``naive`` (the last day repeated), ``seasonal_naive`` (the same weekday a week
before) and ``trend_seasonal`` (a ridge regression on a linear trend, day-of-week dummies
and yearly Fourier terms). Each is scored by a rolling-origin backtest (at least three
origins, each forecasting ``horizon`` days from the data before it) with MASE (scaled by the
in-sample seasonal-naive error) and sMAPE; the lowest mean MASE wins. Intervals come from
the chosen model's backtest errors pooled over every origin and step ahead (empirical 10/90%
and 2.5/97.5% quantiles). The coverage reported is out of sample: each origin's errors
against the interval the other origins give.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracer_kit.errors import ConfigError

__all__ = [
    "CANDIDATES",
    "Candidate",
    "Forecast",
    "backtest",
    "day_numbers",
    "fit_forecast",
    "forecast_from",
]

#: ``fit(history, days) -> state``: what a candidate learns (JSON-able numbers).
Fitter = Callable[[np.ndarray, np.ndarray], dict[str, Any]]
#: ``predict(state, history, days, future) -> values`` for the future day numbers.
Predictor = Callable[[dict[str, Any], np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _nothing(history: np.ndarray, days: np.ndarray) -> dict[str, Any]:
    return {}


def _naive(
    state: dict[str, Any], history: np.ndarray, days: np.ndarray, future: np.ndarray
) -> np.ndarray:
    return np.full(len(future), history[-1])


def _seasonal_naive(
    state: dict[str, Any], history: np.ndarray, days: np.ndarray, future: np.ndarray
) -> np.ndarray:
    """The same weekday in the history's last week (by day number, so any future date works)."""
    last_week = dict(zip(days[-7:] % 7, history[-7:], strict=True))
    return np.array([last_week[d % 7] for d in future])


def _design(days: np.ndarray, start: int) -> np.ndarray:
    """Trend, day-of-week dummies (Monday dropped) and two yearly Fourier pairs, per day number."""
    t = (days - start) / 365.25
    weekday = (days + 3) % 7  # day 0 (1970-01-01) was a Thursday; 0 = Monday
    dummies = np.stack([(weekday == k).astype(float) for k in range(1, 7)], axis=1)
    angle = 2 * np.pi * days / 365.25
    fourier = np.stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)], axis=1)
    return np.column_stack([t, dummies, fourier])


def _fit_trend_seasonal(history: np.ndarray, days: np.ndarray) -> dict[str, Any]:
    from sklearn.linear_model import Ridge

    start = int(days[0])
    model = Ridge(alpha=1.0).fit(_design(days, start), history)
    return {"start": start, "coef": model.coef_.tolist(), "intercept": float(model.intercept_)}


def _trend_seasonal(
    state: dict[str, Any], history: np.ndarray, days: np.ndarray, future: np.ndarray
) -> np.ndarray:
    design = _design(future, state["start"])
    return design @ np.asarray(state["coef"]) + state["intercept"]


@dataclass(frozen=True)
class Candidate:
    """A forecasting model: what it learns from a history, and how it predicts from one."""

    fit: Fitter
    predict: Predictor
    text: str


#: The candidate models by name.
CANDIDATES: dict[str, Candidate] = {
    "naive": Candidate(_nothing, _naive, "the last day repeated"),
    "seasonal_naive": Candidate(_nothing, _seasonal_naive, "the same weekday a week before"),
    "trend_seasonal": Candidate(
        _fit_trend_seasonal,
        _trend_seasonal,
        "ridge regression on a linear trend, weekday dummies and yearly Fourier terms",
    ),
}


def day_numbers(dates: Sequence[dt.date]) -> np.ndarray:
    """Days since 1970-01-01 of each date."""
    epoch = dt.date(1970, 1, 1).toordinal()
    return np.array([d.toordinal() - epoch for d in dates], dtype=np.int64)


@dataclass
class Forecast:
    """The chosen model's forecast with 80% and 95% intervals, and how every candidate backtested."""

    chosen: str
    dates: list[dt.date]
    prediction: np.ndarray
    lower_80: np.ndarray
    upper_80: np.ndarray
    lower_95: np.ndarray
    upper_95: np.ndarray
    scores: dict[str, dict[str, float]]  # candidate -> mase, smape, coverage_80, coverage_95
    origins: int = 0
    errors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: What :func:`forecast_from` needs: the chosen model's state and the error quantiles.
    saved: dict[str, Any] = field(default_factory=dict)


def _mase_scale(history: np.ndarray) -> float:
    diffs = np.abs(history[7:] - history[:-7])
    return float(diffs.mean()) if len(diffs) and diffs.mean() > 0 else 1.0


def _smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.where(denominator > 0, 2 * np.abs(actual - predicted) / denominator, 0.0)
    return float(100 * ratio.mean())


def backtest(
    values: np.ndarray, days: np.ndarray, horizon: int, origins: int
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Per candidate: errors (origin x step), absolute actuals, and the mean MASE over origins."""
    n = len(values)
    starts = [n - horizon * (k + 1) for k in reversed(range(origins))]
    if starts[0] < 28:
        msg = f"a backtest of {origins} origins of {horizon} days needs at least {28 + horizon * origins} days"
        raise ValueError(msg)
    out = {}
    for name, model in CANDIDATES.items():
        errors, mases, smapes = [], [], []
        for s in starts:
            history, actual = values[:s], values[s : s + horizon]
            state = model.fit(history, days[:s])
            predicted = model.predict(state, history, days[:s], days[s : s + horizon])
            errors.append(actual - predicted)
            mases.append(np.abs(actual - predicted).mean() / _mase_scale(history))
            smapes.append(_smape(actual, predicted))
        out[name] = (np.array(errors), np.array(mases), float(np.mean(smapes)))
    return out


def _coverage(errors: np.ndarray, lo_q: float, hi_q: float) -> float:
    """Share of each origin's errors inside the interval built from the other origins' errors."""
    inside = []
    for k in range(len(errors)):
        others = np.delete(errors, k, axis=0)
        lo, hi = np.quantile(others, [lo_q, hi_q])
        inside.append(((errors[k] >= lo) & (errors[k] <= hi)).mean())
    return float(np.mean(inside))


def fit_forecast(
    dates: Sequence[dt.date],
    values: np.ndarray,
    *,
    horizon: int = 30,
    origins: int = 3,
    candidates: Sequence[str] | None = None,
) -> Forecast:
    """Choose a model by backtest and forecast ``horizon`` days after the last date.

    ``dates`` are consecutive days (fill missing days before calling); ``values`` their revenue.
    ``candidates`` limits the choice (default: every model in :data:`CANDIDATES`).
    """
    unknown = sorted(set(candidates or ()) - set(CANDIDATES))
    if unknown:
        msg = f"model.candidates: unknown forecast model {unknown[0]!r}; known: {', '.join(CANDIDATES)}"
        raise ConfigError(msg)
    values = np.asarray(values, dtype=float)
    days = day_numbers(dates)
    tested = backtest(values, days, horizon, origins)
    scores = {}
    for name, (errors, mases, smape) in tested.items():
        scores[name] = {
            "mase": float(mases.mean()),
            "smape": smape,
            "coverage_80": _coverage(errors, 0.1, 0.9),
            "coverage_95": _coverage(errors, 0.025, 0.975),
        }
    allowed = [c for c in (candidates or CANDIDATES) if c in scores]
    chosen = min(allowed, key=lambda k: scores[k]["mase"])
    errors = tested[chosen][0]
    saved = {
        "model": chosen,
        "state": CANDIDATES[chosen].fit(values, days),
        "quantiles": np.quantile(errors, [0.025, 0.1, 0.9, 0.975]).tolist(),
    }
    forecast = forecast_from(saved, dates, values, horizon)
    forecast.scores, forecast.origins = scores, origins
    forecast.errors = {k: v[0] for k, v in tested.items()}
    return forecast


def forecast_from(
    saved: dict[str, Any], dates: Sequence[dt.date], values: np.ndarray, horizon: int
) -> Forecast:
    """The saved model's forecast of ``horizon`` days after ``dates[-1]``, without refitting.

    ``saved`` is :attr:`Forecast.saved`: the chosen model, its fitted state and the backtest
    error quantiles the intervals are built from.
    """
    values = np.asarray(values, dtype=float)
    days = day_numbers(dates)
    future = days[-1] + 1 + np.arange(horizon)
    model = CANDIDATES[saved["model"]]
    prediction = model.predict(saved["state"], values, days, future)
    lo95, lo80, hi80, hi95 = saved["quantiles"]
    return Forecast(
        chosen=saved["model"],
        dates=[dates[-1] + dt.timedelta(days=int(i) + 1) for i in range(horizon)],
        prediction=prediction,
        lower_80=prediction + lo80,
        upper_80=prediction + hi80,
        lower_95=prediction + lo95,
        upper_95=prediction + hi95,
        scores={},
        saved=saved,
    )
