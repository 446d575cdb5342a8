"""Elasticities on planted demand: recovered within their intervals; thin data gets no number."""

from __future__ import annotations

import numpy as np
import pytest

from tracer_kit.model.pricing import fit_elasticity


def _product(elasticity: float, *, days: int = 365, price_sd: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    day = np.arange(days)
    weekday = day % 7
    price = 20 * np.exp(rng.normal(0, price_sd, days))
    log_q = 4 + elasticity * np.log(price / 20) + 0.2 * (weekday >= 5) + 0.0005 * day
    quantity = np.exp(log_q + rng.normal(0, 0.1, days))
    return price, quantity, weekday, day


@pytest.mark.parametrize("planted", [-2.5, -1.5, -0.6])
def test_planted_elasticity_is_inside_its_interval(planted):
    e = fit_elasticity(*_product(planted, seed=int(-planted * 10)))
    assert e.identifiable and e.n == 365
    assert e.lower < planted < e.upper and e.upper - e.lower < 0.2
    assert e.r2 > 0.6  # noise sd 0.1 on log quantity: about 0.69 for the least elastic one


def test_best_price_stays_inside_the_observed_range():
    price, *rest = _product(-2.5)
    elastic = fit_elasticity(price, *rest)
    assert elastic.best_price == pytest.approx(price.min(), rel=1e-3)  # revenue falls with price
    inelastic = fit_elasticity(*_product(-0.6))
    assert inelastic.best_price == pytest.approx(inelastic.price_range[1], rel=1e-3)
    # with a unit cost of 12 and elasticity -2.5 profit peaks at 12 * 2.5 / 1.5 = 20
    with_cost = fit_elasticity(price, *rest, cost=12.0)
    assert with_cost.best_price == pytest.approx(20.0, rel=0.05)


def test_too_little_variation_or_data_is_not_identifiable():
    flat = fit_elasticity(*_product(-1.5, price_sd=0.01))
    assert not flat.identifiable and flat.elasticity is None and "barely vary" in flat.why
    short = fit_elasticity(*_product(-1.5, days=20))
    assert not short.identifiable and "20 days" in short.why
