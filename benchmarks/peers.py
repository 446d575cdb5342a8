"""Peers side by side: what a user would run instead of tracer for the same job, same file, same run.

Usage: ``python benchmarks/peers.py [--rows 10000,1000000] [--repeat 1] [--results benchmarks/peers.md]``

On churn CSVs of each ``--rows`` size (the benchmark's seeded generator), each as a whole process:

- **profiling**: ydata-profiling's minimal HTML report (``pandas.read_csv`` then
  ``ProfileReport(df, minimal=True).to_file``) and skrub's ``TableReport`` (``polars.read_csv``
  then ``write_html``) beside ``tracer profile`` and beside ``tracer run --no-notebook
  --no-model``, which profiles, validates, builds the features and writes the HTML quality
  report with the column profiles;
- **validation**: pandera's polars backend validating the churn schema (the blueprint's dtypes,
  nullability, ranges, patterns and unique id, ``lazy=True`` so every failure is collected,
  on a frame ``polars.read_csv`` typed), and pointblank validating the same rules as steps
  (not null, distinct, at least, pattern) then writing its HTML validation report, beside
  ``tracer validate`` (bronze, typing, every check with per-row reasons, quarantine, score).

Every ratio (peer seconds / tracer seconds) is printed with PASS or FAIL against its target in
``docs/contracts.md`` (:data:`PEER_TARGETS`). ydata-profiling pins older numpy, scipy and
pandas, so the peers run from their own venv, ``benchmarks/.peers-venv`` (made on first use
with ``pip``, again when :data:`PEER_PACKAGES` changes), never the product's ``.venv``.
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
PEER_PACKAGES = [
    "ydata-profiling>=4.10",
    "pandera[polars]>=0.20",
    "polars>=1.0",
    "skrub>=0.5",
    "pointblank>=0.13",
]

SKRUB = """
import sys
import polars as pl
from skrub import TableReport
df = pl.read_csv(sys.argv[1], infer_schema_length=None)
TableReport(df).write_html(sys.argv[2])
"""

POINTBLANK = """
import json, sys
import polars as pl
import pointblank as pb
spec = json.load(open(sys.argv[2]))
dtypes = {c["name"]: getattr(pl, c["dtype"]) for c in spec["columns"]}
df = pl.read_csv(sys.argv[1], schema_overrides=dtypes)
steps = {
    "greater_than_or_equal_to": lambda v, c, s: v.col_vals_ge(c, s["min_value"], na_pass=True),
    "less_than_or_equal_to": lambda v, c, s: v.col_vals_le(c, s["max_value"], na_pass=True),
    "in_range": lambda v, c, s: v.col_vals_between(
        c, s["min_value"], s["max_value"], na_pass=True
    ),
    "isin": lambda v, c, s: v.col_vals_in_set(c, list(s["allowed_values"])),
    "str_matches": lambda v, c, s: v.col_vals_regex(c, s["pattern"], na_pass=True),
}
v = pb.Validate(data=df, tbl_name="churn", label="the churn blueprint's rules")
for c in spec["columns"]:
    name = c["name"]
    if not c["nullable"]:
        v = v.col_vals_not_null(columns=name)
    if c["unique"]:
        v = v.rows_distinct(columns_subset=[name])
    for check, stats in c["checks"]:
        v = steps[check](v, name, stats)
