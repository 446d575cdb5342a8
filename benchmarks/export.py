"""tracer export to PostgreSQL on 1 million rows, beside a bare COPY of the same rows.

    python benchmarks/export.py              # 1,000,000 churn rows
    python benchmarks/export.py --rows 200000

A churn file is run (model stage off), then exported to a PostgreSQL server this script
starts (the tests' own, tests/postgres.py): processed rows, quarantine, bronze records and
the run, in one transaction. The floor is a bare ``COPY`` of the processed Parquet's rows
(polars CSV text into one table) in the same run, and a row-by-row ``executemany`` INSERT of
100,000 rows shows what COPY saves. Results go to ``benchmarks/results-export.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import polars as pl  # noqa: E402
import psycopg  # noqa: E402

import tracer_kit as tk  # noqa: E402
from tests.postgres import running_postgres  # noqa: E402
from tracer_kit.datasets import customers  # noqa: E402

BLOCK = 100_000


def make_input(path: Path, rows: int) -> None:
    """A churn CSV of ``rows`` rows with unique ids (seeded blocks)."""
    block = customers(BLOCK, seed=1, invalid=False, label=True)
    with path.open("wb") as fh:
        for i in range(-(-rows // BLOCK)):
            part = block.head(min(BLOCK, rows - i * BLOCK)).with_columns(
                pl.format("C{}-{}", pl.lit(i), pl.col("customer_id")).alias("customer_id")
            )
            fh.write(part.write_csv(include_header=i == 0).encode())


def bare_copy(url: str, frame: pl.DataFrame) -> float:
    """Seconds for one COPY of ``frame`` (CSV text) into a new table: the floor."""
    types = {pl.Int64: "bigint", pl.Float64: "double precision", pl.Date: "date"}
    cols = ", ".join(f'"{c}" {types.get(t.base_type(), "text")}' for c, t in frame.schema.items())
    start = time.perf_counter()
    with psycopg.connect(url) as con, con.cursor() as cur:
        cur.execute(f"CREATE TABLE floor_copy ({cols})")
        with cur.copy("COPY floor_copy FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in frame.iter_slices(BLOCK):
                copy.write(batch.write_csv(include_header=False).encode())
    return time.perf_counter() - start


def row_inserts(url: str, frame: pl.DataFrame) -> float:
    """Seconds for ``executemany`` INSERTs of ``frame``'s rows (what COPY replaces)."""
    cols = ", ".join(f'"{c}" text' for c in frame.columns)
    marks = ", ".join(["%s"] * frame.width)
    rows = [tuple(None if v is None else str(v) for v in r) for r in frame.iter_rows()]
    start = time.perf_counter()
    with psycopg.connect(url) as con, con.cursor() as cur:
        cur.execute(f"CREATE TABLE row_inserts ({cols})")
        cur.executemany(f"INSERT INTO row_inserts VALUES ({marks})", rows)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="tracer-export-bench-") as tmp,
        running_postgres() as pg,
    ):
        src = Path(tmp) / "churn.csv"
        make_input(src, args.rows)
        mb = src.stat().st_size / 1e6
        run = tk.run_pipeline(
            src,
            "customer_churn",
            config={"reference_date": "2025-06-30", "model": {"enabled": False}},
            warehouse=Path(tmp) / "w.duckdb",
            output_dir=Path(tmp) / "reports",
            processed_dir=Path(tmp) / "processed",
            run_date="2025-07-01",
            report=False,
            return_frame=False,
        )
        url = pg.new_database("bench")
        done = tk.export(run.run_id, url, warehouse=Path(tmp) / "w.duckdb")
        again = tk.export(run.run_id, url, warehouse=Path(tmp) / "w.duckdb")
        processed = pl.read_parquet(run.outputs["parquet"])
        floor = bare_copy(url, processed)
        sample = processed.head(BLOCK)
        inserts = row_inserts(url, sample)
    text = render(done, again, floor, inserts, rows=processed.height, mb=mb)
    print(text)
    (HERE / "results-export.md").write_text(text, encoding="utf-8")
    return 0


def render(
    done: tk.Exported, again: tk.Exported, floor: float, inserts: float, *, rows: int, mb: float
) -> str:
    lines = [
        f"# tracer export to PostgreSQL ({rows:,} processed rows of a {mb:,.0f} MB churn CSV)",
        "",
        "PostgreSQL 15 on this machine (127.0.0.1), one transaction; model stage off.",
        "",
        "| what | rows | seconds | rows/s |",
        "|---|---:|---:|---:|",
        f"| tracer export (all tables) | {done.total:,} | {done.seconds:.1f} | {done.total / done.seconds:,.0f} |",
    ]
    lines += [f"| &nbsp;&nbsp;{table} | {n:,} | | |" for table, n in done.rows.items()]
    lines += [
        f"| floor: bare COPY of the processed rows | {rows:,} | {floor:.1f} | {rows / floor:,.0f} |",
        f"| row-by-row INSERT (executemany) | {BLOCK:,} | {inserts:.1f} | {BLOCK / inserts:,.0f} |",
        f"| the same export again (adds nothing) | {again.total:,} | {again.seconds:.2f} | |",
        "",
        f"tracer export moves {done.total / done.seconds / (rows / floor):.2f}x the floor's rows/s "
        f"(it also writes the bronze records, their raw JSON parsed into jsonb, quarantine and the run) and "
        f"{done.total / done.seconds / (BLOCK / inserts):.0f}x row-by-row INSERTs'.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
