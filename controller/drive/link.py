"""The controller's side of the instrument protocol.

:class:`InstrumentLink` runs one I/O thread that owns the controller's two ROUTER sockets (instrument
lane and control lane). It registers agents, pings them every ``heartbeat_s`` (a long GP fit on the
campaign thread never makes the controller look dead), audits every message in or out, and settles
requests by the rules of :mod:`abduce.controller.drive.settle` (a pure state machine: re-send an
idempotent ``measure`` not acknowledged in time, query a non-idempotent one, fetch a lost result with
``query``, query everything in flight to an agent that restarted); this module owns the sockets and
carries out what those rules decide. The campaign thread calls :meth:`measure`, which blocks until the
request is settled. Binding the lanes is :mod:`~abduce.controller.drive.lanes`; the control-lane calls
and ``bye``, :mod:`~abduce.controller.drive.link_calls`; the plain types (:class:`LinkError`,
:class:`Agent`, :class:`Reply`, re-exported here), :mod:`~abduce.controller.drive.link_types`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

import zmq

from abduce.controller.drive import audit
from abduce.controller.drive.lanes import bind_lanes
from abduce.controller.drive.link_calls import ControlCalls
from abduce.controller.drive.link_types import Agent, LinkError, Pending, Reply
from abduce.controller.drive.settle import Action, Flight, SendMeasure, Settle, Settler
from abduce.controller.errors import ConfigError
from abduce.controller.recipe.addresses import endpoint_is_loopback
from abduce.instruments.protocol.codec import Codec, Message, ProtocolError, version_key
from abduce.instruments.protocol.models import (
    MESSAGES,
    AbortReply,
    Ack,
    Error,
    Hello,
    Measure,
    Ping,
    Pong,
    Query,
    Reject,
    ReleaseReply,
    Result,
    ResultAck,
    SafeStateReply,
    Welcome,
)

__all__ = ["Agent", "InstrumentLink", "LinkError", "Reply"]

log = logging.getLogger("abduce.link")
_MSG_TYPES = {model: name for name, model in MESSAGES.items()}


class InstrumentLink(ControlCalls):
    """Serve agents on ``endpoint`` (and the control lane at port + 1).

    Args:
        endpoint: where to bind, e.g. ``tcp://127.0.0.1:5555`` (never ``*`` by default);
            port 0 binds a free pair of ports, and :attr:`endpoint` then names the one bound
            (read it after :meth:`start`).
        codec: signs with the controller's key; its keyring holds the keys agents may use; its ``versions``
            are the protocol versions this controller offers (all of ``SUPPORTED_VERSIONS`` by default).
        heartbeat_s: ping period; a peer silent for 3 periods is dead.
        ack_timeout_s: how long to wait for an ack before re-sending (idempotent) or querying.
        audit: optional callable ``f(line: dict)`` for the audit log: every message in or out, on either
            lane, authenticated or not (:class:`abduce.controller.drive.audit.AuditLog` names the fields).
        curve: optional ``(public, secret)`` CURVE server keys; then ``curve_clients`` (a
            directory of allowed public certificates) is enforced through ZAP.
    """

    def __init__(
        self,
        endpoint: str,
        codec: Codec,
        heartbeat_s: float = 1.0,
        ack_timeout_s: float = 2.0,
        audit=None,
        curve: tuple[bytes, bytes] | None = None,
        curve_clients: str | None = None,
    ) -> None:
        if curve is None and not endpoint_is_loopback(endpoint):
            raise ConfigError(
                f"{endpoint} is not loopback: binding beyond this machine requires CURVE keys (abduce keys new --curve)"
            )
        self.endpoint, self.codec = endpoint, codec
        self.heartbeat_s, self.ack_timeout_s = heartbeat_s, ack_timeout_s
        self.audit = audit or (lambda line: None)
        if codec.role is None:
            codec.role = "controller"  # an agent-only message sent to the controller is answered wrong-direction
        self._linger_ms = 0  # raised once a bye is queued, so closing does not discard it
        self.curve, self.curve_clients = curve, curve_clients
        self.agents: dict[str, Agent] = {}
        self.errors: deque[ProtocolError] = deque(maxlen=10_000)  # the latest refusals (a flood cannot grow it)
        self.refused = 0  # frame lists refused so far, dropped or answered
        self._stamp: dict[bytes, str] = {}  # routing identity -> the version agreed with that agent
        self._warned: set[bytes] = set()  # peers already warned about a dropped message
        self._pending: dict[str, Pending] = {}  # what the callers wait on; when each is settled: self._settler
        self._settler = Settler(ack_timeout_s, heartbeat_s)
        self._outbox: queue.Queue = queue.Queue()
        self._control_waiters: dict[str, tuple[threading.Event, list]] = {}
        self._registered = threading.Condition()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self._auth = None
        self._ready = threading.Event()
        self._bind_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="abduce-link")
        # Wakes the I/O thread when the campaign thread queues something; the
        # sending end is used under a lock (ZeroMQ sockets are not thread-safe).
        wake_addr = f"inproc://abduce-link-wake-{id(self)}"
        self._wake_recv = self._ctx.socket(zmq.PAIR)
        self._wake_recv.bind(wake_addr)
        self._wake_send = self._ctx.socket(zmq.PAIR)
        self._wake_send.connect(wake_addr)
        self._wake_lock = threading.Lock()

    # ------------------------------------------------------------ public (campaign thread)

    def start(self) -> InstrumentLink:
        self._thread.start()
        self._ready.wait()
        if self._bind_error is not None:
            raise self._bind_error
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)
        else:
            self._wake_recv.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        with self._wake_lock:
            self._wake_send.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> InstrumentLink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_for_agent(self, timeout_s: float | None = None, instrument_id: str | None = None) -> Agent:
        """Block until an agent (or the named one) is registered."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._registered:
            while True:
                for agent in self.agents.values():
                    if instrument_id is None or agent.instrument_id == instrument_id:
                        return agent
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise LinkError(None, "timeout", f"no instrument agent registered within {timeout_s} s")
                self._registered.wait(timeout=left if left is not None else 1.0)

    def measure(
        self, request: Measure, instrument_id: str, timeout_s: float | None = None, settle: bool = False
    ) -> Reply:
        """Send a measure request and block until it is settled; returns the result with its raw frames.

        With ``settle`` (a request that was in flight when the controller
        stopped), ask first with ``query``: the cached result if the agent has
        it, a wait if it is still running, a measurement only if the agent
        never saw it and the request is idempotent, else ``lost``.

        Raises:
            LinkError: rejected, failed in the driver, lost (non-idempotent and
                unknown to a restarted agent), timed out, or link closed.
        """
        pending = Pending(request=request, instrument_id=instrument_id, settling=settle)
        self._put(("measure", pending))
        if not pending.done.wait(timeout=timeout_s):
            raise LinkError(request.request_id, "timeout", f"not settled within {timeout_s} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return Reply(pending.result, pending.buffers, pending.raw, pending.key_id or "")

    # ------------------------------------------------------------ I/O thread

    def _run(self) -> None:
        try:
            if self.curve is not None:
                from zmq.auth.thread import ThreadAuthenticator

                self._auth = ThreadAuthenticator(self._ctx)
                self._auth.start()
                self._auth.configure_curve(domain="*", location=self.curve_clients or zmq.auth.CURVE_ALLOW_ANY)
            data, control, self.endpoint = bind_lanes(self._ctx, self.endpoint, self.curve)
        except Exception as exc:  # a port in use, a bad address
            self._bind_error = (
                exc if isinstance(exc, LinkError) else LinkError(None, "bind", f"cannot bind {self.endpoint}: {exc}")
            )
            self._wake_recv.close(linger=0)  # the loop below never runs: close() would wait on it in ctx.term()
            self._ready.set()
            return
        self._ready.set()
        self._data, self._control = data, control
        poller = zmq.Poller()
        poller.register(data, zmq.POLLIN)
        poller.register(control, zmq.POLLIN)
        poller.register(self._wake_recv, zmq.POLLIN)
        last_ping = 0.0
        try:
            while not self._stop.is_set():
                self._drain_outbox()
                now = time.monotonic()
                if now - last_ping >= self.heartbeat_s:
                    last_ping = now
                    self._heartbeat(now)
                self._check_timeouts(now)
                for sock, _ in poller.poll(timeout=int(1000 * min(0.1, self.heartbeat_s / 4))):
                    if sock is self._wake_recv:
                        while sock.poll(0):
                            sock.recv()
                        continue
                    while sock.poll(0):
                        frames = sock.recv_multipart()
                        try:
                            msg = self.codec.decode(frames)
                        except ProtocolError as exc:
                            self._refuse(sock, frames, exc)
                            continue
                        self._handle(sock, msg, frames)
        finally:
            for p in list(self._pending.values()):
                p.error = LinkError(p.request.request_id, "closed", "the link was closed")
                p.done.set()
            data.close(linger=self._linger_ms)
            control.close(linger=0)
            self._wake_recv.close(linger=0)

    def _put(self, item) -> None:
        self._outbox.put(item)
        with self._wake_lock:
            self._wake_send.send(b"", zmq.NOBLOCK)

    def _refuse(self, sock: zmq.Socket, frames: list[bytes], exc: ProtocolError) -> None:
        """A frame list that failed a check (SPEC 5): dropped unanswered when unauthenticated (checks 1-6)
        or itself an ``error``; else answered with an ``error`` naming the check. Audited either way."""
        self.errors.append(exc)
        self.refused += 1
        if exc.drop or exc.header.msg_type == "error":  # type: ignore[union-attr]
            peer = bytes(frames[0]) if frames else b""  # a flood warns once per peer; the audit has every one
            log.log(logging.DEBUG if peer in self._warned else logging.WARNING, "dropped (never answered): %s", exc)
            self._warned.add(peer)
            outcome = f"dropped {exc.code}"
        else:
            log.warning("bad message: %s", exc)
            # a ROUTER's first frame is always the peer's identity, tag or not
            error = Error(code=exc.code, message=exc.message, request_id=exc.request_id)
            self._send(sock, exc.identities or frames[:1], error, parent=exc.header)
            outcome = f"answered {exc.code}"
        self.audit(audit.incoming(self._lane(sock), frames, exc.claimed, not exc.drop, exc.request_id, outcome))

    def _lane(self, sock: zmq.Socket) -> str:
        return "instrument" if sock is self._data else "control"

    def _send(self, sock: zmq.Socket, identities, content, parent=None) -> list[bytes]:
        version = self._stamp.get(bytes(identities[0])) if identities else None
        frames = self.codec.encode(content, parent=parent, identities=identities, version=version)
        sock.send_multipart(frames)
        rid = getattr(content, "request_id", None)
        self.audit(
            audit.outgoing(self._lane(sock), identities, frames, self.codec.key_id, _MSG_TYPES[type(content)], rid)
        )
        return frames

    def _drain_outbox(self) -> None:
        while True:
            try:
                kind, pending = self._outbox.get_nowait()
            except queue.Empty:
                return
            if kind in ("bye", "control"):
                self._carry_out(kind, pending)
                continue
            rid = pending.request.request_id
            self._pending[rid] = pending
            settling = pending.settling  # in flight before a restart: treated as acked, queried first
            flight = Flight(rid, pending.instrument_id, pending.request.idempotent, acked=settling, settling=settling)
            self._act(self._settler.add(flight, time.monotonic()))

    def _act(self, actions: list[Action]) -> None:
        """Carry out what the settling rules decided: send to the request's agent (once it is registered), or
        hand the caller its result or error."""
        for a in actions:
            p = self._pending.get(a.request_id)
            if p is None:
                continue
            if isinstance(a, Settle):
                del self._pending[a.request_id]
                if a.code is not None:
                    p.error = LinkError(a.request_id, a.code, a.message)
                p.done.set()  # wake the caller first
                continue
            agent = self.agents.get(p.instrument_id)
            if agent is not None:
                content = p.request if isinstance(a, SendMeasure) else Query(request_id=a.request_id)
                self._send(self._data, [agent.identity], content)

    def _heartbeat(self, now: float) -> None:
        for agent in list(self.agents.values()):
            if now - agent.last_heard > 3 * self.heartbeat_s:
                log.warning("agent %s silent for %.1f s: considered dead", agent.instrument_id, now - agent.last_heard)
                continue
            self._send(self._data, [agent.identity], Ping())

    def _check_timeouts(self, now: float) -> None:
        reachable = {i for i, a in self.agents.items() if now - a.last_heard <= 3 * self.heartbeat_s}
        self._act(self._settler.tick(now, reachable))

    def _handle(self, sock: zmq.Socket, msg: Message, frames: list[bytes]) -> None:
        """Act on one authenticated message, audited before it acts (a caller it wakes finds its line there)."""
        c, h, ids = msg.content, msg.header, msg.identities

        def note(outcome: str) -> None:
            self.audit(audit.incoming(self._lane(sock), frames, h, True, getattr(c, "request_id", None), outcome))

        if isinstance(c, Hello):
            note("delivered" if set(self.codec.versions) & set(c.versions) else "answered unsupported-version")
            self._on_hello(sock, msg)
            return
        agent = next((a for a in self.agents.values() if a.identity == ids[0]), None) if ids else None
        if agent is None:
            # Control-lane messages come from the agent's second socket: match by session.
            agent = next((a for a in self.agents.values() if a.session == h.session), None)
        if agent is None:  # after every check of the codec (SPEC 5, check 13)
            note("answered not-registered")
            self._send(sock, ids, Error(code="not-registered", message="send hello first"), parent=h)
            return
        note("delivered")
        agent.last_heard = time.monotonic()
        if sock is self._control and ids:
            agent.control_identity = ids[0]
            self._stamp[ids[0]] = agent.version
        if isinstance(c, (AbortReply, SafeStateReply, ReleaseReply)):
            if isinstance(c, SafeStateReply) and c.ok:
                agent.state = "safe"
            elif isinstance(c, ReleaseReply) and c.ok:
                agent.state = "idle"
            waiter = self._control_waiters.pop(msg.parent.msg_id if msg.parent else "", None)
            if waiter is not None:
                waiter[1].append(c)
                waiter[0].set()
            return
        if isinstance(c, Ping):
            self._send(sock, ids, Pong(), parent=h)
        elif isinstance(c, Pong):
            pass
        elif isinstance(c, Ack):
            self._act(self._settler.acked(c.request_id, time.monotonic()))
        elif isinstance(c, Result):
            p = self._pending.get(c.request_id)
            if p is not None and c.status == "ok":
                p.result, p.buffers, p.raw, p.key_id = c, msg.buffers, msg.raw, h.key_id
            why = c.error or "the driver did not finish the measurement"
            self._act(self._settler.result(c.request_id, c.status, why))  # the result_ack is off the caller's path
            self._send(sock, ids, ResultAck(request_id=c.request_id), parent=h)
        elif isinstance(c, Reject):
            self._act(self._settler.rejected(c.request_id, c.code, c.reason, time.monotonic()))
        elif isinstance(c, Error):
            log.warning("agent %s reports %s: %s", agent.instrument_id, c.code, c.message)
            self._act(self._settler.agent_error(c.request_id, c.code, c.message, c.retryable))

    def _on_hello(self, sock: zmq.Socket, msg: Message) -> None:
        c: Hello = msg.content  # type: ignore[assignment]
        common = [v for v in self.codec.versions if v in c.versions]  # the codec's: SUPPORTED_VERSIONS by default
        if not common:
            self._send(
                sock,
                msg.identities,
                Error(code="unsupported-version", message=f"controller speaks {', '.join(self.codec.versions)}"),
                parent=msg.header,
            )
            return
        best = max(common, key=version_key)  # "1.10" > "1.9"
        self._stamp[msg.identities[0]] = best  # from the welcome on, it is spoken to in the version agreed
        old = self.agents.get(c.instrument_id)
        agent = Agent(c.instrument_id, msg.identities[0], msg.header.session, msg.header.key_id, c.capabilities)
        agent.version = best
        with self._registered:
            self.agents[c.instrument_id] = agent
            self._registered.notify_all()
        self._send(
            sock,
            msg.identities,
            Welcome(version=best, controller_session=self.codec.session, heartbeat_s=self.heartbeat_s),
            parent=msg.header,
        )
        if old is not None and old.session != agent.session:
            log.warning("agent %s restarted (new session): settling in-flight requests", c.instrument_id)
            self._act(self._settler.restarted(c.instrument_id, time.monotonic()))
        elif old is None:  # requests queued before the agent registered
            self._act(self._settler.registered(c.instrument_id, time.monotonic()))
