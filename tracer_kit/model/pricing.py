"""price_optimization's model: per product, a constant-elasticity demand curve and the best observed price.

Per product, ordinary least squares of ``log(quantity)`` on ``log(price)`` with day-of-week
dummies and a linear trend as controls: the price coefficient is the elasticity, given with
its 95% confidence interval (t distribution), R² and n. The revenue-maximising price (with a
unit ``cost``, the profit-maximising one) is searched inside the observed price range only,
never extrapolated. A product with fewer than :data:`MIN_POINTS` days or a log-price spread
under :data:`MIN_LOG_PRICE_SD` is "not identifiable": no number is given for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_LOG_PRICE_SD", "MIN_POINTS", "Elasticity", "expected_quantity", "fit_elasticity"]

#: Fewer days than this and the elasticity is not estimated.
MIN_POINTS = 30
#: Below this standard deviation of log price (about 5% price variation) neither.
MIN_LOG_PRICE_SD = 0.05


@dataclass(frozen=True)
class Elasticity:
    """One product's demand model (``identifiable`` False: ``why`` says which test it failed)."""

    identifiable: bool
    n: int
    elasticity: float | None = None
    lower: float | None = None
    upper: float | None = None
    r2: float | None = None
    best_price: float | None = None
    price_range: tuple[float, float] | None = None
    why: str | None = None
    #: The fitted demand model (:func:`expected_quantity`): coefficients, residual variance, trend scale.
    coefficients: tuple[float, ...] | None = None
    sigma2: float | None = None
    trend: tuple[float, float] | None = None  # mean and scale of the day number


def _design(
    log_price: np.ndarray, weekday: np.ndarray, t: np.ndarray, trend: tuple[float, float]
) -> np.ndarray:
    dummies = np.stack([(weekday == k).astype(float) for k in range(1, 7)], axis=1)
    return np.column_stack([np.ones(len(t)), log_price, dummies, (t - trend[0]) / trend[1]])


def expected_quantity(
    e: Elasticity, price: np.ndarray, weekday: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Expected units sold at each price, weekday (0 = Monday) and day number, from ``e``'s demand model.

    ``exp(x b + sigma2 / 2)``: the mean of the log-normal demand the model describes (the
    ``exp`` of the mean log quantity alone would be its median).
    """
    if e.coefficients is None or e.trend is None or e.sigma2 is None:
        msg = "this product's demand model is not identifiable; it has no expected quantity"
        raise ValueError(msg)
    x = _design(
        np.log(np.asarray(price, float)), np.asarray(weekday), np.asarray(day, float), e.trend
    )
    return np.exp(x @ np.asarray(e.coefficients) + e.sigma2 / 2)


def _best_price(b: float, lo: float, hi: float, cost: float | None) -> float:
    """Where ``(price - cost) * price**b`` peaks inside ``[lo, hi]`` (cost 0: revenue)."""
    grid = np.linspace(lo, hi, 2001)
    margin = grid - (cost or 0.0)
    return float(grid[int(np.argmax(margin * grid**b))])


def fit_elasticity(
    price: np.ndarray,
    quantity: np.ndarray,
    weekday: np.ndarray,
    day: np.ndarray,
    *,
    cost: float | None = None,
) -> Elasticity:
    """One product's elasticity from its daily prices and quantities (quantities > 0 only)."""
    from scipy import stats

    keep = (np.asarray(price) > 0) & (np.asarray(quantity) > 0)
    p, q = np.asarray(price, float)[keep], np.asarray(quantity, float)[keep]
    wd, t = np.asarray(weekday)[keep], np.asarray(day, float)[keep]
    n = len(p)
    if n < MIN_POINTS:
        return Elasticity(False, n, why=f"{n} days with sales (at least {MIN_POINTS} needed)")
    spread = float(np.log(p).std(ddof=1))
    if spread < MIN_LOG_PRICE_SD:
        why = f"prices barely vary (log-price sd {spread:.3f}, at least {MIN_LOG_PRICE_SD} needed)"
        return Elasticity(False, n, why=why)
    trend = (float(t.mean()), max(float(t.std()), 1.0))
    x, y = _design(np.log(p), wd, t, trend), np.log(q)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = n - x.shape[1]
    sigma2 = float(resid @ resid) / dof
    se = float(np.sqrt(sigma2 * np.linalg.pinv(x.T @ x)[1, 1]))
    half = float(stats.t.ppf(0.975, dof)) * se
    b = float(beta[1])
    r2 = 1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    lo, hi = float(p.min()), float(p.max())
    best = _best_price(b, lo, hi, cost)
    return Elasticity(
        True,
        n,
        b,
        b - half,
        b + half,
        r2,
        best,
        (lo, hi),
        None,
        tuple(beta.tolist()),
        sigma2,
        trend,
    )
