"""Notebook kernels: our own kernelspec, kernel output to a log file, and warm kernels.

A notebook run starts a kernel and imports tracer-kit in it before its first cell does any
work: seconds, paid again by every run. A long-lived process (a server's worker) can start
the next run's kernel ahead of time with :func:`start_warm_kernel`: the kernel is started
in the project folder and tracer-kit and its heavy dependencies are imported in it. The
next notebook run takes it (:func:`take_warm_kernel`), Papermill executes the notebook on
it, and it is shut down after that one run, so runs stay isolated. A run whose kernel needs
another environment (a database password or a pseudonymisation key passed to the kernel
through its environment, another working folder) starts its own kernel as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KERNEL",
    "PATCHABLE",
    "WARM_IMPORTS",
    "WarmKernel",
    "discard_warm_kernel",
    "environment_changes",
    "shut_down",
    "kernel_manager_logging_to",
    "start_warm_kernel",
    "take_warm_kernel",
    "use_own_kernelspec",
    "warm_kernel_state",
]

KERNEL = "python3"

#: What a warm kernel imports before it is handed to a run (what a notebook's first cell pays).
WARM_IMPORTS = (
    "import tracer_kit, polars, duckdb, pyarrow, sklearn.linear_model, sklearn.ensemble, "
    "skops.io, pandera.polars, IPython.display"
)


def use_own_kernelspec() -> None:
    """Make ``python3`` resolve to this environment's kernelspec before any user-level one."""
    own = str(Path(sys.prefix) / "share" / "jupyter")
    current = os.environ.get("JUPYTER_PATH", "")
    if own not in current.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (own, current) if p)


