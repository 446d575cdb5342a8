"""The resident server (``tracer serve``) against floors measured in the same run.

Usage: ``python benchmarks/server.py [--repeat 5] [--results benchmarks/server.md]``

In a fresh project folder with the demo samples, a server is started (``--port 0``,
two workers) and measured three ways, each printed with PASS or FAIL against its target
in ``docs/contracts.md`` (Performance targets, the server):

- **the CLI through it**: ``tracer run``, ``tracer run --no-notebook [--no-model]`` and
  ``tracer validate`` as whole client processes (each forwarded to a warm worker), beside
  the polars floor (``python -c`` reading the CSV and writing Parquet) and Papermill's
  one-cell notebook, both measured in the same run;
- **API latency** with 1,000 runs in the warehouse: ``GET /api/v1/runs/{id}`` (p95 of 300
  requests) and ``GET /api/v1/analytics/summary`` (p95 of 50);
- **load**: 50 clients polling while 20 uploads run: no error answer, no lost run, and
  every run's rows in the warehouse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import SAMPLE, _one_cell_notebook, _project

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TRACER = str(BIN / "tracer")
RUNS_IN_WAREHOUSE = 1_000
UPLOADS, POLLERS = 20, 50


@dataclass
class Server:
    """A running ``tracer serve``: its URL and an authorised client."""

    url: str
    token: str
    process: subprocess.Popen

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=300)


@contextlib.contextmanager
def serving(root: Path) -> Iterator[Server]:
    """``tracer serve --port 0`` in ``root`` until its workers are ready; SIGTERM after."""
    log = (root / "serve.log").open("ab")
    process = subprocess.Popen(
        [TRACER, "serve", "--port", "0"], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        info = root / ".tracer" / "server.json"
        end = time.monotonic() + 180
        while time.monotonic() < end and process.poll() is None:
            if info.exists():
                data = json.loads(info.read_text())
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{data['url']}/readyz", timeout=5).status_code == 200:
                        token = Path(data["token_file"]).read_text().strip()
                        yield Server(data["url"], token, process)
                        return
            time.sleep(0.2)
        raise SystemExit("the server did not start:\n" + (root / "serve.log").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _kernels_waiting(cwd: Path, timeout: float = 120) -> None:
    """Until every worker's next notebook kernel has started (the target's premise)."""
    info = json.loads((cwd / ".tracer" / "server.json").read_text())
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        workers = httpx.get(f"{info['url']}/readyz", timeout=10).json()["checks"]["workers"]
        if all(w["kernel"]["state"] == "waiting" for w in workers["workers"]):
            return
        time.sleep(0.2)


def _timed(args: list[str], cwd: Path, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        if "--no-notebook" not in args and args[1] == "run":
            _kernels_waiting(cwd)
        start = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return seconds


def cli_timings(root: Path, repeat: int) -> dict[str, list[float]]:
    """Floors as whole processes, then each command through the server (forwarded)."""
    py = sys.executable
    floor = f"import polars as pl, duckdb; pl.read_csv({SAMPLE!r}).write_parquet('floor.parquet')"
    nb = _one_cell_notebook(root / "one_cell.ipynb")
    run = [TRACER, "run", SAMPLE, "-b", "customer_churn"]
    commands = {
        "floor: polars read + write": [py, "-c", floor],
        "floor: papermill one-cell notebook": [
            *(py, "-m", "papermill", str(nb), str(root / "one_cell.out.ipynb"), "-k", "python3")
        ],
        "server: tracer run --no-notebook --no-model": [*run, "--no-notebook", "--no-model"],
        "server: tracer run --no-notebook": [*run, "--no-notebook"],
        "server: tracer run (notebook)": run,
        "server: tracer run --no-model (notebook)": [*run, "--no-model"],
        "server: tracer validate": [TRACER, "validate", SAMPLE, "-b", "customer_churn"],
    }
    out = {}
    for name, args in commands.items():
        out[name] = _timed(args, root, repeat)
        print(f"{name:46} median {statistics.median(out[name]):6.2f} s", flush=True)
    return out


def _fill_runs(root: Path, total: int) -> list[str]:
    """Copies of the newest completed run under new ids until the warehouse holds ``total``."""
    from tracer_kit.warehouse import connect

    with connect(root / "data" / "warehouse.duckdb") as con:
        have, newest = con.execute(
            "SELECT count(*), max(run_id) FILTER (WHERE state = 'COMPLETED') FROM runs"
        ).fetchone()
        con.execute(
            "INSERT INTO runs SELECT r.* REPLACE (r.run_id || '-copy' || t.i::VARCHAR AS run_id) "
            "FROM runs r, range(?) t(i) WHERE r.run_id = ?",
            [max(total - have, 0), newest],
        )
        return [r for (r,) in con.execute("SELECT run_id FROM runs").fetchall()]


def _p95(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=20)[-1]


def api_latency(server: Server, root: Path) -> dict[str, list[float]]:
    """Sequential requests on one kept-alive connection, timed at the client."""
    ids = _fill_runs(root, RUNS_IN_WAREHOUSE)
    rng = random.Random(7)
    out: dict[str, list[float]] = {"GET /runs/{id}": [], "GET /analytics/summary": []}
    with server.client() as c:
        for name, count, path in (
            ("GET /runs/{id}", 300, lambda: f"/api/v1/runs/{rng.choice(ids)}"),
            ("GET /analytics/summary", 50, lambda: "/api/v1/analytics/summary"),
        ):
            c.get(path()).raise_for_status()  # (first request: connection set up)
            for _ in range(count):
                start = time.perf_counter()
                c.get(path()).raise_for_status()
                out[name].append(time.perf_counter() - start)
            print(f"{name:46} p95 {_p95(out[name]) * 1000:6.1f} ms", flush=True)
    return out


@dataclass
class Load:
    """What the load test saw."""

    seconds: float = 0.0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def load(server: Server, root: Path) -> Load:
    """20 uploads of the demo sample while 50 clients poll the runs, until every run ended."""
    seen = Load()
    lock = threading.Lock()
    done = threading.Event()
    start = time.perf_counter()

    def upload(_: int) -> None:
        with server.client() as c, (root / SAMPLE).open("rb") as f:
            answer = c.post(
                "/api/v1/runs",
                data={"blueprint": "customer_churn"},
                files={"file": ("customers.csv", f, "text/csv")},
            )
        with lock:
            seen.requests += 1
            if answer.status_code != 202:
                seen.errors.append(f"POST /runs: {answer.status_code} {answer.text[:200]}")
            else:
                seen.run_ids.append(answer.json()["run_id"])

    def poll(k: int) -> None:
        with server.client() as c:
            while not done.is_set():
                with lock:
                    ids = list(seen.run_ids)
                path = f"/api/v1/runs/{ids[k % len(ids)]}" if ids else "/api/v1/runs?limit=20"
                answer = c.get(path)
                with lock:
                    seen.requests += 1
                    if answer.status_code != 200:
                        seen.errors.append(f"GET {path}: {answer.status_code}")
                time.sleep(0.05)

    pollers = [threading.Thread(target=poll, args=(k,)) for k in range(POLLERS)]
    for t in pollers:
        t.start()
    uploads = [threading.Thread(target=upload, args=(k,)) for k in range(UPLOADS)]
    for t in uploads:
        t.start()
    for t in uploads:
        t.join()
    states = _wait_all(server, seen.run_ids)
    done.set()
    for t in pollers:
        t.join()
    seen.seconds = time.perf_counter() - start
    seen.lost = [r for r in seen.run_ids if states.get(r) != "COMPLETED"]
    seen.lost += _rows_missing(root, [r for r in seen.run_ids if r not in seen.lost])
    print(
        f"load: {len(seen.run_ids)} runs, {seen.requests} requests in {seen.seconds:.1f} s, "
        f"{len(seen.errors)} errors, {len(seen.lost)} lost",
        flush=True,
    )
    return seen


def _wait_all(server: Server, run_ids: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    end = time.monotonic() + 900
    with server.client() as c:
        while time.monotonic() < end and len(states) < len(run_ids):
            for run_id in run_ids:
                if run_id not in states:
                    state = c.get(f"/api/v1/runs/{run_id}").json().get("state")
                    if state in ("COMPLETED", "FAILED", "CANCELLED"):
                        states[run_id] = state
            time.sleep(0.5)
    return states


def _rows_missing(root: Path, run_ids: list[str]) -> list[str]:
    """Runs whose 9,750 processed rows are not all readable in the warehouse."""
    from tracer_kit.warehouse import connect

    with connect(root / "data" / "warehouse.duckdb", read_only=True) as con:
        counts = dict(
            con.execute(
                "SELECT run_id, count(*) FROM customer_churn_processed GROUP BY run_id"
            ).fetchall()
        )
    return [r for r in run_ids if counts.get(r) != 9_750]


def render(cli: dict[str, list[float]], api: dict[str, list[float]], seen: Load) -> str:
    polars = statistics.median(cli["floor: polars read + write"])
    papermill = statistics.median(cli["floor: papermill one-cell notebook"])
    targets = {
        "server: tracer run --no-notebook --no-model": (3 * polars, "3x polars"),
        "server: tracer run --no-notebook": (polars + 3, "polars + 3 s"),
        "server: tracer run (notebook)": (papermill, "papermill one-cell"),
        "server: tracer run --no-model (notebook)": (papermill, "papermill one-cell"),
        "server: tracer validate": (1.5 * polars, "1.5x polars"),
    }
    lines = [
        f"# tracer serve ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, 2 workers)",
        "",
        f"Whole client processes on `{SAMPLE}` (10,000 rows), forwarded to the server.",
        "",
        "| command | median s | min s | max s | target | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, seconds in cli.items():
        limit, words = targets.get(name, (None, "floor" if name.startswith("floor") else ""))
        median = statistics.median(seconds)
        verdict = "" if limit is None else ("PASS" if median <= limit else "FAIL")
        shown = words if limit is None else f"<= {limit:.2f} s ({words})"
        lines.append(
            f"| {name} | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} | {shown} | {verdict} |"
        )
    lines += [
        "",
        f"API latency with {RUNS_IN_WAREHOUSE:,} runs in the warehouse, at the client:",
        "",
        "| request | p50 ms | p95 ms | target | verdict |",
        "|---|---:|---:|---|---|",
    ]
    for name, limit in (("GET /runs/{id}", 20), ("GET /analytics/summary", 100)):
        p50, p95 = statistics.median(api[name]) * 1000, _p95(api[name]) * 1000
        lines.append(
            f"| {name} | {p50:.1f} | {p95:.1f} | p95 < {limit} ms | {'PASS' if p95 < limit else 'FAIL'} |"
        )
    ok = not seen.errors and not seen.lost and len(seen.run_ids) == UPLOADS
    lines += [
        "",
        f"Load: {POLLERS} clients polling while {UPLOADS} uploads run: {len(seen.run_ids)} runs, "
        f"{seen.requests:,} requests in {seen.seconds:.1f} s, {len(seen.errors)} error answers, "
        f"{len(seen.lost)} runs lost or missing rows: {'PASS' if ok else 'FAIL'}",
        *(f"- {e}" for e in seen.errors[:10]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--results", default=str(HERE / "server.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tracer-server-") as tmp:
        root = _project(Path(tmp))
        with serving(root) as server:
            cli = cli_timings(root, args.repeat)
            api = api_latency(server, root)
            seen = load(server, root)
        text = render(cli, api, seen)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
