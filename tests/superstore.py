"""A Superstore-style retail export as an EU spreadsheet writes it: ``;``, decimal commas, DD/MM/YYYY.

The columns, kinds and value sets follow the public Superstore sample (21 columns, one row
per order line); the rows are generated here, deterministically, so the tests own them.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

HEADER = [
    "Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode", "Customer ID",
    "Customer Name", "Segment", "Country", "City", "State", "Postal Code", "Region",
    "Product ID", "Category", "Sub-Category", "Product Name", "Sales", "Quantity",
    "Discount", "Profit",
]  # fmt: skip

SHIP_MODES = ["First Class", "Same Day", "Second Class", "Standard Class"]
SEGMENTS = ["Consumer", "Corporate", "Home Office"]
CITIES = [
    ("Henderson", "Kentucky", 42420, "South"), ("Los Angeles", "California", 90036, "West"),
    ("Fort Lauderdale", "Florida", 33311, "South"), ("Seattle", "Washington", 98103, "West"),
    ("Philadelphia", "Pennsylvania", 19140, "East"), ("Houston", "Texas", 77095, "Central"),
    ("Chicago", "Illinois", 60610, "Central"), ("New York City", "New York", 10035, "East"),
]  # fmt: skip
PRODUCTS = [
    ("FUR-BO-10001798", "Furniture", "Bookcases", "Bush Somerset Collection Bookcase"),
    ("FUR-CH-10000454", "Furniture", "Chairs", "Hon Deluxe Fabric Upholstered Stacking Chairs"),
    ("OFF-LA-10000240", "Office Supplies", "Labels", "Self-Adhesive Address Labels"),
    ("OFF-ST-10000760", "Office Supplies", "Storage", "Eldon Fold 'N Roll Cart System"),
    ("TEC-PH-10002033", "Technology", "Phones", "Konftel 250 Conference phone - Charcoal black"),
    ("TEC-AC-10002167", "Technology", "Accessories", "Imation 8GB Mini TravelDrive USB 2.0"),
    ("OFF-BI-10003910", "Office Supplies", "Binders", "DXL Angle-View Binders with Locking Rings"),
]
NAMES = ["Claire Gute", "Darrin Van Huff", "Sean O'Donnell", "Brosina Hoffman", "Andrew Allen"]


def _eu(value: float, places: int) -> str:
    return f"{value:.{places}f}".replace(".", ",")


def superstore_rows(
    n: int, *, seed: int = 7, start: dt.date = dt.date(2016, 1, 3)
) -> list[list[str]]:
    """``n`` order lines (1 to 3 lines per order), as text cells."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    order = 0
    while len(rows) < n:
        order += 1
        ordered = start + dt.timedelta(days=rng.randrange(0, 700))
        shipped = ordered + dt.timedelta(days=rng.randrange(0, 8))
        city, state, postal, region = rng.choice(CITIES)
        customer = rng.randrange(len(NAMES))
        segment = rng.choice(SEGMENTS)
        mode = rng.choice(SHIP_MODES)
        for _ in range(rng.randrange(1, 4)):
            if len(rows) >= n:
                break
            pid, category, sub, pname = rng.choice(PRODUCTS)
            quantity = rng.randrange(1, 15)
            discount = rng.choice([0, 0, 0, 0.1, 0.2, 0.45, 0.8])
            sales = round(quantity * rng.uniform(2, 400) * (1 - discount), 4)
            profit = round(sales * rng.uniform(-0.6, 0.5), 4)
            rows.append(
                [
                    str(len(rows) + 1),
                    f"CA-{ordered.year}-{100000 + order * 37:06d}",
                    ordered.strftime("%d/%m/%Y"),
                    shipped.strftime("%d/%m/%Y"),
                    mode,
                    f"{NAMES[customer][:2].upper()}-{10000 + customer * 15:05d}",
                    NAMES[customer],
                    segment,
                    "United States",
                    city,
                    state,
                    str(postal),
                    region,
                    pid,
                    category,
                    sub,
                    pname,
                    _eu(sales, 4),
                    str(quantity),
                    _eu(discount, 2),
                    _eu(profit, 4),
                ]
            )
    return rows


def write_superstore(path: Path, n: int = 400, **kwargs) -> Path:
    """The export as a ``;``-separated file with a header row."""
    lines = [";".join(HEADER)] + [";".join(r) for r in superstore_rows(n, **kwargs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
