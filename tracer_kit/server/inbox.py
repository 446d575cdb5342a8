"""The watched inbox: a file dropped in ``data/inbox/<blueprint>/`` is run once it is complete.

A file counts as complete once its size and modification time have not changed for
``settle_seconds`` (a copy still being written keeps changing). It is then moved to
``done/<stem>.<run id><suffix>`` and run from there; a run that does not complete moves it
on to ``failed/`` with ``<name>.error.txt`` beside it (the run's one-line error). A file
whose content (SHA-256) an earlier inbox run completed is recorded and moved to ``done/``
as ``<stem>.duplicate-of-<run id><suffix>``, not run again. Each file is recorded in the
warehouse's ``inbox_files`` table; its dataset is named from the name it was dropped with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracer_kit.blueprints import list_blueprints
from tracer_kit.ingest import file_sha256
from tracer_kit.project import InboxSection
from tracer_kit.server.pool import Job, QueueFull
from tracer_kit.server.schedules import PARTIAL_SUFFIXES, merged_config
from tracer_kit.server.ticking import Ticking
from tracer_kit.warehouse import (
    dataset_name,
    inbox_run_of,
    insert_row,
    new_run_id,
    update_row,
    utcnow,
)

__all__ = ["Inbox"]

log = logging.getLogger("tracer_kit.server")


def _split(name: str) -> tuple[str, str]:
    """``orders.csv.gz`` -> (``orders``, ``.csv.gz``)."""
    stem, dot, rest = name.partition(".")
    return (stem, dot + rest) if dot else (name, "")


def _free(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name`` with ``-2``, ``-3``... before its suffix if that exists."""
    target = folder / name
    stem, suffix = _split(name)
    n = 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


class Inbox:
    """Watches every blueprint's inbox folder; runs each complete file once."""

    def __init__(
        self,
        project: Path,
        section: InboxSection,
        warehouse: Path,
        *,
        submit: Callable[[Job], Any],
        base_config: dict[str, Any],
        blueprints: list[str] | None = None,
    ) -> None:
        self.root = (project / section.folder).resolve()
        self.section, self.warehouse = section, warehouse
        self.submit, self.base_config = submit, base_config
        self.blueprints = blueprints or [bp.name for bp in list_blueprints()]
        self._sizes: dict[Path, tuple[int, int, float]] = {}
        self._ticking = Ticking("inbox", section.poll_seconds, self._scan_now)

    def start(self) -> None:
        """Create ``<folder>/<blueprint>/`` for every blueprint; watch them until stopped."""
        for name in self.blueprints:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._ticking.start()

    def stop(self) -> None:
        """Stop watching (runs already queued go on)."""
        self._ticking.stop()

    def _scan_now(self) -> None:
        self.scan(time.monotonic())

    def scan(self, now: float) -> list[Path]:
        """Take every file that has settled; the files taken."""
        taken, present = [], set()
        for blueprint in self.blueprints:
            folder = self.root / blueprint
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if (
                    path.name.startswith(".")
                    or path.name.endswith(PARTIAL_SUFFIXES)
                    or not path.is_file()
                ):
                    continue
                present.add(path)
                if self._settled(path, now) and self._take(path, blueprint):
                    taken.append(path)
        for gone in set(self._sizes) - present:
            del self._sizes[gone]
        return taken

    def _settled(self, path: Path, now: float) -> bool:
        """Unchanged (size and mtime) for ``settle_seconds`` of watching."""
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
        known = self._sizes.get(path)
        if known is None or known[:2] != (size, mtime):
            self._sizes[path] = (size, mtime, now)
            return False
        return now - known[2] >= self.section.settle_seconds

    def _take(self, path: Path, blueprint: str) -> bool:
        """Run the file (or record it as a duplicate); False to try again next scan."""
        sha = file_sha256(path)
        stem, suffix = _split(path.name)
        record = {
            "received_at": utcnow(),
            "blueprint": blueprint,
            "name": path.name,
            "sha256": sha,
            "bytes": path.stat().st_size,
        }
        earlier = inbox_run_of(self.warehouse, blueprint, sha)
        done = path.parent / "done"
        done.mkdir(exist_ok=True)
        if earlier is not None:
            moved = path.rename(_free(done, f"{stem}.duplicate-of-{earlier}{suffix}"))
            insert_row(
                self.warehouse,
                "inbox_files",
                {**record, "outcome": f"duplicate of {earlier}", "moved_to": str(moved)},
            )
            log.info("inbox: %s has the content run %s took; not run again", path.name, earlier)
            return True
        run_id = new_run_id()
        moved = path.rename(_free(done, f"{stem}.{run_id}{suffix}"))
        config = merged_config(self.base_config, {"output": {"dataset": dataset_name(path.name)}})
        payload = {
            "run_id": run_id,
            "source": str(moved),
            "blueprint": blueprint,
            "config": config,
            "notebook": self.section.notebook,
        }
        job = Job("run", payload, run_id=run_id, blueprint=blueprint, origin={"inbox": path.name})
        try:
            self.submit(job)
        except QueueFull:
            moved.rename(path)  # (back where it was: taken when the queue has room)
            return False
        insert_row(
            self.warehouse,
            "inbox_files",
            {**record, "run_id": run_id, "outcome": "running", "moved_to": str(moved)},
        )
        log.info("inbox: %s taken as run %s", path.name, run_id)
        return True

    def job_ended(self, job: Job) -> None:
        """An inbox run ended: its file stays in ``done/`` or moves to ``failed/``."""
        if "inbox" not in job.origin:
            return
        source = Path(job.payload["source"])
        if job.state == "COMPLETED":
            update_row(self.warehouse, "inbox_files", job.run_id or "", {"outcome": "done"})
            return
        failed = source.parent.parent / "failed"
        failed.mkdir(exist_ok=True)
        target = _free(failed, source.name)
        if source.exists():
            source.rename(target)
        why = (job.failure or {}).get("error") or f"the run ended {job.state}"
        Path(f"{target}.error.txt").write_text(f"{why}\n", encoding="utf-8")
        update_row(
            self.warehouse,
            "inbox_files",
            job.run_id or "",
            {"outcome": "failed", "moved_to": str(target)},
        )
