"""In-process latency of ``tk.query`` over a warehouse (target: p95 under 500 ms).

    python benchmarks/query_latency.py [--warehouse data/warehouse.duckdb] [--repeat 50]

Run `make demo` first (or point --warehouse at any tracer warehouse). Each query opens the
warehouse read-only, runs, and closes it, as every tracer reader does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

QUERIES = {
    "runs by state": "SELECT state, count(*) AS n FROM runs GROUP BY state",
    "latest churn rows": "SELECT * FROM customer_churn_latest LIMIT 100",
    "churn value tiers": "SELECT value_tier, avg(engagement_score) AS e, count(*) AS n "
    "FROM customer_churn_processed GROUP BY value_tier ORDER BY value_tier",
    "bronze status": "SELECT validation_status, count(*) AS n FROM bronze_customer_churn_status GROUP BY 1",
    "quarantine reasons": "SELECT unnest(reasons) AS reason, count(*) AS n FROM quarantine_customer_churn GROUP BY 1",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", default="data/warehouse.duckdb")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    import tracer_kit as tk

    tk.query("SELECT 1", warehouse=args.warehouse)  # warm up imports
    print(f"{'query':22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for name, sql in QUERIES.items():
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            tk.query(sql, warehouse=args.warehouse)
            times.append((time.perf_counter() - t) * 1000)
        p95 = statistics.quantiles(times, n=20)[18]
        worst = max(worst, p95)
        print(f"{name:22} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f}")
    print(f"worst p95: {worst:.1f} ms (target < 500 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
