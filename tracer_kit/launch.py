"""The ``tracer`` console script: a command goes to the project's server when one runs.

``tracer run``, ``validate``, ``profile``, ``predict``, ``rerun``, ``runs``, ``query`` and
``report`` are sent to the server named by ``.tracer/server.json`` (or ``TRACER_SERVER``),
which runs them in a warm worker and streams back exactly what they print, with the same
exit code. ``--local`` anywhere on the line runs the command in this process; a server that
has died is noticed and the command runs here, with one line saying so. Everything else,
and ``tracer serve`` itself, runs here.

Only the standard library is imported before a command is forwarded: the client costs
about 60 ms, the rest is the server's work.
"""

from __future__ import annotations

import os
import sys

from tracer_kit.lazy import lazy_module
from tracer_kit.server.client import CLIENT_COMMANDS, ServerError, forward_command, live_server

__all__ = ["LOCAL_FLAG", "main"]

#: On any command: run it in this process even when a server runs for the folder.
LOCAL_FLAG = "--local"

cli = lazy_module("tracer_kit.cli")
heavy = lazy_module("tracer_kit.heavy")
server_commands = lazy_module("tracer_kit.server.commands")
schedule_commands = lazy_module("tracer_kit.server.schedule_commands")


def _forwarded(argv: list[str]) -> int | None:
    """The exit code of ``argv`` run by the folder's server, or None to run it here."""
    if not argv or argv[0] not in CLIENT_COMMANDS or "--help" in argv:
        return None
    server = live_server(".", say=sys.stderr)
    if server is None:
        return None
    try:
        return forward_command(server, argv)
    except ServerError as exc:
        if exc.kind == "unreachable":  # it went away before taking the command: do it here
            sys.stderr.write(f"note: {exc}; running here instead\n")
            return None
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except BrokenPipeError:  # (`tracer runs | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def main() -> None:
    """Entry point of the ``tracer`` console script."""
    argv = sys.argv[1:]
    local = LOCAL_FLAG in argv
    argv = [a for a in argv if a != LOCAL_FLAG]
    if not local and (code := _forwarded(argv)) is not None:
        sys.exit(code)
    heavy.lean_process()  # (only tracer-kit runs here: pandera without its pandas API)
    if not argv or argv[0] not in cli.command_names():  # (`serve`, `schedule`, the listing)
        cli.app.add_typer(server_commands.serve_app, name="serve")
        cli.app.add_typer(schedule_commands.schedule_app, name="schedule")
    cli.main(argv)
