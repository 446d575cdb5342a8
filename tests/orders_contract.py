"""An orders file with a planted answer, its customers, and the contracts that declare both.

``margin = 3 quantity - 2 unit_price + 10 discount + 5 + noise(sd 0.5)``: a regression
must find those coefficients. Three orders name customer C999, whom the customers file
lacks (``not_in_reference``); two were shipped before they were ordered (a row rule).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

COEFFICIENTS = {"quantity": 3.0, "unit_price": -2.0, "discount": 10.0}
INTERCEPT = 5.0
MISSING_CUSTOMER_ROWS = (7, 120, 333)  # source_row, 1-based
SHIPPED_EARLY_ROWS = (15, 250)

CUSTOMERS_YAML = """\
name: customers
identifier: customer_id
key: [customer_id]
fields:
  customer_id: {kind: id, required: true, pattern: '^C\\d+$'}
  name:        {kind: string, pii: true}
  since:       {kind: date, required: true}
"""

ORDERS_YAML = """\
name: orders
description: Order lines with a margin to predict.
identifier: order_id
key: [order_id]
fields:
  order_id:    {kind: id, required: true}
  customer_id: {kind: id, required: true, references: customers.customer_id}
  order_date:  {kind: date, required: true}
  ship_date:   {kind: date, required: true}
  quantity:    {kind: int, required: true, ge: 1}
  unit_price:  {kind: float, required: true, gt: 0}
  discount:    {kind: float, ge: 0, le: 1}
  margin:      {kind: float}
rules:
  - {name: shipped_after_ordered, check: "ship_date >= order_date", severity: medium}
  - {name: discount_needs_quantity, check: "discount <= 0.5 or quantity >= 2", severity: low}
features:
  revenue: "quantity * unit_price * (1 - coalesce(discount, 0))"
  revenue_ma_3: "avg(revenue) over (partition by customer_id order by order_date, order_id rows between 2 preceding and current row)"
model: {task: regression, target: margin, inputs: [quantity, unit_price, discount]}
thresholds: {max_high: 10, min_score: 50}
"""


def write_customers(path: Path, n: int = 50) -> Path:
    """``n`` customers, C1 .. Cn."""
    start = dt.date(2020, 1, 1)
    lines = ["customer_id,name,since"] + [
        f"C{i},Customer {i},{start + dt.timedelta(days=7 * i)}" for i in range(1, n + 1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_orders(path: Path, n: int = 400, *, seed: int = 3) -> Path:
    """``n`` orders with the planted margin, the missing customers and the early shipments."""
    rng = random.Random(seed)
    lines = ["order_id,customer_id,order_date,ship_date,quantity,unit_price,discount,margin"]
    for row in range(1, n + 1):
        ordered = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 300))
        shipped = ordered + dt.timedelta(
            days=-3 if row in SHIPPED_EARLY_ROWS else rng.randrange(0, 6)
        )
        customer = "C999" if row in MISSING_CUSTOMER_ROWS else f"C{rng.randrange(1, 51)}"
        quantity = rng.randrange(1, 21)
        price = round(rng.uniform(1, 50), 2)
        discount = rng.choice([0, 0.1, 0.2, 0.3])
        margin = (
            COEFFICIENTS["quantity"] * quantity
            + COEFFICIENTS["unit_price"] * price
            + COEFFICIENTS["discount"] * discount
            + INTERCEPT
            + rng.gauss(0, 0.5)
        )
        lines.append(
            f"O{row:05d},{customer},{ordered},{shipped},{quantity},{price},{discount},{margin:.4f}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_project(root: Path) -> tuple[Path, Path]:
    """The two contracts in ``root/blueprints`` and the two files; returns (customers, orders)."""
    (root / "blueprints").mkdir(exist_ok=True)
    (root / "blueprints" / "customers.yaml").write_text(CUSTOMERS_YAML, encoding="utf-8")
    (root / "blueprints" / "orders.yaml").write_text(ORDERS_YAML, encoding="utf-8")
    return write_customers(root / "customers.csv"), write_orders(root / "orders.csv")
