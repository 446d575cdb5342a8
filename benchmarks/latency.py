"""Latency of each user-facing command, as a whole process, beside floors measured in the same run.

Usage: ``python benchmarks/latency.py [--repeat 5] [--results benchmarks/latency.md]``

Each command runs ``--repeat`` times (median, min and max of the wall time) on the demo
samples in a fresh project folder, in rounds (every command once a round, floors included).
Floors, measured in the same run on the same file:

- ``polars``: a bare ``python -c`` that imports polars and duckdb, reads the CSV and writes Parquet;
- ``papermill``: Papermill executing a one-cell notebook on the same kernel.

Each command is printed with its ratio (or difference) to its floor and PASS or FAIL against
its target (``docs/contracts.md``, Performance targets). The report and model stages are
read from the stage timings of the ``--no-notebook`` runs (each a fresh process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SAMPLE = "data/samples/customers.csv"


@dataclass
class Timing:
    """Wall seconds of the repeats of one command."""

    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _timed(args: list[str], cwd: Path, *, expect: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(
            f"{' '.join(args)}: exit {done.returncode}, expected {expect}\n{done.stderr}"
        )
    return seconds


def _repeat(name: str, args: list[str], cwd: Path, repeat: int, *, expect: int = 0) -> Timing:
    timing = Timing(name, [_timed(args, cwd, expect=expect) for _ in range(repeat)])
    print(f"{name:42} median {timing.median:6.2f} s", flush=True)
    return timing


def _one_cell_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    nbformat.write(nb, path)
    return path


def _latest_run(cwd: Path) -> dict:
    out = subprocess.run(
        [str(BIN / "tracer"), "runs", "--output-format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)[0]


def _stage(cwd: Path, run_id: str, stage: str) -> float:
    sql = f"SELECT seconds FROM stage_timings WHERE run_id = '{run_id}' AND stage = '{stage}'"
    out = subprocess.run(
        [str(BIN / "tracer"), "query", sql, "--output-format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    return float(rows[0]["seconds"]) if rows else float("nan")


def _project(root: Path) -> Path:
    from tracer_kit.datasets import write_samples

    write_samples(root / "data" / "samples")
    bad = (root / "data" / "samples" / "customers.csv").read_text().splitlines()
    header = bad[0].replace("last_activity_date", "last_seen")  # a required column missing
    (root / "missing_column.csv").write_text("\n".join([header, *bad[1:200]]) + "\n")
    return root


def measure(root: Path, repeat: int) -> tuple[dict[str, Timing], dict[str, list[float]]]:
    tracer = str(BIN / "tracer")
    py = sys.executable
    floor_code = (
        f"import polars as pl, duckdb; pl.read_csv({SAMPLE!r}).write_parquet('floor.parquet')"
    )
    nb = _one_cell_notebook(root / "one_cell.ipynb")
    papermill = [py, "-m", "papermill", str(nb), str(root / "one_cell.out.ipynb"), "-k", "python3"]
    commands: list[tuple[str, list[str], int]] = [
        ("floor: polars read + write", [py, "-c", floor_code], 0),
        ("floor: papermill one-cell notebook", papermill, 0),
        ("tracer run (notebook)", [tracer, "run", SAMPLE, "-b", "customer_churn"], 0),
        (
            "tracer run --no-notebook",
            [tracer, "run", SAMPLE, "-b", "customer_churn", "--no-notebook"],
            0,
        ),
        (
            "tracer run --no-notebook --no-model",
            [tracer, "run", SAMPLE, "-b", "customer_churn", "--no-notebook", "--no-model"],
            0,
        ),
        ("tracer validate", [tracer, "validate", SAMPLE, "-b", "customer_churn"], 0),
        ("tracer profile", [tracer, "profile", SAMPLE], 0),
        ("tracer query", [tracer, "query", "SELECT count(*) FROM runs"], 0),
        ("missing-column error", [tracer, "run", "missing_column.csv", "-b", "customer_churn"], 1),
    ]
    stages: dict[str, list[float]] = {"report": [], "model": []}
    runs: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    # In rounds, each command once a round: a machine that slows down during the run slows
    # the floors as much as the commands (run one after the other, the floor measured in a
    # quiet minute made every ratio look worse, or better, than it was).
    for _ in range(repeat):
        for name, args, expect in commands:
            runs[name].append(_timed(args, root, expect=expect))
            if name == "tracer run --no-notebook":
                run_id = _latest_run(root)["run_id"]
                stages["report"].append(_stage(root, run_id, "report"))
                stages["model"].append(_stage(root, run_id, "model"))
    timings = {name: Timing(name, seconds) for name, seconds in runs.items()}
    for name, timing in timings.items():
        print(f"{name:42} median {timing.median:6.2f} s", flush=True)
    run_id = _latest_run(root)["run_id"]
    timings["tracer report RUN_ID"] = _repeat(
        "tracer report RUN_ID", [tracer, "report", run_id], root, repeat
    )
    return timings, stages


Check = Callable[[float, float, float], tuple[str, bool]]


def _ratio(limit: float) -> Check:
    def check(value: float, polars: float, papermill: float) -> tuple[str, bool]:
        return f"{value / polars:.1f}x polars (target {limit:g}x)", value <= limit * polars

    return check


def _plus(floor: str, extra: float) -> Check:
    def check(value: float, polars: float, papermill: float) -> tuple[str, bool]:
        base = polars if floor == "polars" else papermill
        return f"{value - base:+.1f} s vs {floor} (target +{extra:g} s)", value <= base + extra

    return check


def _under(limit: float) -> Check:
    def check(value: float, polars: float, papermill: float) -> tuple[str, bool]:
        return f"target < {limit:g} s", value < limit

    return check


TARGETS: dict[str, Check] = {
    "tracer run (notebook)": _plus("papermill", 3.0),
    "tracer run --no-notebook --no-model": _ratio(5.0),
    "tracer validate": _ratio(2.0),
    "tracer profile": _ratio(2.0),
    "missing-column error": _plus("polars", 1.0),
    "report stage (fresh process)": _under(1.0),
    "model stage (demo churn sample)": _under(5.0),
}


def render(timings: dict[str, Timing], stages: dict[str, list[float]], repeat: int) -> str:
    polars = timings["floor: polars read + write"].median
    papermill = timings["floor: papermill one-cell notebook"].median
    rows = dict(timings)
    rows["report stage (fresh process)"] = Timing("report stage", stages["report"])
    rows["model stage (demo churn sample)"] = Timing("model stage", stages["model"])
    lines = [
        f"# tracer-kit latency ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)",
        "",
        f"Each command as a whole process on `{SAMPLE}` (10,000 rows), {repeat} runs.",
        "",
        "| command | median s | min s | max s | against its floor | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, t in rows.items():
        check = TARGETS.get(name)
        text, ok = (
            check(t.median, polars, papermill)
            if check
            else ("floor" if name.startswith("floor") else "", None)
        )
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(
            f"| {name} | {t.median:.2f} | {min(t.seconds):.2f} | {max(t.seconds):.2f} | {text} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--results", default=str(HERE / "latency.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tracer-latency-") as tmp:
        root = _project(Path(tmp))
        timings, stages = measure(root, args.repeat)
        text = render(timings, stages, args.repeat)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
