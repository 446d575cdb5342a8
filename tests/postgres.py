"""A real PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder.

The server runs as a non-root user (``postgres`` when the tests run as root: initdb
refuses root), listens on 127.0.0.1 on a free port, accepts TCP logins by password
(scram-sha-256) so a wrong password is a real failure, and is stopped and removed at the
end. Under CI a missing server is a failure, never a skip (``make test`` installs it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "s3cret-Pa55word"  # the superuser's password; tests check it never leaks


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    """A running server: its address and superuser, and helpers for the tests."""

    port: int
    folder: Path
    user: str = "postgres"
    password: str = PASSWORD
    host: str = "127.0.0.1"

    def url(self, db: str = "postgres", *, password: str | None = PASSWORD) -> str:
        auth = f"{self.user}:{password}" if password else self.user
        return f"postgresql://{auth}@{self.host}:{self.port}/{db}"

    def sql(self, query: str, params: Any = None, *, db: str = "postgres") -> list[tuple]:
        """Run one statement (autocommit); its rows, or [] for a statement without rows."""
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as con:
            cur = con.execute(query, params)
            return cur.fetchall() if cur.description else []

    def new_database(self, name: str) -> str:
        """Create a database (dropped first when it exists); its URL with the password."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}"')
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a PostgreSQL server for the duration of the block."""
    bin_dir = server_binaries()
    if bin_dir is None:
        why = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"the PostgreSQL tests cannot run under CI: {why}", pytrace=False)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="tracer-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, pwfile, port = folder / "data", folder / "pw", _free_port()
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, user.pw_uid, user.pw_gid)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        argv = _as_server_user([str(bin_dir / cmd[0]), *cmd[1:]])
        return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=folder)

    try:
        run(
            "initdb", "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        try:
            yield Postgres(port, folder)
        finally:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    except subprocess.CalledProcessError as exc:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}\n{log}", pytrace=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
