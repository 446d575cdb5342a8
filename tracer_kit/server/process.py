"""A server's life as a process: one per project, announced in ``.tracer/server.json``.

:func:`serve` binds the address (loopback unless told otherwise, and then only with API
keys), writes the local token to ``.tracer/token`` (readable by the owner only) and the
server file beside it, runs uvicorn until SIGTERM or SIGINT, lets running jobs finish or
records them CANCELLED, and removes the server file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import uvicorn

from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.server.app import create_app
from tracer_kit.server.client import SERVER_FILE, ServerInfo, live_server, read_server_file
from tracer_kit.server.keys import list_keys
from tracer_kit.server.settings import ServerSettings

__all__ = ["TOKEN_FILE", "serve", "stop_server"]

#: The local token, beside the server file (mode 0600).
TOKEN_FILE = Path(".tracer") / "token"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created with that mode, then moved in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so accepted connections carry it and asyncio turns Nagle off on
    # them (it checks sock.proto): without it a kept-alive client waits ~40 ms per answer
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port") from None
    sock.listen(128)
    return sock


def _check_alone(project: Path) -> None:
    running = live_server(project)
    if running is not None:
        msg = f"a server already runs for {project} at {running.url} (pid {running.pid})"
        raise TracerError(msg + "; `tracer serve stop` stops it")


def _check_keys(settings: ServerSettings) -> None:
    if settings.loopback:
        return
    if not any(k.active for k in list_keys(settings.warehouse)):
        raise ConfigError(
            f"--host {settings.host} is reachable from other machines: create an API key first "
            "(`tracer serve keys create NAME`); requests must then carry it"
        )


def _log_errors() -> None:
    """The server's own errors (a failed tick, an alert not judged) go to stderr in full."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("error: %(name)s: %(message)s"))
    logging.getLogger("tracer_kit.server").addHandler(handler)
    logging.getLogger("tracer_kit.alerts").addHandler(handler)


def serve(settings: ServerSettings, *, log_level: str = "warning") -> None:
    """Run the server in this process until SIGTERM or SIGINT (``tracer serve``)."""
    _log_errors()
    project = settings.project.resolve()
    _check_alone(project)
    _check_keys(settings)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(32)
    settings = replace(settings, project=project, port=port, token=token)
    try:
        app = create_app(settings)  # (reads tracer.yaml: a mistake stops here, nothing written)
    except TracerError:
        sock.close()
        raise
    _write_private(project / TOKEN_FILE, token)
    info = {
        "url": settings.url,
        "pid": os.getpid(),
        "token_file": str(project / TOKEN_FILE),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "workers": settings.workers,
    }
    (project / SERVER_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    print(f"tracer serving {project} at {settings.url} ({settings.workers} workers)", flush=True)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for whatever
    # handler was there before it: this one, so the server file is removed and the exit is 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        _remove_server_file(project, os.getpid())
    print("tracer server stopped", flush=True)


def _stopped(sig: int, frame: object) -> None:
    """After a graceful stop: nothing more to do."""


def _remove_server_file(project: Path, pid: int) -> None:
    """Remove the server file and token if they are those of the server ``pid``."""
    ours = read_server_file(project)
    if ours is None or ours.pid == pid:
        for path in (project / SERVER_FILE, project / TOKEN_FILE):
            path.unlink(missing_ok=True)


def stop_server(project: Path, timeout: float = 60.0) -> ServerInfo:
    """Ask the project's server to stop (SIGTERM) and wait until it has."""
    info = read_server_file(project)
    if info is None or not info.pid:
        raise TracerError(f"no server runs for {project.resolve()} ({SERVER_FILE} not found)")
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(info.pid), signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(int(info.pid), 0)
        except ProcessLookupError:
            _remove_server_file(project, int(info.pid))  # (a server killed before it could)
            return info
        time.sleep(0.1)
    raise TracerError(f"the server (pid {info.pid}) did not stop within {timeout:.0f} s")
