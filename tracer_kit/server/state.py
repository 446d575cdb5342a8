"""A running server's state: settings, the pool, jobs by run id, metrics, auth and limits."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
import threading
import time
from pathlib import Path
from typing import Any

from tracer_kit._testing import test_clock_file
from tracer_kit.cron import server_timezone
from tracer_kit.project import ProjectFile, load_project_file
from tracer_kit.server.alerts import Alerts
from tracer_kit.server.inbox import Inbox
from tracer_kit.server.keys import matching_key
from tracer_kit.server.pool import Job, WorkerPool
from tracer_kit.server.schedules import Scheduler, server_clock
from tracer_kit.server.settings import ServerSettings
from tracer_kit.server.telemetry import Metrics
from tracer_kit.warehouse import Replica, connect, open_warehouse

__all__ = ["ApiError", "Server", "principal_of", "server_of"]

log = logging.getLogger("tracer_kit.server")

#: Finished jobs kept in memory (newest), for their events and results.
_KEPT_JOBS = 2_000


class ApiError(Exception):
    """An answer other than success: HTTP status, the error's kind and its one line."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers or {}


def server_of(request: Any) -> Server:
    """The server a request reached (a route's dependency)."""
    return request.app.state.server  # type: ignore[no-any-return]


def principal_of(request: Any, authorization: str | None) -> str:
    """Who sends the request (:meth:`Server.principal`)."""
    return server_of(request).principal(authorization)


