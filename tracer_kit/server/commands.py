"""``tracer serve``: start the project's server, see it, stop it, manage its API keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tracer_kit.errors import TracerError
from tracer_kit.lazy import lazy_module
from tracer_kit.server.client import ServerError, api_request, live_server, read_server_file
from tracer_kit.server.settings import ServerSettings
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["serve_app"]

# (imported when a command runs: the app and the pool import the whole pipeline, and every
# `tracer` command, not only `serve`, builds this command group)
server_process = lazy_module("tracer_kit.server.process")
server_keys = lazy_module("tracer_kit.server.keys")
tk_project = lazy_module("tracer_kit.project")

serve_app = typer.Typer(
    help="The project's resident server: REST API, warm runs, health and metrics.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys (needed when the server listens beyond 127.0.0.1).")
serve_app.add_typer(keys_app, name="keys")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


_WORKERS = "Warm worker processes [default: tracer.yaml's, or 2]."
_QUEUE = "Jobs that may wait [default: tracer.yaml's, or 20]."


def _pool_size(workers: int | None, queue: int | None) -> tuple[int, int]:
    """Workers and queue size: the flags', else tracer.yaml's, else 2 and 20."""
    own = tk_project.load_project_file(Path.cwd()).server
    return workers or own.workers or 2, queue or own.queue or 20


@serve_app.callback()
def serve_command(  # noqa: PLR0913 - the options `tracer serve` offers
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8765,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=64, help=_WORKERS)] = None,
    queue: Annotated[int | None, typer.Option("--queue", min=1, max=10_000, help=_QUEUE)] = None,
    allow_sql: Annotated[
        bool, typer.Option("--allow-sql", help="Allow POST /api/v1/query (read-only SQL).")
    ] = False,
    allow_path: Annotated[
        list[Path] | None,
        typer.Option("--allow-path", help="A folder outside the project sources may come from."),
    ] = None,
    cors: Annotated[
        list[str] | None, typer.Option("--cors", help="An origin browsers may call from.")
    ] = None,
    max_upload: Annotated[
        int | None, typer.Option("--max-upload", min=1, help="Largest upload, in bytes.")
    ] = None,
    rate_limit: Annotated[
        int, typer.Option("--rate-limit", min=1, help="Requests per minute per API key.")
    ] = 600,
    warm_kernels: Annotated[
        bool,
        typer.Option(
            "--warm-kernels/--no-warm-kernels",
            help="Start each notebook run's kernel ahead (used once, then discarded).",
        ),
    ] = True,
) -> None:
    """Serve this project folder until Ctrl-C or `tracer serve stop`."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        workers, queue = _pool_size(workers, queue)
    except TracerError as exc:
        _fail(str(exc))
        return
    settings = ServerSettings(
        project=Path.cwd(),
        host=host,
        port=port,
        workers=workers,
        queue_size=queue,
        allow_sql=allow_sql,
        allow_paths=tuple(p.resolve() for p in allow_path or ()),
        cors=tuple(cors or ()),
        rate_limit=rate_limit,
        warm_kernels=warm_kernels,
        **({"max_upload": max_upload} if max_upload else {}),
    )
    try:
        server_process.serve(settings)
    except TracerError as exc:
        _fail(str(exc))


@serve_app.command("status")
def status_command() -> None:
    """Whether a server runs for this folder: its address, workers and queue."""
    server = live_server(".", say=sys.stderr)
    if server is None:
        _fail("no server runs for this folder (`tracer serve` starts one)")
        return
    try:
        ready = api_request(server, "GET", "/readyz", timeout=10)
    except ServerError as exc:
        ready = {"status": str(exc), "checks": {}}
    typer.echo(f"server     {server.url} (pid {server.pid})")
    typer.echo(f"status     {ready.get('status')}")
    checks = ready.get("checks", {})
    for worker in checks.get("workers", {}).get("workers", []):
        state = "busy with " + worker["job"] if worker["job"] else "idle"
        warm = "ready" if worker["ready"] else "warming up"
        typer.echo(f"worker {worker['worker']}   pid {worker['pid']}, {warm}, {state}")
    if "queue" in checks:
        typer.echo(
            f"queue      {checks['queue']['waiting']} waiting (of {checks['queue']['size']})"
        )


@serve_app.command("stop")
def stop_command() -> None:
    """Stop this folder's server (running jobs finish, or are recorded CANCELLED)."""
    info = read_server_file(".")
    try:
        stopped = server_process.stop_server(Path.cwd())
    except TracerError as exc:
        _fail(str(exc))
        return
    typer.echo(f"stopped the server at {stopped.url} (pid {stopped.pid})" if info else "stopped")


Warehouse = Annotated[str, typer.Option("--warehouse", help="DuckDB warehouse file.")]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for (letters, digits, _).")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Create an API key and print it once (only its SHA-256 is kept)."""
    try:
        key = server_keys.create_key(name, warehouse)
    except TracerError as exc:
        _fail(str(exc))
        return
    typer.echo(key)
    typer.echo(f"API key {name!r} created: store it now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list(warehouse: Warehouse = DEFAULT_WAREHOUSE) -> None:
    """Every key's name, when it was created and whether it was revoked."""
    try:
        keys = server_keys.list_keys(warehouse)
    except TracerError as exc:
        _fail(str(exc))
        return
    if not keys:
        typer.echo("no API keys (`tracer serve keys create NAME`)")
    for k in keys:
        revoked = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        typer.echo(f"{k.name:24} created {k.created_at:%Y-%m-%d %H:%M}  {revoked}")


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Revoke a key: requests bearing it get 401 from then on."""
    try:
        server_keys.revoke_key(name, warehouse)
    except TracerError as exc:
        _fail(str(exc))
        return
    typer.echo(f"revoked API key {name!r}")
