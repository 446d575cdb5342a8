"""How one server runs: its project, address, pool, limits and what it allows."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from tracer_kit.options import ApiOptions
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["LOOPBACK", "ServerSettings", "is_loopback"]

#: Addresses a local token is enough on.
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """A server's settings (``tracer serve``'s options)."""

    project: Path
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 2
    queue_size: int = 20
    allow_sql: bool = False
    allow_paths: tuple[Path, ...] = ()
    cors: tuple[str, ...] = ()
    #: The largest upload accepted, in bytes (the cap on a downloaded source by default).
    max_upload: int = field(default_factory=lambda: ApiOptions().max_bytes)
    #: Requests per minute per API key (the local token is not limited).
    rate_limit: int = 600
    token: str = field(default="", repr=False)
    #: Each worker starts the next notebook run's kernel ahead (off: runs start their own).
    warm_kernels: bool = True

    @property
    def warehouse(self) -> Path:
        """The project's warehouse file."""
        return self.project / DEFAULT_WAREHOUSE

    @property
    def uploads(self) -> Path:
        """Where uploaded files are kept, under generated names."""
        return self.project / "data" / "uploads"

    @property
    def loopback(self) -> bool:
        """Listening on loopback only (the local token is accepted)."""
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        """The base URL clients use."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
