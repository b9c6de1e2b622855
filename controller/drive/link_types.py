"""The instrument link's plain types: its error, the agents it registered, what a caller waits on and gets back.

:class:`~abduce.controller.drive.link.InstrumentLink` (which re-exports
:class:`LinkError`, :class:`Agent` and :class:`Reply`) fills them on its I/O
thread; the campaign thread reads them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from abduce.controller.errors import AbduceError
from abduce.instruments.protocol.models import Capabilities, Measure, Result


class LinkError(AbduceError):
    """A request could not be settled (rejected, failed, lost, timed out, link closed).

    Attributes:
        request_id: the request.
        code: "rejected:<reject code>", "failed", "lost", "timeout", "closed" or an error code.
    """

    def __init__(self, request_id: str | None, code: str, message: str) -> None:
        self.request_id, self.code = request_id, code
        super().__init__(f"request {request_id}: {code}: {message}")


@dataclass
class Agent:
    """A registered instrument agent."""

    instrument_id: str
    identity: bytes
    session: str
    key_id: str
    capabilities: Capabilities
    last_heard: float = field(default_factory=time.monotonic)
    control_identity: bytes | None = None
    version: str = "1.0"  # the protocol version negotiated at welcome
    state: str = "idle"  # as far as the controller knows: "safe" after safe_state, "idle" after release


class Reply(NamedTuple):
    """A settled measurement: the result, its array buffers, the raw frames as received
    (from the protocol tag on; signature included) and the key id that signed them."""

    result: Result
    buffers: tuple[bytes, ...]
    raw: tuple[bytes, ...]
    key_id: str


@dataclass
class Pending:
    """A measure request a caller waits on (``done``) until the link settles it with a result or an error."""

    request: Measure
    instrument_id: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None
    buffers: tuple[bytes, ...] = ()
    raw: tuple[bytes, ...] = ()
    key_id: str | None = None
    error: LinkError | None = None
    settling: bool = False  # in flight before the controller restarted: queried first (settle.Flight)
