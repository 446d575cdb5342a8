"""Schedules: a source run through a blueprint whenever a cron expression is due.

Kept in the warehouse's ``schedules`` table; fired by the running server only
(:class:`Scheduler`, one thread). Rules:

- cron is read in the server's time zone (:func:`~tracer_kit.cron.server_timezone`);
- a schedule that was due while the server was down runs once when it starts, not once
  per missed time, and its listing says how many it missed;
- a source that is a folder or a glob runs the files that arrived since its last firing
  (one run each, oldest first); finding none is recorded (an alert rule can watch it);
- a schedule due while its previous firing still runs is queued behind it, never run twice
  at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracer_kit._testing import test_clock_file
from tracer_kit.blueprints import get_blueprint
from tracer_kit.config import load_config
from tracer_kit.connections import is_url
from tracer_kit.cron import check_cron, due_slots
from tracer_kit.errors import ConfigError
from tracer_kit.ingest import input_extensions
from tracer_kit.server.pool import Job
from tracer_kit.server.ticking import Ticking
from tracer_kit.warehouse import (
    IDENT,
    delete_row,
    insert_row,
    new_run_id,
    table_rows,
    update_row,
)

__all__ = [
    "EDITABLE",
    "PARTIAL_SUFFIXES",
    "ScheduleSpec",
    "Scheduler",
    "add_schedule",
    "change_schedule",
    "merged_config",
    "remove_schedule",
    "server_clock",
]

log = logging.getLogger("tracer_kit.server")

Clock = Callable[[], dt.datetime]

#: What ``PATCH /schedules/{name}`` (and ``pause``/``resume``) may change.
EDITABLE = ("cron", "source", "blueprint", "dataset", "notebook", "config_file", "paused")

#: Files a folder source or the inbox never runs (being written, or written by tracer-kit).
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".error.txt", "~")

#: The most file keys a schedule remembers (the oldest are forgotten first).
_SEEN_KEPT = 20_000


def server_clock() -> Clock:
    """Now, as an aware UTC time: the system's, or a test's (``TRACER_TEST_CLOCK``)."""
    path = test_clock_file()
    if path is None:
        return lambda: dt.datetime.now(dt.UTC)

    def now() -> dt.datetime:
        try:
            return dt.datetime.fromisoformat(path.read_text().strip()).astimezone(dt.UTC)
        except (OSError, ValueError):
            return dt.datetime.now(dt.UTC)

    return now


@dataclass(frozen=True)
class ScheduleSpec:
    """What ``tracer schedule add`` is told."""

    name: str
    cron: str
    source: str
    blueprint: str
    dataset: str | None = None
    notebook: bool = False
    config_file: str | None = None


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.replace(tzinfo=dt.UTC)


def _checked(values: dict[str, Any], project: Path) -> dict[str, Any]:
    """The values of a new or changed schedule, each checked (ConfigError names the bad one)."""
    out = dict(values)
    if "cron" in out:
        out["cron"] = check_cron(out["cron"])
    if "blueprint" in out:
        out["blueprint"] = get_blueprint(out["blueprint"]).name
    if out.get("source") and not is_url(out["source"]) and not glob.has_magic(out["source"]):
        if not (project / out["source"]).exists():
            raise ConfigError(f"{out['source']}: no such file or folder (under {project})")
    if out.get("config_file"):
        load_config(project / out["config_file"])
    if out.get("dataset") is not None and not str(out["dataset"]).strip():
        raise ConfigError("dataset: give a name, or leave it out")
    return out


def add_schedule(warehouse: Path, spec: ScheduleSpec, *, project: Path, now: dt.datetime) -> None:
    """Keep a new schedule (its first firing is the first time due after ``now``).

    Raises
    ------
    ConfigError
        A bad name, cron, blueprint, source or config file, or a name already taken.
    """
    if not IDENT.fullmatch(spec.name):
        raise ConfigError(f"schedule name {spec.name!r}: use letters, digits and _ (e.g. daily)")
    values = _checked(
        {
            "cron": spec.cron,
            "source": spec.source,
            "blueprint": spec.blueprint,
            "dataset": spec.dataset,
            "config_file": spec.config_file,
        },
        project,
    )
    row = {
        "name": spec.name,
        **values,
        "notebook": spec.notebook,
        "paused": False,
        "created_at": _naive(now),
        "updated_at": _naive(now),
        "last_runs": [],
        "seen": [],
    }
    if not insert_row(warehouse, "schedules", row):
        raise ConfigError(
            f"a schedule called {spec.name!r} exists; remove it first "
            f"(`tracer schedule remove {spec.name}`)"
        )


def change_schedule(
    warehouse: Path, name: str, changes: dict[str, Any], *, project: Path, now: dt.datetime
) -> None:
    """Change a schedule's fields (:data:`EDITABLE`); resuming starts from ``now``.

    A paused schedule that is resumed does not catch up on the times it was paused for.
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ConfigError(f"cannot change {', '.join(sorted(unknown))} of a schedule")
    values = _checked(changes, project)
    values["updated_at"] = _naive(now)
    if values.get("paused") is False:
        values["last_due_at"] = _naive(now)  # (resumed: no catch-up for the paused time)
    if not update_row(warehouse, "schedules", name, values):
        raise ConfigError(f"no schedule called {name!r}; `tracer schedule list` shows them")


