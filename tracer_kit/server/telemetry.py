"""The server's Prometheus metrics (``GET /metrics``), in one registry of its own.

Runs by state and blueprint, rows in and quarantined, stage seconds as histograms, the
queue's depth, worker restarts, and HTTP requests by route and status with latency
histograms. Values are set where things happen (a job's end, a request's end); the queue
depth and restarts are read when scraped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """Every metric the server exports."""

    def __init__(self, depth: Callable[[], int], restarts: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "tracer_runs", "Runs ended, by state and blueprint", ["state", "blueprint"], registry=r
        )
        self.rows_in = Counter("tracer_rows_in", "Rows read by runs", registry=r)
        self.rows_quarantined = Counter(
            "tracer_rows_quarantined", "Rows quarantined by runs", registry=r
        )
        self.stage_seconds = Histogram(
            "tracer_stage_seconds", "Seconds per run stage", ["stage"], buckets=_SECONDS, registry=r
        )
        self.requests = Counter(
            "tracer_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tracer_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=_SECONDS,
            registry=r,
        )
        queue = Gauge("tracer_queue_depth", "Jobs waiting for a worker", registry=r)
        queue.set_function(lambda: float(depth()))
        restarted = Gauge(
            "tracer_worker_restarts", "Workers replaced after dying (since start)", registry=r
        )
        restarted.set_function(lambda: float(restarts()))

    def run_ended(self, state: str, blueprint: str, row: dict[str, Any] | None) -> None:
        """Count a run's end, its rows and its stage timings."""
        self.runs.labels(state=state, blueprint=blueprint or "").inc()
        if not row:
            return
        self.rows_in.inc(row.get("rows_in") or 0)
        self.rows_quarantined.inc(row.get("rows_quarantined") or 0)
        for stage, seconds in (row.get("stage_seconds") or {}).items():
            self.stage_seconds.labels(stage=stage).observe(float(seconds))

    def request(self, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def text(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