v = v.interrogate()
open(sys.argv[3], "w", encoding="utf-8").write(v.get_tabular_report().as_raw_html())
print(len(v.validation_info), "steps")
"""

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
    wanted = "\n".join(PEER_PACKAGES)
    if not stamp.exists() or stamp.read_text() != wanted:
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
        stamp.write_text(wanted)
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


RUN = "tracer run --no-notebook --no-model (with the report)"
YDATA_NAME = "ydata-profiling minimal report"
SKRUB_NAME = "skrub TableReport"
PANDERA_NAME = "pandera polars: churn schema"
POINTBLANK_NAME = "pointblank: churn rules and its HTML report"

#: (tracer's command, the peer's, the least peer seconds / tracer seconds): the targets of
#: ``docs/contracts.md`` (Performance targets, Peers), at every size measured.
PEER_TARGETS = [
    ("tracer profile", YDATA_NAME, 1.0),
    ("tracer profile", SKRUB_NAME, 1.0),
    (RUN, YDATA_NAME, 0.5),
    (RUN, SKRUB_NAME, 0.5),
    ("tracer validate", PANDERA_NAME, 0.5),
    ("tracer validate", POINTBLANK_NAME, 1.0),
]


def measure(root: Path, rows: int, repeat: int) -> tuple[dict[str, list[float]], int]:
    """Every command's seconds on a churn CSV of about ``rows`` rows; the rows made."""
    sys.path.insert(0, str(HERE))
    from run import make_input

    src = root / f"churn_{rows}.csv"
    made = make_input(src, rows * 56)  # about 56 bytes a row
    peer = str(peers_python())
    schema = churn_schema(root / "churn_schema.json")
    for name, text in (
        ("ydata_minimal.py", YDATA),
        ("pandera_polars.py", PANDERA),
        ("skrub_report.py", SKRUB),
        ("pointblank_rules.py", POINTBLANK),
    ):
        (root / name).write_text(text)
    tracer = str(BIN / "tracer")
    commands = {
        YDATA_NAME: [peer, "ydata_minimal.py", str(src), "ydata.html"],
        SKRUB_NAME: [peer, "skrub_report.py", str(src), "skrub.html"],
        "tracer profile": [tracer, "profile", str(src)],
        RUN: [tracer, "run", str(src), "-b", "customer_churn", "--no-notebook", "--no-model"],
        PANDERA_NAME: [peer, "pandera_polars.py", str(src), str(schema)],
        POINTBLANK_NAME: [peer, "pointblank_rules.py", str(src), str(schema), "pointblank.html"],
        "tracer validate": [tracer, "validate", str(src), "-b", "customer_churn"],
    }
    out: dict[str, list[float]] = {}
    for name, args in commands.items():
        out[name] = [_timed(args, root) for _ in range(repeat)]
        print(f"{name:58} median {statistics.median(out[name]):7.2f} s", flush=True)
    return out, made


def verdicts(timings: dict[str, list[float]]) -> list[tuple[str, str, float, float, bool]]:
    """Each target: tracer's command, the peer's, the ratio, its least, PASS (True) or not."""
    rows = []
    for mine, theirs, least in PEER_TARGETS:
        ratio = statistics.median(timings[theirs]) / statistics.median(timings[mine])
        rows.append((mine, theirs, ratio, least, ratio >= least))
    return rows


def render(measured: dict[int, dict[str, list[float]]], repeat: int) -> str:
    """The markdown page: each size's seconds, then every ratio with PASS or FAIL."""
    lines = [
        f"# tracer-kit beside its peers ({time.strftime('%Y-%m-%d')})",
        "",
        f"Each as a whole process on churn CSVs of the benchmark's generator, {repeat} run(s) "
        "each; the peers from their own venv. Targets: `docs/contracts.md`.",
    ]
    for rows, timings in measured.items():
        lines += [
            "",
            f"## {rows:,} rows",
            "",
            "| command | median s | min s | max s |",
            "|---|---:|---:|---:|",
        ]
        for name, secs in timings.items():
            lines.append(
                f"| {name} | {statistics.median(secs):.2f} | {min(secs):.2f} | {max(secs):.2f} |"
            )
        lines += [
            "",
            "| tracer | peer | peer time / tracer time | target | verdict |",
            "|---|---|---:|---:|---|",
        ]
        for mine, theirs, ratio, least, ok in verdicts(timings):
            verdict = "PASS" if ok else "FAIL"
            lines.append(f"| {mine} | {theirs} | {ratio:.2f}x | >= {least:g}x | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", default="10000,1000000", help="rows in the churn CSVs, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command")
    parser.add_argument("--results", default=str(HERE / "peers.md"), help="markdown file to write")
    args = parser.parse_args(argv)
    measured: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tracer-peers-") as tmp:
        for rows in (int(r) for r in args.rows.split(",")):
            timings, made = measure(Path(tmp), rows, args.repeat)
            measured[made] = timings
    text = render(measured, args.repeat)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
