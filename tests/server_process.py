"""``tracer serve`` as a real process on a free port, for the server's tests (stopped after)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .conftest import venv_bin


@dataclass
class RunningServer:
    project: Path
    process: subprocess.Popen
    url: str
    token: str

    def client(self, token: str | None = "local", **kw: Any) -> httpx.Client:
        bearer = self.token if token == "local" else token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kw)

    def wait_run(self, run_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll GET /runs/{id} until the run has ended; its last answer."""
        with self.client() as c:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                body = c.get(f"/api/v1/runs/{run_id}").json()
                if body.get("state") in ("COMPLETED", "FAILED", "CANCELLED"):
                    return body
                time.sleep(0.1)
        raise AssertionError(f"run {run_id} still going after {timeout} s: {body}")

    def log(self) -> str:
        return (self.project / "serve.log").read_text(errors="replace")


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    return False


@contextlib.contextmanager
def running_server(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> Iterator[RunningServer]:
    """Start ``tracer serve --port 0 ARGS`` in ``project``; wait until its workers are warm."""
    log = (project / "serve.log").open("ab")
    process = subprocess.Popen(
        [venv_bin("tracer"), "serve", "--port", "0", *args],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TRACER_LOCK_TIMEOUT": "30", **(env or {})},
    )
    server = None
    try:
        end = time.monotonic() + timeout
        info = project / ".tracer" / "server.json"
        while time.monotonic() < end and process.poll() is None:
            if info.exists():
                data = json.loads(info.read_text())
                if data["pid"] == process.pid and _ready(data["url"]):
                    token = Path(data["token_file"]).read_text().strip()
                    server = RunningServer(project, process, data["url"], token)
                    break
            time.sleep(0.2)
        assert server is not None, (project / "serve.log").read_text(errors="replace")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()
