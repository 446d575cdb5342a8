"""``tracer schedule``: add, list, pause, resume, remove and run-now the project's schedules.

With a server running for the folder, each command goes through its API (the server is
what fires schedules). Without one, the schedules in the warehouse are edited directly and
the command says they fire only while ``tracer serve`` runs; ``run-now`` needs the server.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tracer_kit.errors import TracerError
from tracer_kit.lazy import lazy_module
from tracer_kit.server.client import ServerError, ServerInfo, api_request, live_server
from tracer_kit.workspace import DEFAULT_WAREHOUSE

# (imported when a command runs: every `tracer` command builds this group)
tk_cron = lazy_module("tracer_kit.cron")
tk_history = lazy_module("tracer_kit.history_page")
tk_project = lazy_module("tracer_kit.project")
tk_schedules = lazy_module("tracer_kit.server.schedules")

__all__ = ["schedule_app"]

schedule_app = typer.Typer(
    help="Schedules: a source run through a blueprint on a cron, by the project's server."
)

_NOT_SERVED = "note: no server runs for this folder; schedules fire only while `tracer serve` runs"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _server() -> ServerInfo | None:
    return live_server(".", say=sys.stderr)


def _call(server: ServerInfo, method: str, path: str, body: Any = None) -> Any:
    try:
        return api_request(server, method, f"/api/v1{path}", body)
    except ServerError as exc:
        _fail(str(exc))


def _here() -> tuple[Path, Path, dt.tzinfo]:
    """The current folder, its warehouse and the server's zone (tracer.yaml's or the machine's)."""
    project = Path.cwd()
    zone = tk_cron.server_timezone(tk_project.load_project_file(project).server.timezone)
    return project, project / DEFAULT_WAREHOUSE, zone


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@schedule_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="The schedule's name (letters, digits, _).")],
    source: Annotated[
        str, typer.Argument(help="A file, a folder or a glob under the project, or a URL.")
    ],
    cron: Annotated[
        str, typer.Option("--cron", help='When: "M H DoM Mon DoW", in the server\'s time zone.')
    ],
    blueprint: Annotated[str, typer.Option("--blueprint", "-b", help="The blueprint to run.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="The dataset name history compares by.")
    ] = None,
    notebook: Annotated[
        bool, typer.Option("--notebook", help="Run through the blueprint notebook.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="A config file (YAML or JSON) for its runs.")
    ] = None,
) -> None:
    """Add a schedule; a folder or glob runs the files that arrived since its last run."""
    body = {
        "name": name,
        "cron": cron,
        "source": source,
        "blueprint": blueprint,
        "dataset": dataset,
        "notebook": notebook,
        "config_file": str(config) if config else None,
    }
    server = _server()
    if server is not None:
        view = _call(server, "POST", "/schedules", body)
    else:
        try:
            project, warehouse, zone = _here()
            tk_schedules.add_schedule(
                warehouse, tk_schedules.ScheduleSpec(**body), project=project, now=_now()
            )
            view = next(
                v for v in tk_history.schedule_listing(warehouse, zone, _now()) if v["name"] == name
            )
        except TracerError as exc:
            _fail(str(exc))
            return
    typer.echo(f"added schedule {name!r}: next run {view['next_run']} ({view['timezone']})")
    if server is None:
        typer.echo(_NOT_SERVED, err=True)


def _short(moment: str | None) -> str:
    """An ISO time as ``2026-12-07 06:00`` (the table's title names the zone)."""
    return moment[:16].replace("T", " ") if moment else ""


def _print(views: list[dict[str, Any]], zone: str) -> None:
    console = Console(soft_wrap=True)
    if not views:
        console.print('no schedules (`tracer schedule add NAME --cron "0 6 * * *" SOURCE -b BP`)')
        return
    table = Table(
        title=f"schedules (times in {zone}, the server's time zone)", title_justify="left"
    )
    for column in ("name", "cron", "source", "blueprint", "state", "next run", "last run", "note"):
        table.add_column(column, overflow="fold", no_wrap=column in ("cron", "state"))
    for v in views:
        last = f"{_short(v['last_fired'])} {v['last_state']}" if v["last_fired"] else "never"
        table.add_row(
            v["name"],
            v["cron"],
            v["source"],
            v["blueprint"] + (f" → {v['dataset']}" if v["dataset"] else ""),
            "paused" if v["paused"] else "active",
            _short(v["next_run"]) or "–",
            last,
            v["note"] or "",
        )
    console.print(table)


@schedule_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every schedule: cron, source, next run and last run, in the server's time zone."""
    server = _server()
    if server is not None:
        body = _call(server, "GET", "/schedules")
        views, zone = body["schedules"], body["timezone"]
    else:
        try:
            _, warehouse, tz = _here()
            views, zone = tk_history.schedule_listing(warehouse, tz, _now()), str(tz)
        except TracerError as exc:
            _fail(str(exc))
            return
    if as_json:
        typer.echo(json.dumps({"timezone": zone, "schedules": views}, indent=2))
    else:
        _print(views, zone)
    if server is None:
        typer.echo(_NOT_SERVED, err=True)


def _change(name: str, changes: dict[str, Any], done: str) -> None:
    server = _server()
    if server is not None:
        _call(server, "PATCH", f"/schedules/{name}", changes)
    else:
        try:
            project, warehouse, _ = _here()
            tk_schedules.change_schedule(warehouse, name, changes, project=project, now=_now())
        except TracerError as exc:
            _fail(str(exc))
    typer.echo(f"{done} schedule {name!r}")


NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]


@schedule_app.command("pause")
def pause_command(name: NameArg) -> None:
    """Stop firing a schedule until it is resumed."""
    _change(name, {"paused": True}, "paused")


@schedule_app.command("resume")
def resume_command(name: NameArg) -> None:
    """Fire a paused schedule again, from its next due time (no catch-up)."""
    _change(name, {"paused": False}, "resumed")


@schedule_app.command("remove")
def remove_command(name: NameArg) -> None:
    """Forget a schedule (its runs stay)."""
    server = _server()
    if server is not None:
        _call(server, "DELETE", f"/schedules/{name}")
    else:
        try:
            tk_schedules.remove_schedule(_here()[1], name)
        except TracerError as exc:
            _fail(str(exc))
    typer.echo(f"removed schedule {name!r}")


@schedule_app.command("run-now")
def run_now_command(name: NameArg) -> None:
    """Fire a schedule now (queued behind its previous run if that still goes)."""
    server = _server()
    if server is None:
        _fail("no server runs for this folder: `tracer serve` runs schedules")
        return
    body = _call(server, "POST", f"/schedules/{name}/run")
    runs = ", ".join(body.get("last_runs") or []) or "none (no new file)"
    if body.get("fired") == "queued":
        typer.echo(f"schedule {name!r} is running: queued to run again after it")
    else:
        typer.echo(f"fired schedule {name!r}: runs {runs}")