def kernel_manager_logging_to(log: Path) -> type:
    """A kernel manager whose kernel writes its own stdout and stderr to ``log``.

    Cell outputs travel over Jupyter's messages either way; what a kernel process prints
    itself (a crash message at shutdown, a library's warning) goes to the run's
    ``kernel.log`` instead of the user's terminal, where it would break the one-line error.
    """
    from jupyter_client.manager import AsyncKernelManager

    class KernelToLog(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with log.open("ab") as out:  # the kernel keeps its own copy of the descriptor
                await super()._async_launch_kernel(
                    kernel_cmd, **{**kw, "stdout": out, "stderr": out}
                )

    return KernelToLog


@dataclass
class WarmKernel:
    """A started kernel with tracer-kit imported, waiting for one run."""

    manager: Any  # a jupyter_client AsyncKernelManager with a live kernel
    cwd: Path
    environment: dict[str, str]  # os.environ when it started: a run needing another skips it
    log: Path  # its own stdout/stderr; moved beside the run's notebook when taken
    seconds: float  # start and imports


_LOCK = threading.Condition()
_WAITING: WarmKernel | None = None
_STARTING = False


def _run(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an async kernel-manager method to its end (jupyter's own loop, as nbclient does)."""
    from jupyter_core.utils import run_sync

    return run_sync(method)(*args, **kwargs)


def start_warm_kernel(cwd: str | Path, *, timeout: float = 120) -> WarmKernel | None:
    """Start a kernel in ``cwd`` and import tracer-kit in it; it waits for the next run.

    Blocking (a worker calls it from a thread between jobs); nothing when one is already
    waiting or starting. Returns the kernel it started.
    """
    global _WAITING, _STARTING
    with _LOCK:
        if _WAITING is not None or _STARTING:
            return None
        _STARTING = True
    warm = None
    try:
        warm = _started(Path(cwd).resolve(), timeout)
    finally:
        with _LOCK:
            _STARTING = False
            _LOCK.notify_all()
    with _LOCK:
        _WAITING = warm
        _LOCK.notify_all()
    return warm


def _started(cwd: Path, timeout: float) -> WarmKernel:
    from jupyter_client.blocking import BlockingKernelClient

    use_own_kernelspec()
    start = time.perf_counter()
    folder = cwd / ".tracer" / "kernels"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"kernel-{os.getpid()}-{time.time_ns()}.log"
    manager = kernel_manager_logging_to(log)(kernel_name=KERNEL)
    environment = dict(os.environ)
    _run(manager.start_kernel, cwd=str(cwd), extra_arguments=["--IPKernelApp.log_level=ERROR"])
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        reply = client.execute_interactive(WARM_IMPORTS, timeout=timeout, store_history=False)
        if reply["content"]["status"] != "ok":  # (an import failed: the run will say why)
            with log.open("a") as out:
                out.write(f"warm-up imports failed: {reply['content'].get('evalue')}\n")
    finally:
        client.stop_channels()
    return WarmKernel(manager, cwd, environment, log, time.perf_counter() - start)


#: Environment variables a warm kernel is given when they differ from its start (they are
#: read when used, not at import): how messages are worded, the terminal's width, debugging.
#: Any other difference (a password or key for this run alone) means a kernel of its own.
PATCHABLE = frozenset(
    {"TRACER_INTERFACE", "COLUMNS", "TRACER_DEBUG", "TRACER_SECRET_PARAMS", "TRACER_LOCK_TIMEOUT"}
)


def environment_changes(before: dict[str, str]) -> dict[str, str | None] | None:
    """What differs from ``before`` in os.environ now (None: a variable that cannot be patched)."""
    now = dict(os.environ)
    changed = {k: now.get(k) for k in {*before, *now} if before.get(k) != now.get(k)}
    return changed if set(changed) <= PATCHABLE else None


def _patch(manager: Any, changes: dict[str, str | None]) -> bool:
    """Set (or unset) ``changes`` in the kernel's os.environ; False when it did not answer."""
    from jupyter_client.blocking import BlockingKernelClient

    code = (
        "import os as _os\n"
        f"for _k, _v in {changes!r}.items():\n"
        "    _os.environ.pop(_k, None) if _v is None else _os.environ.__setitem__(_k, _v)\n"
        "del _os, _k, _v"
    )
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    client.start_channels()
    try:
        reply = client.execute_interactive(code, timeout=30, store_history=False)
        return reply["content"]["status"] == "ok"
    except Exception:  # (a kernel that does not answer: the run starts its own)
        return False
    finally:
        client.stop_channels()


def take_warm_kernel(cwd: str | Path, run_log: Path) -> Any | None:
    """The waiting kernel's manager for a run in ``cwd`` (None when none fits).

    It fits when it was started in ``cwd`` and the environment the run's kernel would get
    now differs from its own at most in :data:`PATCHABLE` variables, which are then set in
    it (so a password or key set for this run alone is never missing, and never left for
    the next). Its log moves to ``run_log``.
    """
    global _WAITING
    with _LOCK:
        warm, _WAITING = _WAITING, None
    if warm is None:
        return None
    changes = environment_changes(warm.environment)
    fits = changes is not None and warm.cwd == Path(cwd).resolve()
    if (
        not fits
        or not _run(warm.manager.is_alive)
        or (changes and not _patch(warm.manager, changes))
    ):
        _shut(warm)
        return None
    with contextlib.suppress(OSError):
        shutil.move(warm.log, run_log)  # (the kernel keeps writing to it: same file)
    return warm.manager


def shut_down(manager: Any) -> None:
    """Shut a kernel down (a taken warm kernel after its run: nbclient leaves one it was
    given running)."""  # noqa: D205, D209
    with contextlib.suppress(Exception):
        _run(manager.shutdown_kernel, now=True)


def _shut(warm: WarmKernel) -> None:
    shut_down(warm.manager)
    warm.log.unlink(missing_ok=True)


def discard_warm_kernel() -> None:
    """Shut down the waiting kernel, if any (a worker stopping)."""
    global _WAITING
    with _LOCK:
        warm, _WAITING = _WAITING, None
    if warm is not None:
        _shut(warm)


def warm_kernel_state() -> dict[str, Any]:
    """For health checks: ``waiting`` (pid, seconds it took), ``starting`` or ``none``."""
    with _LOCK:
        warm, starting = _WAITING, _STARTING
    if warm is not None:
        pid = getattr(warm.manager.provisioner, "pid", None) if warm.manager.provisioner else None
        return {"state": "waiting", "pid": pid, "seconds": round(warm.seconds, 2)}
    return {"state": "starting" if starting else "none"}
