"""Peers side by side: what a user would run instead of tracer for the same job, same file, same run.

Usage: ``python benchmarks/peers.py [--rows 1000000] [--repeat 1] [--results benchmarks/peers.md]``

On one churn CSV of ``--rows`` rows (the benchmark's seeded generator), each as a whole process:

- **profiling**: ydata-profiling's minimal HTML report (``pandas.read_csv`` then
  ``ProfileReport(df, minimal=True).to_file``) beside ``tracer profile`` and beside
  ``tracer run --no-notebook --no-model``, which profiles, validates, builds the features and
  writes the HTML quality report with the column profiles;
- **validation**: pandera's polars backend validating the churn schema (the blueprint's dtypes,
  nullability, ranges, patterns and unique id, ``lazy=True`` so every failure is collected,
  on a frame ``polars.read_csv`` typed) beside ``tracer validate`` (bronze, typing, every
  check with per-row reasons, quarantine, score).

ydata-profiling pins older numpy, scipy and pandas, so the peers run from their own venv,
``benchmarks/.peers-venv`` (created on first use with ``pip``), never the product's ``.venv``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PEERS_VENV = HERE / ".peers-venv"
PEER_PACKAGES = ["ydata-profiling>=4.10", "pandera[polars]>=0.20", "polars>=1.0"]

YDATA = """
import sys
import pandas as pd
from ydata_profiling import ProfileReport
df = pd.read_csv(sys.argv[1])
ProfileReport(df, minimal=True, progress_bar=False).to_file(sys.argv[2])
"""

PANDERA = """
import json, sys
import polars as pl
import pandera.polars as pa
spec = json.load(open(sys.argv[2]))
dtypes = {c["name"]: getattr(pl, c["dtype"]) for c in spec["columns"]}
df = pl.read_csv(sys.argv[1], schema_overrides=dtypes)
schema = pa.DataFrameSchema(
    {
        c["name"]: pa.Column(
            dtypes[c["name"]],
            nullable=c["nullable"],
            unique=c["unique"],
            required=c["required"],
            checks=[getattr(pa.Check, name)(**stats) for name, stats in c["checks"]],
        )
        for c in spec["columns"]
    },
    strict=False,
)
try:
    schema.validate(df, lazy=True)
    print("valid")
except pa.errors.SchemaErrors as exc:
    print(len(exc.failure_cases), "failure cases")
"""


def peers_python() -> Path:
    """The peers' venv python, made (and the peers installed) when missing."""
    py = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if not stamp.exists():
        print(f"creating {PEERS_VENV} for the peers ({', '.join(PEER_PACKAGES)})", flush=True)
        venv.create(PEERS_VENV, with_pip=True, clear=True)
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"could not install the peers:\n{done.stderr[-3000:]}")
        stamp.touch()
    return py


def churn_schema(path: Path) -> Path:
    """The churn blueprint's pandera schema as JSON, for the peer (which has no tracer_kit).

    Taken from :meth:`Blueprint.pandera_schema`, the schema tracer checks its valid rows
    against, so the peer validates exactly the same rules.
    """
    import tracer_kit as tk

    schema = tk.get_blueprint("customer_churn").pandera_schema()
    spec = {
        "columns": [
            {
                "name": name,
                "dtype": str(col.dtype).split("(")[0],
                "nullable": col.nullable,
                "unique": col.unique,
                "required": col.required,
                "checks": [[check.name, check.statistics] for check in col.checks],
            }
            for name, col in schema.columns.items()
        ]
    }
    path.write_text(json.dumps(spec, indent=1))
    return path


def _timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds


def measure(root: Path, rows: int, repeat: int) -> tuple[dict[str, list[float]], int]:
    sys.path.insert(0, str(HERE))
    from run import make_input

    src = root / "churn.csv"
    made = make_input(src, rows * 56)  # about 56 bytes a row
    peer = str(peers_python())
    schema = churn_schema(root / "churn_schema.json")
    (root / "ydata_minimal.py").write_text(YDATA)
    (root / "pandera_polars.py").write_text(PANDERA)
    tracer = str(BIN / "tracer")
    run = [tracer, "run", str(src), "-b", "customer_churn", "--no-notebook", "--no-model"]
    commands = {
        "ydata-profiling minimal report": [peer, "ydata_minimal.py", str(src), "ydata.html"],
        "tracer profile": [tracer, "profile", str(src)],
        "tracer run --no-notebook --no-model (with the report)": run,
        "pandera polars: churn schema": [peer, "pandera_polars.py", str(src), str(schema)],
        "tracer validate": [tracer, "validate", str(src), "-b", "customer_churn"],
    }
    out: dict[str, list[float]] = {}
    for name, args in commands.items():
        out[name] = [_timed(args, root) for _ in range(repeat)]
        print(f"{name:58} median {statistics.median(out[name]):7.2f} s", flush=True)
    return out, made


PAIRS = [
    ("tracer profile", "ydata-profiling minimal report"),
    ("tracer run --no-notebook --no-model (with the report)", "ydata-profiling minimal report"),
    ("tracer validate", "pandera polars: churn schema"),
]


def render(timings: dict[str, list[float]], rows: int, repeat: int) -> str:
    lines = [
        f"# tracer-kit beside its peers ({time.strftime('%Y-%m-%d')})",
        "",
        f"Each as a whole process on one churn CSV of {rows:,} rows, {repeat} run(s); "
        "the peers from their own venv.",
        "",
        "| command | median s | min s | max s |",
        "|---|---:|---:|---:|",
    ]
    for name, secs in timings.items():
        lines.append(
            f"| {name} | {statistics.median(secs):.2f} | {min(secs):.2f} | {max(secs):.2f} |"
        )
    lines += ["", "| tracer | peer | peer time / tracer time |", "|---|---|---:|"]
    for mine, theirs in PAIRS:
        ratio = statistics.median(timings[theirs]) / statistics.median(timings[mine])
        lines.append(f"| {mine} | {theirs} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the churn CSV")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command")
    parser.add_argument("--results", default=str(HERE / "peers.md"), help="markdown file to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tracer-peers-") as tmp:
        timings, rows = measure(Path(tmp), args.rows, args.repeat)
    text = render(timings, rows, args.repeat)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
