"""``tracer serve``: a real server process on 127.0.0.1 and a free port, driven over HTTP and by
the CLI; every server a test starts is stopped by it.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import polars as pl
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tracer_kit as tk
from tracer_kit.datasets import write_samples

from .conftest import venv_bin
from .server_process import RunningServer, running_server

pytestmark = pytest.mark.slow

UPLOAD_LIMIT = 20_000_000


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    write_samples(folder / "data" / "samples", n=10_000)
    broken = pl.read_csv(folder / "data" / "samples" / "customers.csv", infer_schema=False)
    broken = broken.head(400).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(pl.lit("lots"))
        .otherwise(pl.col("support_tickets"))
        .alias("support_tickets")
    )
    broken.write_csv(folder / "broken.csv")
    (folder / "strict.yaml").write_text(
        "quality:\n  thresholds:\n    min_score: 99.9\n"
    )  # (the sample: 99.1)
    return folder


@pytest.fixture(scope="module")
def server(project: Path):
    with running_server(
        project, "--workers", "2", "--allow-sql", "--max-upload", str(UPLOAD_LIMIT)
    ) as running:
        yield running


def _post_run(server: RunningServer, path: Path, **fields: str) -> str:
    with server.client() as c, path.open("rb") as fh:
        answer = c.post(
            "/api/v1/runs",
            files={"file": (path.name, fh, "text/csv")},
            data={"blueprint": "customer_churn", **fields},
        )
    assert answer.status_code == 202, answer.text
    return answer.json()["run_id"]


def test_upload_poll_and_download_everything(server: RunningServer, project: Path):
    run_id = _post_run(server, project / "data/samples/customers.csv")
    with server.client() as c:
        events = c.get(f"/api/v1/runs/{run_id}/events").text  # (streams until the run ends)
        run = server.wait_run(run_id)
        assert run["state"] == "COMPLETED", run
        assert (run["rows_in"], run["rows_quarantined"], run["rows_out"]) == (10_000, 250, 9_750)
        assert run["dataset"] == "customers"  # (named by the upload's name, not the stored one)
        assert set(run["score_parts"]) == {"completeness", "uniqueness", "validity", "consistency"}
        assert {"ingest", "validate", "store", "report"} <= set(run["stage_seconds"])
        stages = re.findall(r'"stage": "(\w+)"', events)
        assert stages[:3] == ["ingest", "validate", "features"] and "report" in stages
        assert 'event: end\ndata: {"type": "end", "state": "COMPLETED"' in events

        page = c.get(f"/api/v1/runs/{run_id}/processed", params={"limit": 5, "offset": 10}).json()
        assert page["total"] == 9_750 and len(page["rows"]) == 5
        processed = pl.read_parquet(
            io.BytesIO(c.get(f"/api/v1/runs/{run_id}/processed?format=parquet").content)
        )
        assert processed.height == 9_750
        assert page["rows"][0]["customer_id"] == processed["customer_id"][10]
        quarantine = c.get(f"/api/v1/runs/{run_id}/quarantine", headers={"Accept": "text/csv"}).text
        assert quarantine.count("\n") == 251  # a header and the 250 quarantined rows
        assert quarantine.startswith("source_row,source_line,stage,failed,")
        report = c.get(f"/api/v1/runs/{run_id}/report")
        assert report.headers["content-type"].startswith("text/html")
        assert run_id in report.text and "<script src=" not in report.text  # self-contained
        listed = c.get("/api/v1/runs", params={"dataset": "customers", "state": "COMPLETED"})
        assert run_id in [r["run_id"] for r in listed.json()["runs"]]
    uploads = list((project / "data" / "uploads").iterdir())
    assert all(re.fullmatch(r"[0-9a-f]{32}\.csv", p.name) for p in uploads)


def _tracer(project: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [venv_bin("tracer"), *args],
        cwd=project,
        capture_output=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
    )


def test_the_cli_through_the_server_prints_what_it_prints_without_it(
    server: RunningServer, project: Path
):
    for args in (
        ("validate", "data/samples/customers.csv", "-b", "customer_churn"),
        ("validate", "broken.csv", "-b", "customer_churn"),
        (
            "validate",
            "data/samples/customers.csv",
            "-b",
            "customer_churn",
            "--config",
            "strict.yaml",
        ),  # exit 3, the gate's line
        ("validate", "broken.csv", "-b", "customer_churn", "--output-format", "json"),
        ("profile", "data/samples/revenue.csv"),
        ("validate", "missing.csv", "-b", "customer_churn"),  # exit 1, one line
    ):
        remote, local = _tracer(project, *args), _tracer(project, *args, "--local")
        assert (remote.returncode, remote.stdout, remote.stderr) == (
            local.returncode,
            local.stdout,
            local.stderr,
        ), args
    gate = _tracer(
        project,
        "validate",
        "data/samples/customers.csv",
        "-b",
        "customer_churn",
        "--config",
        "strict.yaml",
    )
    assert gate.returncode == 3 and gate.stderr.startswith(b"error: quality gate failed")

    remote = _tracer(
        project,
        "run",
        "data/samples/customers.csv",
        "-b",
        "customer_churn",
        "--no-notebook",
        "--no-model",
        "--dataset",
        "via_server",
    )
    local = _tracer(
        project,
        "run",
        "data/samples/customers.csv",
        "-b",
        "customer_churn",
        "--no-notebook",
        "--no-model",
        "--dataset",
        "here",
        "--local",
    )
    assert remote.returncode == local.returncode == 0, remote.stderr

    def masked(text: bytes) -> str:
        text = re.sub(r"\d{8}T\d{6}-[0-9a-f]{6}", "RUN", text.decode())
        return re.sub(r"in \d+\.\d\d s", "in T s", text)

    assert masked(remote.stdout) == masked(local.stdout)
    ids = [
        re.search(rb"\d{8}T\d{6}-[0-9a-f]{6}", p.stdout).group().decode() for p in (remote, local)
    ]
    frames = [pl.read_parquet(project / f"data/processed/customer_churn/{i}.parquet") for i in ids]
    assert frames[0].equals(frames[1])


def test_every_api_request_needs_the_token(server: RunningServer):
    for token in (None, "not-the-token"):
        with server.client(token=token) as c:
            answer = c.get("/api/v1/runs")
            assert answer.status_code == 401
            assert answer.json()["kind"] == "auth" and "Bearer" not in answer.json()["kind"]
    with server.client(token=None) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/readyz").json()["checks"]["workers"]["ok"] is True
        assert c.get("/metrics").status_code == 200
        assert (
            "access-control-allow-origin"
            not in c.get("/healthz", headers={"Origin": "https://evil.example"}).headers
        )


def test_a_source_outside_the_project_is_refused(server: RunningServer, tmp_path: Path):
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(server.project / "data/samples/customers.csv", outside)
    with server.client() as c:
        for source in (str(outside), "../elsewhere.csv", "/etc/passwd"):
            answer = c.post("/api/v1/runs", data={"blueprint": "customer_churn", "source": source})
            assert answer.status_code == 403, answer.text
            assert answer.json() == {
                "error": f"{source}: outside the project folder; start the server with "
                "--allow-path DIR to read from DIR",
                "kind": "forbidden",
            }
        sql = c.post("/api/v1/query", json={"sql": "SELECT * FROM read_csv('/etc/passwd')"})
        assert sql.status_code == 422 and "\n" not in sql.json()["error"]
        counted = c.post("/api/v1/query", json={"sql": "SELECT count(*) AS n FROM runs"})
        assert counted.json()["columns"] == ["n"]


def test_an_upload_over_the_limit_is_refused_before_it_fills_the_disk(
    server: RunningServer, project: Path
):
    uploads = project / "data" / "uploads"
    before = {p.name for p in uploads.iterdir()} if uploads.exists() else set()
    host, port = server.url.removeprefix("http://").split(":")
    # a declared 2 GB body: refused from its headers, before a byte of it is read
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/api/v1/runs")
    conn.putheader("Authorization", f"Bearer {server.token}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(2 * 10**9))
    conn.endheaders()
    conn.send(b"--x\r\n" + b"0" * 65_536)
    answer = conn.getresponse()
    assert answer.status == 413 and json.loads(answer.read())["kind"] == "too_large"
    conn.close()
    # a chunked body of 2 GB that never says its size: cut off at the limit
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        )
        part = 'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        sock.sendall(head.encode() + b"%x\r\n--x\r\n%s\r\n" % (5 + len(part), part.encode()))
        chunk = b"%x\r\n%s\r\n" % (1 << 20, b"1" * (1 << 20))
        with pytest.raises(OSError):
            while sent < 2 * 10**9:
                sock.sendall(chunk)
                sent += 1 << 20
            sock.recv(1)
            raise OSError("the whole body went through")
    assert sent < 20 * UPLOAD_LIMIT  # (the socket buffers hold a little more than the limit)
    after = {p.name for p in uploads.iterdir()} if uploads.exists() else set()
    assert after == before


def test_metrics_parse_and_count_the_runs(server: RunningServer):
    with server.client() as c:
        c.get("/api/v1/runs")
        text = c.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    runs = {
        (s.labels["state"], s.labels["blueprint"]): s.value
        for s in families["tracer_runs"].samples
        if s.name == "tracer_runs_total"
    }
    assert runs[("COMPLETED", "customer_churn")] >= 1
    assert any(s.value >= 10_000 for s in families["tracer_rows_in"].samples)
    stages = {s.labels.get("stage") for s in families["tracer_stage_seconds"].samples}
    assert {"ingest", "validate", "report"} <= stages
    requests = families["tracer_http_requests"].samples
    assert any(
        s.labels["route"] == "/api/v1/runs" and s.labels["status"] == "200" for s in requests
    )
    assert "tracer_queue_depth" in families and "tracer_worker_restarts" in families


def test_the_fuzzer_finds_no_server_error_and_no_answer_off_its_schema(server: RunningServer):
    checks = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
    done = subprocess.run(
        [
            venv_bin("st"),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {server.token}",
            "--checks",
            checks,
            "-n",
            "12",
            "--generation-deterministic",
            "--request-timeout",
            "60",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=server.project,  # (its .schemathesis cache goes there, not into the checkout)
    )
    assert done.returncode == 0, done.stdout[-6000:]


def test_no_database_secret_reaches_a_response_or_the_project(
    server: RunningServer, project: Path, postgres
):
    url = postgres.new_database("served")  # postgresql://user:SECRET@127.0.0.1:port/served
    secret = postgres.password
    assert secret in url
    sample = pl.read_csv(project / "data/samples/customers.csv", infer_schema=False)
    with psycopg.connect(url) as con:
        con.execute(f"CREATE TABLE customers ({', '.join(f'{c} text' for c in sample.columns)})")
        with con.cursor().copy("COPY customers FROM STDIN WITH (FORMAT csv, HEADER)") as cp:
            cp.write(sample.write_csv().encode())
    with server.client() as c:
        answer = c.post(
            "/api/v1/runs",
            data={
                "blueprint": "customer_churn",
                "source": url,
                "config": json.dumps({"read": {"table": "customers"}, "model": {"enabled": False}}),
            },
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        bodies = [answer.text, c.get(f"/api/v1/runs/{run_id}/events").text]
        run = server.wait_run(run_id)
        assert run["state"] == "COMPLETED", run
        bodies += [
            json.dumps(run),
            c.get("/api/v1/runs").text,
            c.get("/api/v1/datasets").text,
            c.get(f"/api/v1/runs/{run_id}/report").text,
            c.get("/metrics").text,
        ]
    assert all(secret not in body for body in bodies)
    for path in project.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in server.log()


@pytest.fixture
def paused_server(tmp_path: Path):
    """One worker, a queue of one, and every run pausing 3 s at its features stage."""
    write_samples(tmp_path / "data" / "samples", n=2_000)
    env = {
        "TRACER_TEST_PAUSE_AT": "features",
        "TRACER_TEST_PAUSE_SECONDS": "3",
        "TRACER_TEST_PAUSE_FILE": str(tmp_path / "paused"),
    }
    with running_server(tmp_path, "--workers", "1", "--queue", "1", env=env) as running:
        yield running


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_a_killed_worker_fails_its_run_and_the_next_run_completes(paused_server: RunningServer):
    sample = paused_server.project / "data/samples/customers.csv"
    run_id = _post_run(paused_server, sample)
    _wait_for(paused_server.project / "paused")
    with paused_server.client() as c:
        workers = c.get("/readyz").json()["checks"]["workers"]["workers"]
        busy = [w for w in workers if w["job"] == run_id]
        os.kill(busy[0]["pid"], signal.SIGKILL)
        failed = paused_server.wait_run(run_id)
        assert failed["state"] == "FAILED"
        assert "the worker running it stopped" in failed["error"]
        (paused_server.project / "paused").unlink()
        again = paused_server.wait_run(_post_run(paused_server, sample))
        assert again["state"] == "COMPLETED" and again["rows_in"] == 2_000
        restarts = [
            s
            for s in c.get("/metrics").text.splitlines()
            if s.startswith("tracer_worker_restarts ")
        ]
        assert restarts == ["tracer_worker_restarts 1.0"]


def test_a_full_queue_answers_429_and_sigterm_leaves_no_run_in_progress(
    paused_server: RunningServer,
):
    sample = paused_server.project / "data/samples/customers.csv"
    running = _post_run(paused_server, sample)
    _wait_for(paused_server.project / "paused")
    waiting = _post_run(paused_server, sample)
    with paused_server.client() as c, sample.open("rb") as fh:
        full = c.post(
            "/api/v1/runs", files={"file": ("c.csv", fh)}, data={"blueprint": "customer_churn"}
        )
    assert full.status_code == 429 and full.headers["Retry-After"] == "5"
    assert full.json()["kind"] == "busy"
    with paused_server.client() as c:  # the queued run is listed before it reaches the warehouse
        listed = c.get("/api/v1/runs").json()
        assert listed["runs"][0] == {
            "run_id": waiting,
            "blueprint": "customer_churn",
            "state": "PENDING",
        }
        assert running in [r["run_id"] for r in listed["runs"]] and listed["total"] == 2
    paused_server.process.send_signal(signal.SIGTERM)
    assert paused_server.process.wait(90) == 0
    states = _states(paused_server.project)
    assert states[running] == "COMPLETED"  # (it finished within the grace period)
    assert waiting not in states or states[waiting] == "CANCELLED"
    assert "IN_PROGRESS" not in states.values() and "PENDING" not in states.values()
    assert not (paused_server.project / ".tracer" / "server.json").exists()


def _states(project: Path) -> dict[str, str]:
    rows = tk.query("SELECT run_id, state FROM runs", warehouse=project / "data/warehouse.duckdb")
    return dict(rows.iter_rows())


def _kernels(server: RunningServer) -> list[dict]:
    workers = httpx.get(f"{server.url}/readyz", timeout=10).json()["checks"]["workers"]
    return [w["kernel"] for w in workers["workers"]]


def _wait_kernels(server: RunningServer, *, not_pids: set[int] = frozenset()) -> set[int]:
    """Wait until every worker has a kernel waiting (none of ``not_pids``); their pids."""
    end = time.monotonic() + 180
    while time.monotonic() < end:
        kernels = _kernels(server)
        pids = {k.get("pid") for k in kernels if k["state"] == "waiting"}
        if len(pids) == len(kernels) and not pids & not_pids:
            return pids
        time.sleep(0.5)
    raise AssertionError(f"kernels not started: {kernels}\n{server.log()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_notebook_run_takes_a_kernel_started_ahead_and_discards_it(
    server: RunningServer, project: Path
):
    waiting = _wait_kernels(server)
    run_id = _post_run(server, project / "data/samples/customers.csv", notebook="true")
    body = server.wait_run(run_id, timeout=300)
    assert body["state"] == "COMPLETED", body
    folder = project / "reports" / run_id
    assert (folder / "notebook.html").is_file() and (folder / "kernel.log").is_file()
    used = {pid for pid in waiting if not _alive(pid)}
    assert len(used) == 1  # the run's own kernel, shut down after its one run; the other waits
    assert _wait_kernels(server, not_pids=used)  # and a new one waits in its place
    # one log per waiting kernel: the used one's went to the run's folder
    assert len(list((project / ".tracer" / "kernels").glob("*.log"))) == len(waiting)


def test_the_workbench_submits_through_the_server(
    server: RunningServer, project: Path, monkeypatch: pytest.MonkeyPatch
):
    from tracer_kit.widgets import workbench

    monkeypatch.chdir(project)
    bench = workbench("data")
    bench.file.value = "data/samples/customers.csv"
    bench.blueprint.value = "customer_churn"
    bench.run.click()
    assert bench.error.value == "" and bench.progress.bar_style == "success"
    assert "Quality score: <span class='quality-score'>99.1</span>" in bench.summary.value
    assert "engagement_score" in bench.sample.value
    workers = httpx.get(f"{server.url}/readyz", timeout=10).json()["checks"]["workers"]
    pid = tk.query(f"SELECT pid FROM runs WHERE run_id = '{bench.result.run_id}'")["pid"].item()
    assert pid in {w["pid"] for w in workers["workers"]} and pid != os.getpid()  # a warm worker

    # a gate failure through the server reads as it does in the kernel: the line and the result
    rows = pl.read_csv(project / "broken.csv", infer_schema=False)
    rows.with_columns(support_tickets=pl.lit("lots")).write_csv(project / "data" / "all_bad.csv")
    bench.refresh_files()
    bench.file.value = "data/all_bad.csv"
    bench.run.click()
    assert (
        bench.progress.bar_style == "danger" and bench.stage.value == "stopped at the quality gate"
    )
    assert "quality gate failed" in bench.error.value
    assert "support_tickets" in bench.issues.value  # the result shown, as in the kernel
