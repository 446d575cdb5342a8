"""The resident server (``tracer serve``): a REST API over warm worker processes.

- :mod:`~tracer_kit.server.client`: find a running server, call it, forward a command
  (standard library only; the CLI's fast path).
- :mod:`~tracer_kit.server.settings`: :class:`ServerSettings`.
- :mod:`~tracer_kit.server.work` / :mod:`~tracer_kit.server.pool`: the warm workers and
  the bounded queue.
- :mod:`~tracer_kit.server.state`, :mod:`~tracer_kit.server.routes`,
  :mod:`~tracer_kit.server.app`: the FastAPI application.
- :mod:`~tracer_kit.server.process`: :func:`serve`, the server file and the token.
- :mod:`~tracer_kit.server.commands`: ``tracer serve``'s commands.

Importing this package imports nothing else, so ``tracer_kit.server.client`` stays light.
"""

__all__: list[str] = []
