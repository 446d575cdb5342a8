"""The Spark engine beside the polars engine on one churn CSV, in the same run.

    python benchmarks/spark.py                  # 1 GB churn CSV on local[2]
    python benchmarks/spark.py --size 100MB     # a quicker run
    python benchmarks/spark.py --master spark://head:7077

Both engines run the same blueprint with the model stage off (its fit is the same
scikit-learn code on the same bounded sample on both), each in its own subprocess, and
the stages from ingest to store (preprocess included: the matrix is written by the
executors on Spark) are compared. Peak RSS is the driver process's (on Spark the
JVM and its Python workers are other processes: their peak is sampled from /proc as the
sum over the driver's process tree). Results go to ``benchmarks/results-spark.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import REF, make_input, parse_size  # noqa: E402 - the same generated churn file

COMPARED = ("ingest", "validate", "features", "preprocess", "store")


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        pid = int(entry.name)
        children.setdefault(int(stat[1]), []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


class JobCounter:
    """Spark jobs per stage of a run, from the status tracker (a run's ``progress`` callback).

    Job ids are handed out in order from 0 for the life of a SparkContext, so the jobs of a
    stage are the ids above the highest one seen when it started; concurrent runs on the
    same session would be counted together.
    """

    def __init__(self, spark: Any) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.by_stage: dict[str, int] = {}
        self.stage: str | None = None
        self.mark = self._latest()

    def _latest(self) -> int:
        return max(self.tracker.getJobIdsForGroup(), default=-1)

    def progress(self, stage: str, index: int = 0, total: int = 0) -> None:
        """A stage starts: the jobs since the last mark belong to the one before it."""
        self.finish()
        self.stage = stage

    def finish(self) -> dict[str, int]:
        """Count the jobs of the stage running now; the counts so far, by stage."""
        latest = self._latest()
        if self.stage is not None:
            self.by_stage[self.stage] = self.by_stage.get(self.stage, 0) + latest - self.mark
        self.mark = latest
        return self.by_stage


def run_engine(engine: str, src: str, out: str, master: str) -> dict:
    import tracer_kit as tk

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(os.getpid()))
            time.sleep(0.2)

    extra: dict[str, Any] = {}
    jobs = None
    if engine == "spark":
        spark = tk.spark_session(master, config={"spark.ui.enabled": "false"})
        jobs = JobCounter(spark)
        extra = {"engine": "spark", "spark": spark, "progress": jobs.progress}
    threading.Thread(target=sample, daemon=True).start()
    t = time.perf_counter()
    r = tk.run_pipeline(
        src,
        "customer_churn",
        config={"reference_date": REF, "model": {"enabled": False}},
        warehouse=str(Path(out) / "warehouse.duckdb"),
        output_dir=str(Path(out) / "reports"),
        processed_dir=str(Path(out) / "processed"),
        return_frame=False,
        report=False,
        run_date="2025-07-01",
        **extra,
    )
    seconds = time.perf_counter() - t
    done.set()
    return {
        "seconds": seconds,
        "stages": r.stage_seconds,
        "peak_mb": peak[0] / 2**20,
        "rows_in": r.rows_in,
        "rows_out": r.rows_out,
        "score": r.quality_score,
        "jobs": jobs.finish() if jobs is not None else None,
    }


def _child(engine: str, src: Path, out: Path, master: str) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, str(src), str(out), "--master", master]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(results: dict, *, mb: float, rows: int, master: str) -> str:
    p, s = results["polars"], results["spark"]
    common = {k: sum(r["stages"].get(st, 0.0) for st in COMPARED) for k, r in results.items()}
    lines = [
        f"# Spark engine beside the polars engine ({mb:,.0f} MB churn CSV, {rows:,} rows)",
        "",
        f"Spark master `{master}`; model stage off; both in the same run on this machine.",
        "",
        "| stage | polars engine (s) | Spark engine (s) | Spark jobs |",
        "|---|---:|---:|---:|",
    ]
    jobs = s.get("jobs") or {}
    for stage in COMPARED:
        ps, ss = p["stages"].get(stage), s["stages"].get(stage)
        fmt = lambda v: "not run" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(f"| {stage} | {fmt(ps)} | {fmt(ss)} | {jobs.get(stage, 0)} |")
    total_jobs = sum(jobs.get(stage, 0) for stage in COMPARED)
    lines += [
        f"| **ingest..store** | **{common['polars']:.1f}** | **{common['spark']:.1f}** "
        f"| **{total_jobs}** |",
        f"| rows/s (ingest..store) | {rows / common['polars']:,.0f} | {rows / common['spark']:,.0f} | |",
        f"| peak RSS, process tree | {p['peak_mb']:,.0f} MB | {s['peak_mb']:,.0f} MB | |",
        "",
        f"Spark / polars time: {common['spark'] / common['polars']:.2f}x; both gave quality "
        f"score {p['score']} and {p['rows_out']:,} processed rows"
        + (
            " (equal)."
            if (p["score"], p["rows_out"]) == (s["score"], s["rows_out"])
            else " (DIFFER)."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1GB")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--input", help="an existing churn CSV instead of a generated one")
    parser.add_argument(
        "--child", nargs=3, metavar=("ENGINE", "SRC", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        engine, src, out = args.child
        print(json.dumps(run_engine(engine, src, out, args.master)))
        return 0
    with tempfile.TemporaryDirectory(prefix="tracer-spark-bench-") as tmp:
        src = Path(args.input) if args.input else Path(tmp) / "churn.csv"
        rows = make_input(src, parse_size(args.size)) if not args.input else None
        mb = src.stat().st_size / 1e6
        results = {e: _child(e, src, Path(tmp) / e, args.master) for e in ("polars", "spark")}
    rows = rows or results["polars"]["rows_in"]
    text = render(results, mb=mb, rows=rows, master=args.master)
    print(text)
    (HERE / "results-spark.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
