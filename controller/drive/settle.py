"""When a measure request is settled: the link's rules, as a pure state machine.

The link (:mod:`abduce.controller.drive.link`) owns the sockets; this module owns what a reply, a
silence or a restarted agent *means* for each request in flight. Every event goes in as a method
call with the time (``now``, monotonic seconds), and what the link must do comes back as a list of
actions; nothing here sends, sleeps or reads a clock, so the rules are tested without sockets
(``tests/controller/drive/test_settle.py``).

The rules (``instruments/protocol/SPEC.md``, sections 7 "Conversations" and 8 "Registration,
heartbeats, sessions"):

* a request is sent once (:class:`SendMeasure`) and re-sent, under the same request id, while no
  ``ack`` has come within ``ack_timeout_s`` -- if it is idempotent; a non-idempotent one is only
  ever *queried* (:class:`SendQuery`), never re-sent, so nothing is measured twice;
* once acked, a result that has not come within ``max(ack_timeout_s, 5 heartbeats)`` is queried
  (it may have been lost on the way);
* a ``result`` settles it (:class:`Settle`, ok or the driver's failure);
* an agent that restarts (a new session) is asked about every request in flight to it; one it does
  not know is re-sent if idempotent, else settled as ``lost``;
* an agent that registers for the first time is sent what was queued for it;
* ``reject`` settles it as ``rejected:CODE``, except ``unknown-request`` while the request is being
  settled after a restart or is not yet acked (see above); an agent ``error`` that is not
  retryable settles it with that code;
* nothing is timed out while the agent is silent (considered dead): the link waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Flight:
    """One measure request not yet settled, as the rules see it."""

    request_id: str
    instrument_id: str
    idempotent: bool
    acked: bool = False
    settling: bool = False  # queried after a restart (or a controller restart); re-sent if unknown and idempotent
    sent_at: float = 0.0


@dataclass(frozen=True)
class SendMeasure:
    """Send (or re-send, same id) the request to its agent."""

    request_id: str


@dataclass(frozen=True)
class SendQuery:
    """Ask the agent what became of the request."""

    request_id: str


@dataclass(frozen=True)
class Settle:
    """The request is settled: by its result (``code`` None) or by a failure (``code``, ``message``)."""

    request_id: str
    code: str | None = None
    message: str = ""


Action = SendMeasure | SendQuery | Settle


class Settler:
    """The requests in flight and the rules that settle them (module docstring)."""

    def __init__(self, ack_timeout_s: float, heartbeat_s: float) -> None:
        self.ack_timeout_s, self.heartbeat_s = ack_timeout_s, heartbeat_s
        self.flights: dict[str, Flight] = {}

    def _settle(self, request_id: str, code: str | None = None, message: str = "") -> list[Action]:
        self.flights.pop(request_id, None)
        return [Settle(request_id, code, message)]

    def add(self, flight: Flight, now: float) -> list[Action]:
        """A request to settle: a new one is sent; one in flight before a restart is queried first."""
        self.flights[flight.request_id] = flight
        flight.sent_at = now
        return [SendQuery(flight.request_id) if flight.settling else SendMeasure(flight.request_id)]

    def acked(self, request_id: str, now: float) -> list[Action]:
        f = self.flights.get(request_id)
        if f is not None:
            f.acked, f.sent_at = True, now
        return []

    def result(self, request_id: str, status: str, message: str = "") -> list[Action]:
        """A result arrived: ``status`` ``ok`` settles it by its result, any other by that failure."""
        if request_id not in self.flights:
            return []
        return self._settle(request_id, None if status == "ok" else status, message)

    def rejected(self, request_id: str, code: str, reason: str, now: float) -> list[Action]:
        f = self.flights.get(request_id)
        if f is None:
            return []
        if code == "unknown-request" and (f.settling or not f.acked):
            if f.idempotent:
                f.settling, f.sent_at = False, now
                return [SendMeasure(request_id)]  # the agent never saw it (or forgot it on restart): measure it
            if f.settling:
                return self._settle(request_id, "lost", "the restarted agent does not know this non-idempotent request")
            return []  # an unacked non-idempotent request: keep querying, never re-send
        return self._settle(request_id, f"rejected:{code}", reason)

    def agent_error(self, request_id: str | None, code: str, message: str, retryable: bool) -> list[Action]:
        if request_id is None or request_id not in self.flights or retryable:
            return []
        return self._settle(request_id, code, message)

    def restarted(self, instrument_id: str, now: float) -> list[Action]:
        """The agent came back with a new session: ask it about everything in flight to it."""
        out: list[Action] = []
        for f in self.flights.values():
            if f.instrument_id == instrument_id:
                f.settling, f.acked, f.sent_at = True, True, now
                out.append(SendQuery(f.request_id))
        return out

    def registered(self, instrument_id: str, now: float) -> list[Action]:
        """The agent registered for the first time: send what was queued for it."""
        out: list[Action] = []
        for f in self.flights.values():
            if f.instrument_id == instrument_id and not f.acked:
                f.sent_at = now
                out.append(SendMeasure(f.request_id))
        return out

    def tick(self, now: float, reachable: set[str]) -> list[Action]:
        """Time has passed: re-send or query what has waited too long on an agent that is ``reachable``
        (registered and heard from within three heartbeats)."""
        out: list[Action] = []
        for f in self.flights.values():
            if f.instrument_id not in reachable:
                continue  # wait for the agent to come back
            if not f.acked and now - f.sent_at > self.ack_timeout_s:
                f.sent_at = now
                # same request id: no double measurement; a non-idempotent one is only asked about
                out.append(SendMeasure(f.request_id) if f.idempotent else SendQuery(f.request_id))
            elif f.acked and now - f.sent_at > max(self.ack_timeout_s, 5 * self.heartbeat_s):
                f.sent_at = now  # a result may have been lost: ask for it
                out.append(SendQuery(f.request_id))
        return out
