"""Agents and links on loopback TCP, in threads, with fake and simulated drivers."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.codec import Keyring
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure


def free_endpoint() -> str:
    """A loopback endpoint whose port and port + 1 are free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", port + 1))
            return f"tcp://127.0.0.1:{port}"
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class SlowDriver(Driver):
    """A fake instrument: y = sum(x), taking ``delay`` seconds; counts calls; can abort."""

    def __init__(self, delay: float = 0.0, idempotent: bool = True) -> None:
        self.delay, self.idempotent, self.calls = delay, idempotent, []
        self._abort = threading.Event()

    def describe(self) -> Capabilities:
        return Capabilities(axes=[Axis(name="x", min=0.0, max=1.0)], channels=[Channel(name="y")],
                            simulator=True, idempotent=self.idempotent)

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
    return free_endpoint()


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
