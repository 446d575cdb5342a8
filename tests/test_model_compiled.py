"""A saved churn model scored as polars expressions gives scikit-learn's probabilities."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import polars as pl
import pytest

from tracer_kit.model import fit_churn
from tracer_kit.model.compiled import compile_classifier
from tracer_kit.model.stage import classification_scorer

NOISE = [f"signal_{i}" for i in range(8)]
INPUTS = ["tenure", "spend", "tickets", *NOISE, "plan"]


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 4000
    tenure = rng.integers(0, 72, n)
    spend = rng.gamma(2.0, 40.0, n)
    tickets = rng.poisson(1.5, n)
    plan = rng.choice(
        ["basic", "standard", "premium", "gold", "legacy"], n, p=[0.4, 0.3, 0.2, 0.098, 0.002]
    )
    logit = 1.5 - 0.05 * tenure + 0.004 * spend + 0.3 * tickets + 0.6 * (plan == "basic")
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pl.DataFrame(
        {
            "tenure": tenure,
            "spend": spend,
            "tickets": tickets,
            "plan": plan,
            "churned": np.where(y, "yes", "no"),
            **{name: rng.normal(size=n) for name in NOISE},
        }
    ).with_columns(  # some holes, as exports have
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(None)
        .otherwise(pl.col("spend"))
        .alias("spend"),
        pl.when(pl.int_range(pl.len()) % 23 == 0)
        .then(None)
        .otherwise(pl.col("plan"))
        .alias("plan"),
    )


def _odd(rows: pl.DataFrame) -> pl.DataFrame:
    """What new files bring: nulls, NaN, values far outside the training range, unknown plans."""
    i = pl.int_range(pl.len())
    return rows.head(1500).with_columns(
        pl.when(i % 5 == 0).then(pl.col("tenure") * 40).otherwise(pl.col("tenure")).alias("tenure"),
        pl.when(i % 7 == 0)
        .then(None)
        .when(i % 11 == 0)
        .then(float("nan"))
        .when(i % 13 == 0)
        .then(-500.0)
        .otherwise(pl.col("spend"))
        .alias("spend"),
        pl.when(i % 3 == 0)
        .then(None)
        .when(i % 19 == 0)
        .then(pl.lit("platinum"))
        .otherwise(pl.col("plan"))
        .alias("plan"),
    )


@pytest.mark.parametrize(
    ("candidate", "tolerance"),
    [
        ("logistic_regression", 1e-12),
        ("logistic_splines", 1e-12),
        ("hist_gradient_boosting", 0.0),  # a tree's splits need every bit
    ],
)
def test_every_candidate_compiles_to_scikit_learn_s_probabilities(customers, candidate, tolerance):
    model = fit_churn(customers, INPUTS, candidates=[candidate])
    assert model.chosen == candidate
    compiled = compile_classifier(model.estimator, model.inputs)
    assert compiled is not None
    rows = _odd(customers)
    expected = model.estimator.predict_proba(rows.select(model.inputs).to_pandas())[:, 1]
    got = compiled.compiled(rows)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= tolerance
    assert np.ptp(got) > 0.2  # (the rows do score differently)
    shipped = pickle.loads(pickle.dumps(compiled))  # as Spark ships it to the executors
    assert np.array_equal(shipped.compiled(rows), got)


def test_the_scorer_uses_the_compiled_form_and_writes_the_same_predictions(customers):
    model = fit_churn(customers, INPUTS, candidates=["logistic_splines"])
    rows = _odd(customers).with_columns(customer_id=pl.format("C{}", pl.int_range(pl.len())))
    score = classification_scorer(model.estimator, model.inputs, "customer_id")
    scored = score(rows)
    p = model.estimator.predict_proba(rows.select(model.inputs).to_pandas())[:, 1]
    assert scored.columns == ["customer_id", "prediction", "confidence"]
    assert np.max(np.abs(scored["prediction"].to_numpy() - p)) <= 1e-12
    assert np.max(np.abs(scored["confidence"].to_numpy() - np.abs(2 * p - 1))) <= 1e-12


def test_a_step_it_does_not_know_is_left_to_scikit_learn(customers):
    from sklearn.preprocessing import MinMaxScaler

    model = fit_churn(customers, INPUTS, candidates=["logistic_regression"])
    numbers = model.estimator.estimator.steps[0][1].named_transformers_["num"]
    numbers.steps[1] = ("minmaxscaler", MinMaxScaler().fit(np.zeros((2, 3))))
    assert compile_classifier(model.estimator, model.inputs) is None


def test_a_compiled_scorer_that_disagrees_gives_way_to_scikit_learn(customers, caplog):
    model = fit_churn(customers, INPUTS, candidates=["logistic_regression"])
    compiled = compile_classifier(model.estimator, model.inputs)
    assert compiled is not None
    compiled.decision = compiled.decision + 0.5  # a compiler bug, planted
    rows = _odd(customers)
    expected = model.estimator.predict_proba(rows.select(model.inputs).to_pandas())[:, 1]
    with caplog.at_level(logging.WARNING, logger="tracer_kit"):
        got = compiled(rows)
    assert np.array_equal(got, expected)
    assert compiled.broken
    assert "compiled scoring differs from scikit-learn's" in caplog.text
    assert np.array_equal(compiled(rows.head(10)), expected[:10])  # and from then on


def test_compiled_scores_do_not_depend_on_the_batch_or_the_threads(customers):
    """Each row's probability, to the bit, whatever rows come with it (a predict run of ten
    rows scores them as the training run did) and however polars schedules the work.
    """
    model = fit_churn(customers, INPUTS, candidates=["logistic_splines"])
    compiled = compile_classifier(model.estimator, model.inputs)
    assert compiled is not None
    rows = pl.concat([_odd(customers)] * 100)
    first = compiled.compiled(rows)
    assert all(np.array_equal(compiled.compiled(rows), first) for _ in range(10))
    assert np.array_equal(compiled.compiled(rows.slice(40, 10)), first[40:50])