def remove_schedule(warehouse: Path, name: str) -> None:
    """Forget a schedule (its runs stay)."""
    if not delete_row(warehouse, "schedules", name):
        raise ConfigError(f"no schedule called {name!r}; `tracer schedule list` shows them")


def merged_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged_config(out[key], value)
        else:
            out[key] = value
    return out


def _file_key(path: Path, project: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(project) if path.is_relative_to(project) else path}|{stat.st_size}|{stat.st_mtime_ns}"


def _arrivals(source: str, project: Path, seen: set[str]) -> list[tuple[Path, str]] | None:
    """A folder's or a glob's files not seen before (oldest first); None for one source."""
    if is_url(source):
        return None
    where = project / source
    if glob.has_magic(source):
        paths = [Path(p) for p in glob.glob(str(where), recursive=True)]
    elif where.is_dir():
        paths = list(where.iterdir())
    else:
        return None
    endings = input_extensions()
    files = [
        p
        for p in paths
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith(PARTIAL_SUFFIXES)
        and p.suffix.lower() in endings
    ]
    keyed = [(p, _file_key(p, project)) for p in files]
    fresh = [(p, k) for p, k in keyed if k not in seen]
    return sorted(fresh, key=lambda pk: (pk[0].stat().st_mtime_ns, pk[0].name))


@dataclass
class _Firing:
    """A schedule's runs in flight, and whether it came due again meanwhile."""

    runs: dict[str, str]  # run id -> state ("" while it goes)
    again: bool = False


