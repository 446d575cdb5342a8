"""Deterministic sample data for every built-in blueprint.

Each generator is seeded, so the same arguments always give the same bytes. The data looks
like a real export: skewed values, a few nulls, a few outliers and a handful of
deliberately invalid rows (duplicate ids, negative values, unparsable or impossible dates)
so that quarantine, issues and the quality score have something to show.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "SAMPLES",
    "SAMPLE_END",
    "churn_probability",
    "customers",
    "price_elasticities",
    "prices",
    "revenue",
    "telco",
    "telco_churn_probability",
    "write_samples",
    "write_telco",
]

#: The last day covered by every sample, so runs are reproducible whatever today is.
SAMPLE_END = dt.date(2025, 6, 30)


def churn_probability(
    quiet_days: np.ndarray,
    tenure_days: np.ndarray,
    tickets: np.ndarray,
    usage: np.ndarray,
    plan: np.ndarray,
) -> np.ndarray:
    """The planted churn model of the sample: a known logistic function of the inputs.

    ``logit = -4.1 + 2.6 log1p(quiet / 30) + 1.0 log1p(10 tickets / max(tenure / 30, 1))
    - 0.9 log1p(10 usage / max(tenure, 1)) + 0.6 [basic] - 0.3 [enterprise]``: customers
    quiet for long, with many tickets and little use churn more. On the 10,000-row sample
    its own AUC is about 0.84 and about 20% churn, so a model can be checked against it.
    """
    intensity = tickets / np.maximum(tenure_days / 30, 1)
    rate = usage / np.maximum(tenure_days, 1)
    logit = (
        -4.1
        + 2.6 * np.log1p(quiet_days / 30)
        + 1.0 * np.log1p(10 * intensity)
        - 0.9 * np.log1p(10 * rate)
        + 0.6 * (plan == "basic")
        - 0.3 * (plan == "enterprise")
    )
    return 1 / (1 + np.exp(-logit))


def customers(
    n: int = 10_000, *, seed: int = 7, invalid: bool = True, label: bool = False
) -> pl.DataFrame:
    """A customer_churn sample: one row per customer, all columns as text, as an export would be.

    About 1% of optional values are missing, 0.5% of ``total_value`` are large outliers,
    and (with ``invalid=True``) about 0.5% of rows are broken on purpose. With ``label=True``
    a ``churned`` column (``yes``/``no``) is drawn from :func:`churn_probability` (its own
    random stream, so the other columns are the same either way).
    """
    rng = np.random.default_rng(seed)
    end = np.datetime64(SAMPLE_END)
    tenure = rng.integers(1, 6 * 365, n)
    created = end - tenure.astype("timedelta64[D]")
    # most customers were active recently; a long tail went quiet long ago
    quiet = np.minimum(rng.exponential(45, n).astype(int), tenure)
    last = end - quiet.astype("timedelta64[D]")
    value = np.round(rng.lognormal(6.5, 1.0, n), 2)
    outliers = rng.random(n) < 0.005
    value[outliers] = np.round(value[outliers] * rng.uniform(20, 60, outliers.sum()), 2)
    tickets = rng.poisson(np.clip(tenure / 365, 0.2, None) * 1.5)
    usage = rng.negative_binomial(2, 0.02, n)
    plans = rng.choice(
        np.array(["basic", "standard", "premium", "enterprise", "Basic", "PREMIUM"]),
        n,
        p=[0.38, 0.30, 0.17, 0.09, 0.04, 0.02],
    )
    df = pl.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(1, n + 1)],
            "last_activity_date": np.datetime_as_string(last, unit="D"),
            "account_created_date": np.datetime_as_string(created, unit="D"),
            "total_value": [f"{v:.2f}" for v in value],
            "support_tickets": tickets.astype(str),
            "feature_usage_count": usage.astype(str),
            "plan_type": plans,
        }
    )
    if label:  # (its own random stream: the other columns are the same either way)
        plan = np.char.lower(plans.astype(str))
        df = df.with_columns(
            churned=_draw(churn_probability(quiet, tenure, tickets, usage, plan), seed + 1)
        )
    df = _blank_some(df, rng, ["support_tickets", "feature_usage_count", "plan_type"], 0.01)
    return _break_some(df, rng, n) if invalid else df


def _break_some(df: pl.DataFrame, rng: np.random.Generator, n: int) -> pl.DataFrame:
    """About 0.5% of rows broken on purpose: repeated ids, negative values, bad dates and numbers."""
    k = max(n // 200, 1)
    rows = rng.choice(n, size=5 * k, replace=False).reshape(5, k)
    df = (
        df.with_row_index("_i")
        .with_columns(
            customer_id=pl.when(pl.col("_i").is_in(rows[0].tolist()))
            .then(pl.format("C{}", (pl.col("_i") // 2 + 1).cast(pl.String).str.zfill(6)))
            .otherwise("customer_id"),
            total_value=pl.when(pl.col("_i").is_in(rows[1].tolist()))
            .then(pl.lit("-125.00"))
            .otherwise("total_value"),
            last_activity_date=pl.when(pl.col("_i").is_in(rows[2].tolist()))
            .then(pl.lit("not a date"))
            .when(pl.col("_i").is_in(rows[3].tolist()))
            .then(pl.lit("2019-01-01"))
            .otherwise("last_activity_date"),
            account_created_date=pl.when(pl.col("_i").is_in(rows[3].tolist()))
            .then(pl.lit("2020-01-01"))
            .otherwise("account_created_date"),
            support_tickets=pl.when(pl.col("_i").is_in(rows[4].tolist()))
            .then(pl.lit("two"))
            .otherwise("support_tickets"),
        )
        .drop("_i")
    )
    return df


def _draw(p: np.ndarray, seed: int) -> pl.Series:
    """``yes`` with probability ``p``, else ``no`` (its own random stream)."""
    return pl.Series(np.where(np.random.default_rng(seed).random(len(p)) < p, "yes", "no"))


def _blank_some(
    df: pl.DataFrame, rng: np.random.Generator, columns: list[str], share: float
) -> pl.DataFrame:
    return df.with_columns(
        pl.when(pl.Series(rng.random(df.height) < share)).then(None).otherwise(pl.col(c)).alias(c)
        for c in columns
    )


def revenue(days: int = 730, *, seed: int = 11, invalid: bool = True) -> pl.DataFrame:
    """A revenue_projection sample: several rows per day (one per channel), growth, weekly and
    yearly seasonality (weekends 30% lower; +-15% over the year, peaking in early autumn),
    a few missing days, a few nulls and outliers, and (with ``invalid``) broken rows.
    """  # noqa: D205
    rng = np.random.default_rng(seed)
    start = np.datetime64(SAMPLE_END) - np.timedelta64(days - 1, "D")
    dates = start + np.arange(days).astype("timedelta64[D]")
    dates = dates[rng.random(days) > 0.01]  # about 1% of days have no rows at all
    channels = ["web", "store", "partner"]
    rows_date, rows_channel = np.repeat(dates, 3), np.tile(channels, len(dates))
    t = (rows_date - start).astype(int)
    weekday = (rows_date.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    yearly = 1 + 0.15 * np.sin(
        2 * np.pi * (rows_date.astype("datetime64[D]").view("int64") / 365.25)
    )
    base = 800 * (1 + t / days) * np.where(weekday >= 5, 0.7, 1.0) * yearly
    share = np.select([rows_channel == "web", rows_channel == "store"], [0.5, 0.35], 0.15)
    value = np.round(rng.gamma(20, base * share / 20), 2)
    spikes = rng.random(len(value)) < 0.004
    value[spikes] *= rng.uniform(5, 12, spikes.sum())
    customers_n = np.maximum(rng.poisson(value / 40), 0)
    df = pl.DataFrame(
        {
            "date": np.datetime_as_string(rows_date, unit="D"),
            "channel": rows_channel,
            "revenue": [f"{v:.2f}" for v in value],
            "customer_count": customers_n.astype(str),
        }
    )
    df = _blank_some(df, rng, ["customer_count"], 0.02)
    if invalid:
        bad = rng.choice(df.height, size=8, replace=False)
        df = (
            df.with_row_index("_i")
            .with_columns(
                revenue=pl.when(pl.col("_i").is_in(bad[:4].tolist()))
                .then(pl.lit("n/a"))
                .otherwise("revenue"),
                date=pl.when(pl.col("_i").is_in(bad[4:].tolist()))
                .then(pl.lit("2025-13-45"))
                .otherwise("date"),
            )
            .drop("_i")
        )
    return df


def price_elasticities(products: int = 50, *, seed: int = 23) -> dict[str, float]:
    """The planted elasticity of each product of :func:`prices` (uniform in [-2.5, -0.5])."""
    planted = np.random.default_rng(seed + 1).uniform(-2.5, -0.5, products)
    return {f"P{p:03d}": float(e) for p, e in enumerate(planted, start=1)}


def prices(
    products: int = 50, days: int = 200, *, seed: int = 23, invalid: bool = True
) -> pl.DataFrame:
    """A price_optimization sample: daily sales per product with occasional price moves and
    constant-elasticity demand (each product's elasticity from :func:`price_elasticities`),
    zero-sale days, and broken rows.
    """  # noqa: D205
    planted = list(price_elasticities(products, seed=seed).values())
    rng = np.random.default_rng(seed)
    start = np.datetime64(SAMPLE_END) - np.timedelta64(days - 1, "D")
    frames = []
    for p in range(1, products + 1):
        base_price = float(np.round(rng.uniform(3, 120), 2))
        moves = rng.random(days) < 0.04
        factor = np.cumprod(np.where(moves, rng.uniform(0.85, 1.15, days), 1.0))
        price = np.round(base_price * factor, 2)
        scale = rng.uniform(5, 60)
        demand = scale * (price / base_price) ** planted[p - 1] * rng.lognormal(0, 0.25, days)
        quantity = rng.poisson(demand)
        keep = rng.random(days) > 0.03
        dates = start + np.arange(days).astype("timedelta64[D]")
        frames.append(
            pl.DataFrame(
                {
                    "product_id": f"P{p:03d}",
                    "date": np.datetime_as_string(dates[keep], unit="D"),
                    "price": [f"{v:.2f}" for v in price[keep]],
                    "quantity_sold": quantity[keep].astype(str),
                }
            )
        )
    df = pl.concat(frames)
    order = rng.permutation(df.height)  # exports are rarely sorted
    df = df[order.tolist()]
    if invalid:
        bad = rng.choice(df.height, size=12, replace=False)
        df = (
            df.with_row_index("_i")
            .with_columns(
                price=pl.when(pl.col("_i").is_in(bad[:4].tolist()))
                .then(pl.lit("0"))
                .otherwise("price"),
                quantity_sold=pl.when(pl.col("_i").is_in(bad[4:8].tolist()))
                .then(pl.lit("-3"))
                .otherwise("quantity_sold"),
                date=pl.when(pl.col("_i").is_in(bad[8:].tolist()))
                .then(pl.lit(""))
                .otherwise("date"),
            )
            .drop("_i")
        )
    return df


TELCO_SERVICES = (
    "OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
    "StreamingMovies",
)  # fmt: skip


def telco_churn_probability(
    tenure: np.ndarray,
    monthly: np.ndarray,
    contract: np.ndarray,
    fiber: np.ndarray,
    echeck: np.ndarray,
    tech_support: np.ndarray,
) -> np.ndarray:
    """The planted churn model of :func:`telco`: short tenure (most of all the first months, as
    in the real export), a monthly contract, fiber, an electronic check and high charges raise
    the odds; tech support lowers them.
    """  # noqa: D205
    logit = (
        -0.2
        - 0.75 * np.log1p(tenure)
        + 0.018 * (monthly - 65)
        + np.select([contract == 0, contract == 1], [1.3, 0.0], -1.2)
        + 0.6 * fiber
        + 0.55 * echeck
        - 0.5 * tech_support
    )
    return 1 / (1 + np.exp(-logit))


def _telco_services(rng: np.random.Generator, internet: np.ndarray) -> dict[str, np.ndarray]:
    n = len(internet)
    return {
        s: np.where(internet == "No", "No internet service", rng.choice(["Yes", "No"], n))
        for s in TELCO_SERVICES
    }


def _telco_ids(rng: np.random.Generator, n: int) -> list[str]:
    letters = list("ABCDEFGHJKLMNPQRSTUVWXYZ")
    return [f"{i:04d}-{''.join(rng.choice(letters, 5))}" for i in range(n)]


def _telco_break(df: pl.DataFrame, bad: np.ndarray) -> pl.DataFrame:
    """A third of ``bad`` rows get a negative tenure, a third an unreadable charge, the rest a repeated id."""
    third = max(len(bad) // 3, 1)
    parts = [bad[:third].tolist(), bad[third : 2 * third].tolist(), bad[2 * third :].tolist()]
    row = pl.col("_i")
    return (
        df.with_row_index("_i")
        .with_columns(
            tenure=pl.when(row.is_in(parts[0])).then(pl.lit("-4")).otherwise("tenure"),
            TotalCharges=pl.when(row.is_in(parts[1]))
            .then(pl.lit("n.a."))
            .otherwise("TotalCharges"),
            customerID=pl.when(row.is_in(parts[2]))
            .then(pl.lit("0000-AAAAA"))
            .otherwise("customerID"),
        )
        .drop("_i")
    )


def telco(n: int = 7_043, *, seed: int = 31, broken: int = 12) -> pl.DataFrame:
    """A churn export shaped like the IBM Telco sample (21 columns, all text): ``customerID``,
    ``tenure`` in months, ``TotalCharges`` blank for new customers, ``Churn`` Yes/No, no dates,
    and a planted answer (:func:`telco_churn_probability`). ``broken`` rows carry mistakes
    (a negative tenure, an unreadable charge, a repeated id).
    """  # noqa: D205
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n)
    tenure[rng.choice(n, min(11, n), replace=False)] = 0  # new customers: no charges yet
    contract = rng.choice(3, n, p=[0.55, 0.21, 0.24])
    internet = rng.choice(["DSL", "Fiber optic", "No"], n, p=[0.34, 0.44, 0.22])
    payment = rng.choice(
        [
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ],
        n,
        p=[0.34, 0.23, 0.22, 0.21],
    )
    services = _telco_services(rng, internet)
    base = np.where(internet == "Fiber optic", 70, np.where(internet == "DSL", 45, 20))
    extra = 5 * sum((services[s] == "Yes") for s in TELCO_SERVICES)
    monthly = np.round(base + extra + rng.normal(0, 4, n), 2)
    total = np.round(monthly * tenure * rng.uniform(0.95, 1.05, n), 2)
    p = telco_churn_probability(
        tenure, monthly, contract, internet == "Fiber optic", payment == "Electronic check",
        services["TechSupport"] == "Yes",
    )  # fmt: skip
    churn = np.where(np.random.default_rng(seed + 1).random(n) < p, "Yes", "No")
    phone = rng.choice(["Yes", "No"], n, p=[0.9, 0.1])
    df = pl.DataFrame(
        {
            "customerID": _telco_ids(rng, n),
            "gender": rng.choice(["Female", "Male"], n),
            "SeniorCitizen": rng.choice(["0", "1"], n, p=[0.84, 0.16]),
            "Partner": rng.choice(["Yes", "No"], n),
            "Dependents": rng.choice(["Yes", "No"], n, p=[0.3, 0.7]),
            "tenure": tenure.astype(str),
            "PhoneService": phone,
            "MultipleLines": np.where(
                phone == "No", "No phone service", rng.choice(["Yes", "No"], n)
            ),
            "InternetService": internet,
            **services,
            "Contract": np.array(["Month-to-month", "One year", "Two year"])[contract],
            "PaperlessBilling": rng.choice(["Yes", "No"], n, p=[0.6, 0.4]),
            "PaymentMethod": payment,
            "MonthlyCharges": [f"{m:.2f}" for m in monthly],
            "TotalCharges": [
                " " if t == 0 else f"{v:.2f}" for t, v in zip(tenure, total, strict=True)
            ],
            "Churn": churn,
        }
    )
    return _telco_break(df, rng.choice(n, broken, replace=False))


def write_telco(path: str | Path, n: int = 7_043, *, seed: int = 31) -> Path:
    """Write :func:`telco` as the real export is: tab-separated despite its ``.csv`` name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    telco(n, seed=seed).write_csv(path, separator="\t")
    return path


SAMPLES = {"customers.csv": customers, "revenue.csv": revenue, "prices.csv": prices}


def write_samples(folder: str | Path = "data/samples", *, n: int = 10_000) -> list[Path]:
    """Write every built-in sample into ``folder`` (CSV); return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SAMPLES.items():
        path = folder / name
        (make(n, label=True) if name == "customers.csv" else make()).write_csv(path)
        written.append(path)
    return written
