"""The benchmark runs at a tiny size so it cannot rot (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_benchmark_completes_and_features_agree(tmp_path):
    results = tmp_path / "results.md"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--size",
            "2MB",
            "--workdir",
            str(tmp_path),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = results.read_text()
    for label in ("(ceiling)", "tracer run_pipeline", "(baseline)"):
        assert label in text
    assert "Features agree with the baseline on the first 1,000 customers" in text
    import re

    targets = ("1.5x the pandas baseline's", "0.25x the polars ceiling's", "peak RSS at most")
    for target in (*targets, "as fast as the saved pipeline through pandas"):
        (line,) = [x for x in text.splitlines() if target in x]
        assert re.search(r"\| [\d.,]+(x| MB) \| (PASS|FAIL) \|$", line), line
    for stage in ("ingest", "validate", "features", "preprocess", "store"):
        assert f"| {stage} |" in text  # per-stage seconds, MB/s, rows/s and peak RSS


def test_the_throughput_targets_are_the_ones_the_contracts_state():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import run

    contracts = " ".join((REPO / "docs" / "contracts.md").read_text().split())
    section = contracts[contracts.index("- **Throughput**") :][:600]
    assert f"at least {run.BASELINE_TARGET:g}x the rows/s of the same churn features" in section
    ceiling = (
        f"at least {run.CEILING_TARGET:g}x (aim {run.CEILING_AIM:g}x) the rows/s of bare polars"
    )
    assert ceiling in section
    scoring = contracts[contracts.index("- **Scoring**") :][:400]
    assert f"tracer's scorer at least {run.SCORING_TARGET:g}x as fast as the" in scoring
    assert f"applied to {run.SCORING_ROWS:,} of" in scoring


def test_query_latency_script_runs(workdir, sample_csv):
    import tracer_kit as tk

    tk.run_pipeline(sample_csv, "customer_churn", report=False)
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "query_latency.py"), "--repeat", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "worst p95:" in done.stdout and "bronze status" in done.stdout


def test_every_peer_target_is_the_one_the_contracts_state_and_gets_a_verdict():
    import re
    import sys

    from .conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    import peers

    contracts = " ".join((REPO / "docs" / "contracts.md").read_text().split())
    section = contracts[contracts.index("- **Peers**") :][:900]
    stated = [float(x) for x in re.findall(r"at least ([\d.]+)x", section)]
    assert stated == [least for _, _, least in peers.PEER_TARGETS]
    timings = {name: [1.0] for pair in peers.PEER_TARGETS for name in pair[:2]}
    timings["tracer validate"] = [3.0]  # pandera 1/3 = 0.33x: under 0.5x
    page = peers.render({10_000: timings}, 1)
    assert "| tracer validate | pandera polars: churn schema | 0.33x | >= 0.5x | FAIL |" in page
    assert page.count("| PASS |") == 4 and page.count("| FAIL |") == 2
