"""Agents and links on loopback TCP, in threads, with fake and simulated drivers."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time

import pytest

from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.codec import Keyring
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure

LOOPBACK = "tcp://127.0.0.1:0"  # a link or daemon binds a free pair of ports; read the one bound back


def ipc_endpoint() -> str:
    """A fresh ``ipc://`` endpoint in its own short-lived folder: stable across restarts, free of port races.

    For tests that stop a controller and start it again at the same address (a
    TCP port released by one process may be taken by another before the next
    bind). The path stays under the 107 bytes a Unix socket name may have.
    """
    folder = tempfile.mkdtemp(prefix="abd-", dir="/tmp")
    atexit.register(shutil.rmtree, folder, True)
    return f"ipc://{folder}/i"


class SlowDriver(Driver):
    """A fake instrument: y = sum(x), taking ``delay`` seconds; counts calls; can abort."""

    def __init__(self, delay: float = 0.0, idempotent: bool = True) -> None:
        self.delay, self.idempotent, self.calls = delay, idempotent, []
        self._abort = threading.Event()

    def describe(self) -> Capabilities:
        return Capabilities(
            axes=[Axis(name="x", min=0.0, max=1.0)],
            channels=[Channel(name="y")],
            simulator=True,
            idempotent=self.idempotent,
        )

    def measure(self, request: Measure) -> Reading:
        self.calls.append(request.request_id)
        self._abort.wait(self.delay)
        return Reading(points=request.points, values={"y": [sum(p) for p in request.points]})

    def abort(self) -> bool:
        self._abort.set()
        return True


@pytest.fixture
def keyring():
    return Keyring({"lab": os.urandom(32)})


@pytest.fixture
def endpoint():
    """Where a test's link binds: a free pair of loopback ports; agents connect to ``link.endpoint``."""
    return LOOPBACK


class AgentThread:
    """An InstrumentAgent serving in a background thread."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=10)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class LoggedSimulator(Driver):
    """The transition-1d simulator, appending each request id it measures to ``log`` (fsync'd).

    For agent processes that are killed: the log outlives them, so a test can
    count what the instrument measured across restarts. Served as
    ``--driver tests.instruments.conftest:LoggedSimulator -o log=PATH``.
    """

    def __init__(self, log: str, grid: int = 101, seed: int = 0) -> None:
        from abduce.instruments.drivers.simulated import build

        self.log, self.inner = log, build("simulated:transition-1d", grid=grid, seed=seed)

    def describe(self) -> Capabilities:
        return self.inner.describe()

    def measure(self, request: Measure) -> Reading:
        reading = self.inner.measure(request)
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (request.request_id + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return reading


def measured_ids(log) -> list[str]:
    """The request ids a :class:`LoggedSimulator` measured, in order (none if it never measured)."""
    try:
        return open(log, encoding="utf-8").read().split()
    except FileNotFoundError:
        return []
