"""Serving the app on a socket bound before it starts (port 0: a free one, reported in ``url``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.addresses import check_bind
from abduce.controller.views.web.app import POLL_S, create_app
from abduce.controller.views.web.status import Campaigns


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises OSError (port taken...)."""
    family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class WebServer:
    """A view served by uvicorn on a socket already bound (so the port is known, and errors come early).

    ``run()`` serves in this thread (signals handled: the CLI); ``start()``
    serves on a daemon thread (the daemon, tests) until ``close()``.

    Args:
        runs, token, poll_s: as :class:`Campaigns` and :func:`create_app` take them.
        host, port: where to listen (port 0: a free one; see ``url``).
        own_logging: uvicorn configures its own log lines (the CLI, with access
            lines); else its records go to the host process's logging (the
            daemon's JSON lines), without access lines.

    Raises:
        ConfigError: beyond loopback without a token, or a short token.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        runs: Sequence[str | Path],
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        poll_s: float = POLL_S,
        own_logging: bool = True,
    ) -> None:
        import uvicorn

        check_bind(host, token)
        self.campaigns = Campaigns(runs)
        self.app = create_app(self.campaigns, token, poll_s, host.strip("[]"))
        self.socket = _bind(host, port)
        self.url = url_of(self.socket)
        logging = {} if own_logging else {"log_config": None}
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                access_log=own_logging,
                timeout_graceful_shutdown=2,
                server_header=False,
                lifespan="off",
                **logging,
            )
        )
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.campaigns.closing.set()
            self.socket.close()

    def start(self, timeout_s: float = 10.0) -> WebServer:
        self._thread = threading.Thread(target=self.run, name="abduce-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.close()
            raise ConfigError(f"the web view at {self.url} did not start")
        return self

    def close(self) -> None:
        self.campaigns.closing.set()  # event streams end at their next poll
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
