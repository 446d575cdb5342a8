"""Throughput and peak memory of the tracer pipeline beside its ceiling and the pandas baseline.

    python benchmarks/run.py                 # 1 GB churn CSV (make bench)
    python benchmarks/run.py --size 100MB    # a quick run

Each contender runs in its own subprocess so its peak RSS is its own:
(a) ceiling: bare polars ``scan_csv(...).sink_parquet(...)``;
(b) tracer: ``run_pipeline(..., return_frame=False, report=False)`` with per-stage times;
(c) baseline: the churn features in plain pandas + scikit-learn (no bronze, no validation,
    no warehouse), checked to agree with tracer's features on the first 1,000 customers.
Results are printed and written to ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Throughput targets (``docs/contracts.md``): tracer's rows/s over the pandas baseline's,
#: and over the polars ceiling's (with the aim beside it).
BASELINE_TARGET = 1.5
CEILING_TARGET = 0.25
CEILING_AIM = 0.35
#: Scoring target: tracer's scorer over the saved scikit-learn pipeline fed through pandas
#: (how every row was scored before the model's steps were compiled).
SCORING_TARGET = 4.0
#: Processed rows the scoring comparison reads (both ways, in the scorer's batches).
SCORING_ROWS = 1_000_000
REF = "2025-06-30"
FEATURES = [
    "days_since_last_activity",
    "account_tenure_days",
    "daily_value_rate",
    "support_intensity",
    "feature_usage_rate",
    "activity_recency_score",
    "value_tier",
    "plan_value_score",
    "engagement_score",
]


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?B)?", text.strip().upper())
    if not m:
        raise SystemExit(f"--size {text!r} should look like 100MB or 1GB")
    unit = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[m.group(2) or "B"]
    return int(float(m.group(1)) * unit)


def make_input(path: Path, size: int) -> int:
    """Write a churn CSV of about ``size`` bytes from seeded blocks with unique ids; return rows."""
    import polars as pl

    from tracer_kit.datasets import customers

    block = customers(100_000, seed=1, invalid=False, label=True)
    rows = 0
    with path.open("wb") as fh:
        i = 0
        while fh.tell() < size:
            part = block.with_columns(
                pl.format("C{}-{}", pl.lit(i), pl.col("customer_id")).alias("customer_id")
            )
            if fh.tell() + 1 >= size:
                break
            remaining = size - fh.tell()
            per_row = 52
            if remaining < part.height * per_row:
                part = part.head(max(remaining // per_row, 1))
            fh.write(part.write_csv(include_header=(i == 0)).encode())
            rows += part.height
            i += 1
    return rows


# --------------------------------------------------------------------------- contenders


def run_ceiling(src: str, out: str) -> dict:
    import polars as pl

    t = time.perf_counter()
    pl.scan_csv(src).sink_parquet(out)
    return {"seconds": time.perf_counter() - t}


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_tracer(src: str, out: str) -> dict:
    import threading

    import tracer_kit as tk

    tk.release_freed_memory()  # before polars is imported

    peaks: dict[str, int] = {}
    current = ["setup"]
    done = threading.Event()

    def sample() -> None:  # peak RSS per stage, every 20 ms
        while not done.is_set():
            stage = current[0]
            peaks[stage] = max(peaks.get(stage, 0), _rss())
            time.sleep(0.02)

    def progress(stage: str, index: int, total: int) -> None:
        current[0] = stage

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    r = tk.run_pipeline(
        src,
        "customer_churn",
        config={"reference_date": REF},
        warehouse=str(Path(out) / "warehouse.duckdb"),
        output_dir=str(Path(out) / "reports"),
        processed_dir=str(Path(out) / "processed"),
        return_frame=False,
        report=False,
        run_date="2025-07-01",
        progress=progress,
    )
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    return {
        "seconds": seconds,
        "stages": r.stage_seconds,
        "stage_peak_mb": {k: v / 2**20 for k, v in peaks.items()},
        "rows_in": r.rows_in,
        "rows_out": r.rows_out,
        "parquet": r.outputs["parquet"],
        "scoring": measure_scoring(r),
    }


def measure_scoring(result) -> dict | None:
    """The run's saved churn model applied to its first processed rows: tracer's scorer
    against the same scikit-learn pipeline fed through pandas, batch by batch, both timed.
    """
    import polars as pl

    from tracer_kit.engine import BATCH_ROWS
    from tracer_kit.model import read_model
    from tracer_kit.model.compiled import sklearn_probabilities
    from tracer_kit.model.stage import classification_scorer

    predictor = result.outputs.get("predictor")
    if not predictor or not Path(predictor).exists():
        return None
    saved = read_model(predictor)
    estimator, inputs = saved["estimator"], saved["inputs"]
    rows = pl.scan_parquet(result.outputs["parquet"]).select("customer_id", *inputs)
    rows = rows.head(SCORING_ROWS).collect()
    batches = [rows.slice(at, BATCH_ROWS) for at in range(0, rows.height, BATCH_ROWS)]
    score = classification_scorer(estimator, inputs, "customer_id")
    t = time.perf_counter()
    for batch in batches:
        score(batch)
    tracer = time.perf_counter() - t
    t = time.perf_counter()
    for batch in batches:
        sklearn_probabilities(estimator, inputs, batch)
    sklearn = time.perf_counter() - t
    pipeline = getattr(estimator, "estimator", estimator)  # (a calibrated model's classifier)
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    chosen = type(final).__name__
    return {"rows": rows.height, "tracer": tracer, "sklearn": sklearn, "model": chosen}


def pandas_features(src: str):
    """The churn features as a user would write them in pandas + scikit-learn."""
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import MinMaxScaler

    df = pd.read_csv(src, parse_dates=["last_activity_date", "account_created_date"])
    ref = pd.Timestamp(REF)
    df["days_since_last_activity"] = (ref - df["last_activity_date"]).dt.days
    df["account_tenure_days"] = (ref - df["account_created_date"]).dt.days
    tenure = df["account_tenure_days"].clip(lower=1)
    df["daily_value_rate"] = df["total_value"] / tenure
    df["support_intensity"] = df["support_tickets"] / (df["account_tenure_days"] / 30).clip(lower=1)
    df["feature_usage_rate"] = df["feature_usage_count"] / tenure
    df["activity_recency_score"] = np.exp(-df["days_since_last_activity"] / 30)
    rank = df["total_value"].rank(method="first")
    df["value_tier"] = np.ceil(4 * rank / df["total_value"].count())
    levels = {"basic": 1, "standard": 2, "premium": 3, "enterprise": 4}
    df["plan_value_score"] = df["plan_type"].str.strip().str.lower().map(levels)
    cols = ["activity_recency_score", "feature_usage_rate", "daily_value_rate", "support_intensity"]
    norm = pd.DataFrame(MinMaxScaler().fit_transform(df[cols]), columns=cols, index=df.index)
    norm["support_intensity"] = 1 - norm["support_intensity"]
    df["engagement_score"] = norm.mean(axis=1, skipna=True)
    return df


def run_baseline(src: str, out: str) -> dict:
    t = time.perf_counter()
    df = pandas_features(src)
    df.to_parquet(out)
    return {"seconds": time.perf_counter() - t, "rows_out": len(df)}


CONTENDERS = {"ceiling": run_ceiling, "tracer": run_tracer, "baseline": run_baseline}


def measure(kind: str, src: Path, out: Path) -> dict:
    """Run one contender in a subprocess; return its result with wall time and peak RSS."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, str(src), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def features_agree(tracer_parquet: str, baseline_parquet: str, n: int = 1000) -> float:
    """Largest absolute difference between tracer and baseline features on the first ``n`` customers."""
    import polars as pl

    ids = pl.scan_parquet(baseline_parquet).select("customer_id").head(n).collect()["customer_id"]
    a = (
        pl.scan_parquet(tracer_parquet)
        .filter(pl.col("customer_id").is_in(ids.implode()))
        .collect()
        .sort("customer_id")
    )
    b = (
        pl.scan_parquet(baseline_parquet)
        .filter(pl.col("customer_id").is_in(ids.implode()))
        .collect()
        .sort("customer_id")
    )
    if a.height != n or b.height != n:
        raise SystemExit(
            f"feature check: {a.height} tracer rows, {b.height} baseline rows, expected {n}"
        )
    worst = 0.0
    for f in FEATURES:
        x, y = a[f].cast(pl.Float64), b[f].cast(pl.Float64)
        if (x.is_null() != y.is_null()).any():
            raise SystemExit(f"feature {f}: nulls differ between tracer and baseline")
        diff = (x - y).abs().max()
        worst = max(worst, float(diff or 0.0))
    if worst > 1e-9:
        raise SystemExit(f"features disagree with the pandas baseline (max abs diff {worst:g})")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1GB", help="input size, e.g. 100MB, 1GB, 5GB")
    parser.add_argument(
        "--workdir", default=None, help="where the input and outputs go (default: a temp dir)"
    )
    parser.add_argument(
        "--results", default=str(HERE / "results.md"), help="markdown file to write"
    )
    parser.add_argument(
        "--contenders",
        default="ceiling,tracer,baseline",
        help="which to run, comma-separated (the pandas baseline needs about 6x the input in RAM)",
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, src, out = args.child
        print(json.dumps(CONTENDERS[kind](src, out), default=str))
        return 0

    size = parse_size(args.size)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tracer-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "churn.csv"
    t = time.perf_counter()
    rows = make_input(src, size)
    mb = src.stat().st_size / 1024**2
    print(
        f"input: {src} {mb:,.0f} MB, {rows:,} rows (generated in {time.perf_counter() - t:.1f} s)"
    )
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"--contenders: unknown {unknown}; choose from {sorted(CONTENDERS)}")
    outputs = {
        "ceiling": work / "ceiling.parquet",
        "tracer": work / "tracer",
        "baseline": work / "baseline.parquet",
    }
    results = {kind: measure(kind, src, outputs[kind]) for kind in CONTENDERS if kind in chosen}
    worst = None
    if "tracer" in results and "baseline" in results:
        worst = features_agree(results["tracer"]["parquet"], str(outputs["baseline"]))
    text = render(results, mb=mb, rows=rows, worst=worst)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


