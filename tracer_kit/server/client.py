"""Talking to a running ``tracer serve``: find it, call its API, forward a command.

Standard library only (``http.client``, ``json``), so a command sent to a server starts in
well under a tenth of a second: the work, and the heavy imports, happen in the server's warm
workers. The CLI, the workbench and the tests use these functions; nothing here imports the
rest of tracer-kit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tracer_kit.lazy import lazy_module

if TYPE_CHECKING:
    import http.client

#: ``http.client`` (with ssl and email, 50 ms) is imported only when a server is asked.
_http = lazy_module("http.client")

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_ENV",
    "SERVER_FILE",
    "TOKEN_ENV",
    "ServerError",
    "ServerInfo",
    "api_request",
    "forward_command",
    "live_server",
    "read_server_file",
]

#: Where a project's server writes its address (``<project>/.tracer/server.json``).
SERVER_FILE = Path(".tracer") / "server.json"
#: ``TRACER_SERVER=URL`` points the CLI at a server other than the current folder's.
SERVER_ENV = "TRACER_SERVER"
#: With ``TRACER_SERVER``: the token (or API key) to send, when no token file is readable.
TOKEN_ENV = "TRACER_TOKEN"
#: The commands a running server executes for the CLI (``--local`` keeps one in-process).
CLIENT_COMMANDS = frozenset(
    {"run", "validate", "profile", "predict", "rerun", "runs", "query", "report"}
)


class ServerError(Exception):
    """A server that does not answer, or answers with an error (its one line in ``str``)."""

    def __init__(self, message: str, *, status: int = 0, kind: str = "unreachable") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class ServerInfo:
    """A server's address and how to authenticate to it."""

    url: str
    token: str | None
    pid: int | None = None
    project: Path | None = None

    def headers(self) -> dict[str, str]:
        """The request headers: the bearer token when there is one."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def read_server_file(folder: str | Path = ".") -> ServerInfo | None:
    """The server ``<folder>/.tracer/server.json`` names (None when there is no such file)."""
    path = Path(folder) / SERVER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        token = Path(data["token_file"]).read_text(encoding="utf-8").strip()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ServerInfo(
        url=str(data["url"]), token=token, pid=data.get("pid"), project=Path(folder).resolve()
    )


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_server(folder: str | Path = ".", *, say: IO[str] | None = None) -> ServerInfo | None:
    """The server to send work to, or None: ``TRACER_SERVER``, else the folder's live server.

    A server file whose process has died is noticed: ``say`` (e.g. ``sys.stderr``) gets one
    line, and the caller runs the command itself.
    """
    if url := os.environ.get(SERVER_ENV):
        local = read_server_file(folder)
        token = os.environ.get(TOKEN_ENV) or (local.token if local and local.url == url else None)
        return ServerInfo(url=url.rstrip("/"), token=token)
    info = read_server_file(folder)
    if info is None:
        return None
    alive = _pid_alive(info.pid)
    if alive:
        try:
            api_request(info, "GET", "/healthz", timeout=2.0)
        except ServerError:
            alive = False
    if not alive and say is not None:
        say.write(
            f"note: the server named in {SERVER_FILE} is not running (pid {info.pid}); "
            "running here instead\n"
        )
    return info if alive else None


def _connection(url: str, timeout: float | None) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    cls = _http.HTTPSConnection if parts.scheme == "https" else _http.HTTPConnection
    return cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)


def _error_of(status: int, body: bytes) -> ServerError:
    try:
        data = json.loads(body)
        return ServerError(str(data["error"]), status=status, kind=str(data.get("kind", "")))
    except (ValueError, KeyError, TypeError):
        return ServerError(f"the server answered {status}", status=status, kind="server")


def api_request(
    server: ServerInfo,
    method: str,
    path: str,
    body: Any = None,
    *,
    form: dict[str, str] | None = None,
    timeout: float | None = 30.0,
) -> Any:
    """One request with a JSON ``body`` or ``form`` fields; the decoded answer, or
    :class:`ServerError` with the server's line.
    """  # noqa: D205
    headers = {**server.headers(), "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = _connection(server.url, timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except OSError as exc:
        raise ServerError(f"{server.url} does not answer ({exc})") from None
    finally:
        conn.close()
    if response.status >= 400:
        raise _error_of(response.status, raw)
    if not raw:
        return None
    return json.loads(raw) if "json" in response.getheader("Content-Type", "") else raw


def _terminal(stream: IO[str]) -> dict[str, Any]:
    """What the command's output should look like: the client's terminal, not the worker's."""
    tty = bool(getattr(stream, "isatty", lambda: False)())
    columns = os.environ.get("COLUMNS")
    if columns is None and tty:
        with contextlib.suppress(OSError):
            columns = str(os.get_terminal_size(stream.fileno()).columns)
    return {"tty": tty, "columns": int(columns) if columns and columns.isdigit() else None}


def forward_command(server: ServerInfo, argv: list[str], cwd: str | Path | None = None) -> int:
    """Run ``tracer <argv>`` on the server; its output streams here as it is written.

    Returns the command's exit code (the same codes as without a server).
    """
    request = {
        "argv": list(argv),
        "cwd": str(Path(cwd or Path.cwd()).resolve()),
        **_terminal(sys.stdout),
    }
    conn = _connection(server.url, None)
    headers = {**server.headers(), "Content-Type": "application/json"}
    try:
        conn.connect()
    except OSError as exc:  # (nothing was sent: the caller may run the command itself)
        raise ServerError(f"{server.url} does not answer ({exc})") from None
    try:
        conn.request("POST", "/api/v1/commands", body=json.dumps(request), headers=headers)
        response = conn.getresponse()
        if response.status >= 400:
            raise _error_of(response.status, response.read())
        return _stream_output(response)
    except OSError as exc:
        raise ServerError(f"{server.url} stopped answering ({exc})", kind="server") from None
    finally:
        conn.close()


def _stream_output(response: http.client.HTTPResponse) -> int:
    """Copy the command's output lines (``{"out"|"err": text}``) until its ``{"exit": code}``."""
    for line in response:
        message = json.loads(line)
        if "exit" in message:
            return int(message["exit"])
        stream = sys.stdout if "out" in message else sys.stderr
        stream.write(message.get("out", message.get("err", "")))
        stream.flush()
    raise ServerError("the server stopped before the command ended", kind="server")