class Scheduler:
    """Fires due schedules into the pool; one thread, ticking every ``poll`` seconds."""

    def __init__(  # noqa: PLR0913 - what firing a schedule takes
        self,
        project: Path,
        warehouse: Path,
        *,
        zone: dt.tzinfo,
        clock: Clock,
        submit: Callable[[Job], Any],
        base_config: dict[str, Any],
        on_firing_end: Callable[[dict[str, Any], str, str], None],
        on_tick: Callable[[], None] | None = None,
        reads: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
        poll: float = 1.0,
    ) -> None:
        self.project, self.warehouse, self.zone, self.clock = project, warehouse, zone, clock
        self.submit, self.base_config, self.poll = submit, base_config, poll
        self.on_firing_end, self.on_tick, self.reads = on_firing_end, on_tick, reads
        self.firings: dict[str, _Firing] = {}
        # what this process fired, by (name, created_at): a read a commit behind (``reads``
        # may answer from a copy) never fires a time or a file twice
        self._due: dict[tuple[str, Any], dt.datetime] = {}
        self._seen: dict[tuple[str, Any], list[str]] = {}
        self.lock = threading.RLock()
        self._ticks = 0
        self._ticking = Ticking("scheduler", poll, self._tick_and_look)

    # ----- life -----
    def start(self) -> None:
        """Catch up on schedules due while the server was down, then tick until stopped."""
        self.tick(startup=True)
        self._ticking.start()

    def stop(self) -> None:
        """Stop ticking (runs already queued go on)."""
        self._ticking.stop()

    def _tick_and_look(self) -> None:
        self._ticks += 1
        self.tick()
        if self.on_tick is not None and self._ticks % max(1, round(5 / self.poll)) == 0:
            self.on_tick()  # (every 5 s: runs finished outside the server's jobs)

    def queued(self) -> set[str]:
        """Schedules due again while their previous firing still runs."""
        with self.lock:
            return {name for name, f in self.firings.items() if f.again}

    # ----- firing -----
    def tick(self, *, startup: bool = False) -> list[str]:
        """Fire every schedule due by now; the names fired."""
        now = self.clock()
        fired = []
        with self.reads():
            rows = table_rows(self.warehouse, "schedules", order="name")
        for row in rows:
            if row["paused"]:
                continue
            after = _aware(row["last_due_at"]) or _aware(row["created_at"]) or now
            after = max(after, self._due.get(_key(row), after))
            due, count = due_slots(row["cron"], after, now, self.zone)
            if due is None:
                continue
            with self.lock:
                busy = row["name"] in self.firings
                if busy:
                    self.firings[row["name"]].again = True
            if busy:
                self._due[_key(row)] = due
                update_row(self.warehouse, "schedules", row["name"], {"last_due_at": _naive(due)})
                continue
            note = _missed_note(count, startup)
            self.fire(row, due=due, note=note)
            fired.append(row["name"])
        return fired

    def run_now(self, name: str) -> str:
        """Fire a schedule at once (``run-now``): ``"started"``, or ``"queued"`` behind its run."""
        rows = table_rows(self.warehouse, "schedules", key=name)
        if not rows:
            raise ConfigError(f"no schedule called {name!r}; `tracer schedule list` shows them")
        with self.lock:
            if name in self.firings:
                self.firings[name].again = True
                return "queued"
        self.fire(rows[0], due=None, note="run now (asked for)")
        return "started"

    def fire(self, row: dict[str, Any], *, due: dt.datetime | None, note: str | None) -> list[str]:
        """Queue the schedule's runs; record the firing; the run ids."""
        now = self.clock()
        seen = self._seen.get(_key(row)) or list(row["seen"] or [])
        arrivals = _arrivals(row["source"], self.project, set(seen))
        sources = [(row["source"], None)] if arrivals is None else arrivals
        changes: dict[str, Any] = {"last_fired_at": _naive(now), "note": note}
        if due is not None:
            changes["last_due_at"] = _naive(due)
            self._due[_key(row)] = due
        if not sources:
            changes.update(last_runs=[], last_state="NO_NEW_FILES")
            changes["note"] = _joined(note, "no new file since the last run")
            update_row(self.warehouse, "schedules", row["name"], changes)
            self.on_firing_end(row, "NO_NEW_FILES", changes["note"])
            return []
        jobs = [self._job(row, str(source)) for source, _ in sources]
        with self.lock:
            self.firings[row["name"]] = _Firing({j.run_id or "": "" for j in jobs})
        seen = [*seen, *(key for _, key in sources if key)][-_SEEN_KEPT:]
        self._seen[_key(row)] = seen
        changes.update(last_runs=[j.run_id for j in jobs], last_state="RUNNING", seen=seen)
        update_row(self.warehouse, "schedules", row["name"], changes)
        for job in jobs:
            try:
                self.submit(job)
            except Exception as exc:  # (the queue is full: this run is lost, and said so)
                job.finish("FAILED", failure={"error": f"not queued: {exc}", "kind": "busy"})
                self.job_ended(job)
        return [j.run_id or "" for j in jobs]

    def _job(self, row: dict[str, Any], source: str) -> Job:
        config = dict(self.base_config)
        if row["config_file"]:
            with contextlib.suppress(ConfigError):  # (a bad file fails the run, which says so)
                config = merged_config(config, _file_config(self.project / row["config_file"]))
        if row["dataset"]:
            config = merged_config(config, {"output": {"dataset": row["dataset"]}})
        path = source if is_url(source) else str((self.project / source).resolve())
        payload = {
            "run_id": new_run_id(),
            "source": path,
            "blueprint": row["blueprint"],
            "config": config,
            "notebook": bool(row["notebook"]),
        }
        return Job(
            "run",
            payload,
            run_id=payload["run_id"],
            blueprint=row["blueprint"],
            origin={"schedule": row["name"]},
        )

    def job_ended(self, job: Job) -> None:
        """A run of a schedule ended: when its firing's last run has, record how it went."""
        name = job.origin.get("schedule")
        if name is None:
            return
        with self.lock:
            firing = self.firings.get(name)
            if firing is None or job.run_id not in firing.runs:
                return
            firing.runs[job.run_id or ""] = job.state
            if not all(firing.runs.values()):
                return
            del self.firings[name]
        states = set(firing.runs.values())
        state = "COMPLETED" if states == {"COMPLETED"} else "FAILED"
        if states == {"CANCELLED"}:
            state = "CANCELLED"
        rows = table_rows(self.warehouse, "schedules", key=name)
        if rows:
            update_row(self.warehouse, "schedules", name, {"last_state": state})
            failed = [r for r, s in firing.runs.items() if s != "COMPLETED"]
            why = f"{len(failed)} of {len(firing.runs)} run(s) did not complete" if failed else ""
            self.on_firing_end(rows[0], state, why)
            if firing.again:
                self.fire(rows[0], due=None, note="due while its previous run went: ran after it")


def _key(row: dict[str, Any]) -> tuple[str, Any]:
    """A schedule as this process remembers it (one removed and added again is another)."""
    return row["name"], row["created_at"]


def _file_config(path: Path) -> dict[str, Any]:
    return load_config(path).model_dump(mode="json", exclude_unset=True)


def _joined(*notes: str | None) -> str:
    return "; ".join(n for n in notes if n)


def _missed_note(count: int, startup: bool) -> str | None:
    """What a listing says of a firing that covered ``count`` due times."""
    if startup:
        times = "once" if count == 1 else f"{count} times"
        return f"due {times} while the server was down: ran once at start"
    if count > 1:
        return f"due {count} times since the last tick (the clock jumped): ran once"
    return None