LABELS = {
    "ceiling": "polars scan_csv -> sink_parquet (ceiling)",
    "tracer": "tracer run_pipeline (bronze, validation, features, preprocessing, store; model stage not counted)",
    "baseline": "pandas + scikit-learn churn features (baseline)",
}


def render(results: dict, *, mb: float, rows: int, worst: float | None) -> str:
    """The results as markdown: contenders, ratios, and the tracer's stages."""
    lines = [
        f"# tracer-kit benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Input: churn CSV, {mb:,.0f} MB, {rows:,} rows. Machine: {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}.",
        "Versions: "
        + ", ".join(
            f"{p} {_version(p)}" for p in ("polars", "duckdb", "pandas", "scikit-learn", "pyarrow")
        ),
        "",
        "| contender | seconds | MB/s | rows/s | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    tracer = results.get("tracer")
    if tracer:  # the model stage has its own row and is not counted in the throughput
        tracer["model_seconds"] = tracer["stages"].get("model", 0.0)
        tracer["seconds"] -= tracer["model_seconds"]
    for name, r in results.items():
        lines.append(
            f"| {LABELS[name]} | {r['seconds']:.2f} | {mb / r['seconds']:,.1f} | "
            f"{rows / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} |"
        )
    if tracer and tracer["model_seconds"]:
        m = tracer["model_seconds"]
        lines.append(
            f"| tracer model stage (churn model fitted on at most 100,000 labelled rows, every row scored) "
            f"| {m:.2f} | {mb / m:,.1f} | {rows / m:,.0f} | {tracer['stage_peak_mb'].get('model', 0.0):,.0f} |"
        )
    lines.append("")
    lines += targets(results, mb)
    if worst is not None:
        lines.append(
            f"Features agree with the baseline on the first 1,000 customers (max abs diff {worst:.1e})."
        )
    if tracer:
        lines += [
            "",
            "Tracer stages (each stage's throughput is the input's size over its time):",
            "",
            "| stage | seconds | MB/s | rows/s | peak RSS (MB) |",
            "|---|---:|---:|---:|---:|",
        ]
        for stage, sec in tracer["stages"].items():
            peak = tracer["stage_peak_mb"].get(stage, 0.0)
            lines.append(
                f"| {stage} | {sec:.2f} | {mb / sec:,.1f} | {rows / sec:,.0f} | {peak:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def _peak_limit_mb(mb: float) -> float | None:
    """The peak-memory target for an input of ``mb``: 1.5 GB up to 1 GB, 2 GB up to 5 GB."""
    if mb <= 1.1 * 1024:
        return 1.5 * 1024
    if mb <= 5.5 * 1024:
        return 2.0 * 1024
    return None


def targets(results: dict, mb: float) -> list[str]:
    """The throughput and memory targets (``docs/contracts.md``), each with PASS or FAIL."""
    tracer = results.get("tracer")
    if not tracer:
        return []
    rows = ["| target | measured | verdict |", "|---|---:|---|"]

    def row(text: str, measured: str, ok: bool) -> None:
        rows.append(f"| {text} | {measured} | {'PASS' if ok else 'FAIL'} |")

    if "baseline" in results:
        ratio = results["baseline"]["seconds"] / tracer["seconds"]
        text = f"tracer rows/s at least {BASELINE_TARGET:g}x the pandas baseline's"
        row(text, f"{ratio:.2f}x", ratio >= BASELINE_TARGET)
    if "ceiling" in results:
        ratio = results["ceiling"]["seconds"] / tracer["seconds"]
        text = f"tracer rows/s at least {CEILING_TARGET:g}x the polars ceiling's (aim {CEILING_AIM:g}x)"
        row(text, f"{ratio:.2f}x", ratio >= CEILING_TARGET)
    limit = _peak_limit_mb(mb)
    if limit is not None:
        peak = tracer["peak_rss_mb"]
        row(f"tracer peak RSS at most {limit / 1024:g} GB", f"{peak:,.0f} MB", peak <= limit)
    scoring = tracer.get("scoring")
    if scoring:
        ratio = scoring["sklearn"] / scoring["tracer"]
        text = (
            f"scoring {scoring['rows']:,} rows ({scoring['model']}) at least {SCORING_TARGET:g}x "
            f"as fast as the saved pipeline through pandas ({scoring['tracer']:.2f} s "
            f"against {scoring['sklearn']:.2f} s)"
        )
        row(text, f"{ratio:.2f}x", ratio >= SCORING_TARGET)
    return [*rows, ""]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
