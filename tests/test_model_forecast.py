"""The revenue forecast on a planted series: the seasonal trend model wins and its intervals hold."""

from __future__ import annotations

import datetime as dt

import numpy as np

from tracer_kit.model.forecast import fit_forecast


def _planted(days: int = 730, seed: int = 5) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = dt.date(2023, 7, 1)
    dates = [start + dt.timedelta(days=i) for i in range(days + 90)]
    t = np.arange(len(dates))
    weekday = np.array([d.weekday() for d in dates])
    mean = 1000 + 0.8 * t + 120 * (weekday >= 5) + 150 * np.sin(2 * np.pi * t / 365.25)
    values = mean + rng.normal(0, 40, len(dates))
    return dates[:days], values[:days], values[days:]


def test_the_trend_and_seasonality_model_wins_the_backtest():
    dates, values, _ = _planted()
    f = fit_forecast(dates, values, horizon=30, origins=4)
    assert f.chosen == "trend_seasonal"
    assert f.scores["trend_seasonal"]["mase"] < f.scores["seasonal_naive"]["mase"]
    assert f.scores["seasonal_naive"]["mase"] < f.scores["naive"]["mase"]
    assert f.dates[0] == dates[-1] + dt.timedelta(days=1) and len(f.prediction) == 30
    assert 0.6 <= f.scores["trend_seasonal"]["coverage_80"] <= 1.0
    assert f.scores["trend_seasonal"]["coverage_95"] >= f.scores["trend_seasonal"]["coverage_80"]
    assert (f.lower_95 <= f.lower_80).all() and (f.lower_80 <= f.prediction).all()
    assert (f.prediction <= f.upper_80).all() and (f.upper_80 <= f.upper_95).all()


def test_intervals_cover_the_future_about_as_promised():
    dates, values, future = _planted()
    f = fit_forecast(dates, values, horizon=90, origins=3)
    inside_95 = ((future >= f.lower_95) & (future <= f.upper_95)).mean()
    inside_80 = ((future >= f.lower_80) & (future <= f.upper_80)).mean()
    assert inside_95 >= 0.85 and inside_80 >= 0.6
    mae = np.abs(future - f.prediction).mean()
    assert mae < 60  # the noise is 40 (sd): about its mean absolute size, 32, plus model error