class _RateLimit:
    """At most ``per_minute`` requests per key in any sliding minute (a token bucket)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed; else the seconds until a request would be."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class Server:
    """Everything a request handler needs."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.jobs: dict[str, Job] = {}
        self.jobs_lock = threading.Lock()
        self.pool = WorkerPool(
            settings.project,
            size=settings.workers,
            queue_size=settings.queue_size,
            warehouse=settings.warehouse,
            on_end=self._ended,
            warm_kernels=settings.warm_kernels,
        )
        self.metrics = Metrics(self.pool.depth, lambda: self.pool.restarts)
        self.limits = _RateLimit(settings.rate_limit)
        self.replica = Replica(Path(settings.warehouse))
        self._observing = threading.Lock()
        self._keys: dict[str, tuple[str | None, float]] = {}
        self._seen_until: dt.datetime | None = None
        self.started_at = time.time()
        self._automate(load_project_file(settings.project))

    def _automate(self, project: ProjectFile) -> None:
        """The schedules, the inbox and the alerts, as ``tracer.yaml`` sets them."""
        settings = self.settings
        self.project_file = project
        self.zone = server_timezone(project.server.timezone)
        self.clock = server_clock()
        public = (project.server.public_url or settings.url).rstrip("/")
        self.alerts = Alerts(
            project.alerts, settings.warehouse, link=lambda run_id: f"{public}/reports/{run_id}"
        )
        self.scheduler = Scheduler(
            settings.project,
            settings.warehouse,
            zone=self.zone,
            clock=self.clock,
            submit=self.submit,
            base_config=project.run,
            on_firing_end=self.alerts.firing_ended,
            on_tick=self._look_at_runs,
            reads=self.replica.reads,
            poll=0.2 if test_clock_file() else 1.0,
        )
        self.inbox = (
            Inbox(
                settings.project,
                project.inbox,
                settings.warehouse,
                submit=self.submit,
                base_config=project.run,
            )
            if project.inbox.enabled
            else None
        )

    # ----- auth -----
    def principal(self, authorization: str | None) -> str:
        """Who sends a request: ``"local"`` (the project's token) or an API key's name."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(
                401,
                "auth",
                "send Authorization: Bearer <token>; the local token is in the file "
                ".tracer/server.json names, an API key comes from `tracer serve keys create`",
            )
        bearer = authorization[7:].strip()
        token = self.settings.token
        if self.settings.loopback and token and hmac.compare_digest(bearer, token):
            return "local"
        name = self._key_name(bearer)
        if name is None:
            raise ApiError(401, "auth", "the token or API key is not valid (or was revoked)")
        wait = self.limits.take(name)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"API key {name!r} sent more than {self.settings.rate_limit} requests a minute; "
                f"retry in {wait:.0f} s",
                {"Retry-After": str(max(1, round(wait)))},
            )
        return name

    def _key_name(self, bearer: str) -> str | None:
        cached = self._keys.get(bearer)
        if cached and time.monotonic() - cached[1] < 5:
            return cached[0]
        name = None
        if self.settings.warehouse.exists():
            with contextlib.suppress(Exception):
                name = matching_key(bearer, self.settings.warehouse)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[bearer] = (name, time.monotonic())
        return name

    # ----- jobs -----
    def submit(self, job: Job) -> Job:
        """Queue a job (``QueueFull`` propagates) and remember it by run id."""
        self.pool.submit(job)
        with self.jobs_lock:
            self.jobs[job.run_id or job.id] = job
            if len(self.jobs) > _KEPT_JOBS:
                for key in [k for k, j in self.jobs.items() if j.done][: len(self.jobs) // 4]:
                    del self.jobs[key]
        return job

    def in_flight(self) -> list[Job]:
        """Runs queued or running, oldest first."""
        with self.jobs_lock:
            jobs = list(self.jobs.values())
        return [j for j in jobs if j.run_id and not j.done]

    def job(self, run_id: str) -> Job | None:
        """The job of a run this server queued (None for other runs)."""
        with self.jobs_lock:
            return self.jobs.get(run_id)

    def _ended(self, job: Job) -> None:
        """After any job: the runs that ended since last time (whoever started them) are
        counted and judged; a schedule's or the inbox's job is followed up.
        """  # noqa: D205
        self._observe_quietly()
        for follow in (self.scheduler.job_ended, *([self.inbox.job_ended] if self.inbox else [])):
            try:
                follow(job)
            except Exception:
                log.exception("following up job %s failed", job.run_id or job.id)

    def _look_at_runs(self) -> None:
        """The periodic look (runs finished outside the server's jobs), from the copy: it
        never takes the lock from a run; what the copy does not hold yet, the next look sees.
        """  # noqa: D205
        with self.replica.reads():
            self._observe_quietly()

    def _observe_quietly(self) -> None:
        with self._observing:
            try:
                self.observe_runs()
            except Exception:
                log.exception("observing finished runs failed")

    def observe_runs(self) -> None:
        """Runs that finished since the last look: their state, rows and stage seconds."""
        if not self.settings.warehouse.exists():
            return
        with connect(self.settings.warehouse, read_only=True) as con:
            since = self._seen_until or dt.datetime.fromtimestamp(self.started_at, dt.UTC).replace(
                tzinfo=None
            )
            cur = con.execute(
                "SELECT r.run_id, r.state, r.blueprint, r.rows_in, r.rows_quarantined, "
                "r.finished_at, list(t.stage), list(t.seconds) FROM runs r "
                "LEFT JOIN stage_timings t USING (run_id) WHERE r.finished_at > ? "
                "GROUP BY ALL ORDER BY r.finished_at",
                [since],
            )
            rows = cur.fetchall()
        for run_id, state, bp, rows_in, quarantined, finished, stages, seconds in rows:
            timings = {s: v for s, v in zip(stages, seconds, strict=True) if s is not None}
            self.metrics.run_ended(
                state,
                bp,
                {"rows_in": rows_in, "rows_quarantined": quarantined, "stage_seconds": timings},
            )
            self._seen_until = finished
            self.alerts.run_ended(run_id)

    # ----- life -----
    def start(self) -> None:
        """Open (or create) the warehouse, start the workers, then the scheduler and inbox."""
        open_warehouse(self.settings.warehouse)
        self.pool.start()
        self.alerts.start()
        self.scheduler.start()
        if self.inbox is not None:
            self.inbox.start()

    def stop(self, grace: float = 30.0) -> None:
        """Stop firing and watching; finish or cancel the running jobs, cancel the waiting
        ones, stop the workers; let alerts under way be sent.
        """  # noqa: D205
        self.scheduler.stop()
        if self.inbox is not None:
            self.inbox.stop()
        self.pool.stop(grace)
        self.alerts.stop()

    def inside(self, path: Path) -> bool:
        """Whether ``path`` (resolved) is in the project folder or an allowed folder."""
        roots = (self.settings.project, *self.settings.allow_paths)
        return any(path.is_relative_to(root.resolve()) for root in roots)

    def health(self) -> dict[str, Any]:
        """Each part's state for ``/readyz``."""
        from shutil import disk_usage

        checks: dict[str, Any] = {}
        try:
            if self.settings.warehouse.exists():
                with connect(self.settings.warehouse, read_only=True, timeout=5) as con:
                    con.execute("SELECT count(*) FROM runs").fetchall()
            checks["warehouse"] = {"ok": True, "path": str(self.settings.warehouse)}
        except Exception as exc:
            checks["warehouse"] = {"ok": False, "error": str(exc).splitlines()[0]}
        free = disk_usage(self.settings.project).free
        checks["disk"] = {"ok": free > 512 * 2**20, "free_bytes": free}
        workers = self.pool.status()
        checks["workers"] = {
            "ok": all(w["alive"] and w["ready"] for w in workers),
            "workers": workers,
            "restarts": self.pool.restarts,
        }
        checks["queue"] = {
            "ok": True,
            "waiting": self.pool.depth(),
            "size": self.pool.queue.maxsize,
        }
        return checks
