"""The controller's side of the instrument protocol.

:class:`InstrumentLink` runs one I/O thread that owns the controller's two
ROUTER sockets (instrument lane and control lane). It registers agents,
pings them every ``heartbeat_s`` (so a long GP fit on the campaign thread can
never make the controller look dead), and settles requests: a ``measure``
not acknowledged in time is re-sent with the same request id when it is
idempotent and only queried when it is not; a result lost in flight is
fetched with ``query``; when an agent comes back with a new session, every
in-flight request is queried, and re-sent only where the agent does not know
it and re-measuring is allowed. Those rules are :mod:`abduce.controller.drive.settle`
(a pure state machine); this module owns the sockets and carries out what it decides.
The campaign thread calls :meth:`measure`, which blocks until the request is settled.
Binding the two lanes is :mod:`abduce.controller.drive.lanes`; the plain types (:class:`LinkError`,
:class:`Agent`, :class:`Reply`, re-exported here) are :mod:`abduce.controller.drive.link_types`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

import zmq

from abduce.controller.drive.lanes import bind_lanes
from abduce.controller.drive.link_types import Agent, LinkError, Pending, Reply
from abduce.controller.drive.settle import Action, Flight, SendMeasure, Settle, Settler
from abduce.controller.errors import ConfigError
from abduce.controller.recipe.addresses import endpoint_is_loopback
from abduce.instruments.protocol.codec import Codec, Message, ProtocolError
from abduce.instruments.protocol.models import (
    MESSAGES,
    SUPPORTED_VERSIONS,
    Abort,
    AbortReply,
    Ack,
    Error,
    Hello,
    Measure,
    Ping,
    Pong,
    Query,
    Reject,
    Result,
    ResultAck,
    SafeState,
    SafeStateReply,
    Welcome,
)

__all__ = ["Agent", "InstrumentLink", "LinkError", "Reply"]

log = logging.getLogger("abduce.link")
_MSG_TYPES = {model: name for name, model in MESSAGES.items()}


class InstrumentLink:
    """Serve agents on ``endpoint`` (and the control lane at port + 1).

    Args:
        endpoint: where to bind, e.g. ``tcp://127.0.0.1:5555`` (never ``*`` by default);
            port 0 binds a free pair of ports, and :attr:`endpoint` then names the one bound
            (read it after :meth:`start`).
        codec: signs with the controller's key; its keyring holds the keys agents may use.
        heartbeat_s: ping period; a peer silent for 3 periods is dead.
        ack_timeout_s: how long to wait for an ack before re-sending (idempotent) or querying.
        audit: optional callable ``f(direction, key_id, msg_type, request_id)`` for the audit log.
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
        self.audit = audit or (lambda *a: None)
        self.curve, self.curve_clients = curve, curve_clients
        self.agents: dict[str, Agent] = {}
        self.errors: list[ProtocolError] = []
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

    def abort(self, instrument_id: str, request_id: str | None = None, timeout_s: float = 5.0) -> AbortReply:
        """Abort on the control lane (never queued behind measurements)."""
        return self._control_call(instrument_id, Abort(request_id=request_id), timeout_s)  # type: ignore[return-value]

    def safe_state(self, instrument_id: str, reason: str = "", timeout_s: float = 5.0) -> SafeStateReply:
        """Ask the instrument to go to its safe state, on the control lane."""
        return self._control_call(instrument_id, SafeState(reason=reason), timeout_s)  # type: ignore[return-value]

    def _put(self, item) -> None:
        self._outbox.put(item)
        with self._wake_lock:
            self._wake_send.send(b"", zmq.NOBLOCK)

    def _control_call(self, instrument_id: str, content, timeout_s: float):
        done, box = threading.Event(), []
        self._put(("control", (instrument_id, content, done, box)))
        if not done.wait(timeout_s):
            raise LinkError(
                getattr(content, "request_id", None), "timeout", f"no reply on the control lane in {timeout_s} s"
            )
        if isinstance(box[0], LinkError):
            raise box[0]
        return box[0]

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
                            self.errors.append(exc)
                            if exc.drop:
                                log.warning("dropped unauthenticated message: %s", exc)
                            elif exc.header is not None and exc.header.msg_type == "error":
                                log.warning("bad error message (never answered, to avoid loops): %s", exc)
                            else:
                                log.warning("bad message: %s", exc)
                                # a ROUTER's first frame is always the peer's identity, tag or not
                                ids = exc.identities or frames[:1]
                                self._send(
                                    sock,
                                    ids,
                                    Error(code=exc.code, message=exc.message, request_id=exc.request_id),
                                    parent=exc.header,
                                )
                            continue
                        self.audit("in", msg.header.key_id, msg.msg_type, getattr(msg.content, "request_id", None))
                        self._handle(sock, msg)
        finally:
            for p in list(self._pending.values()):
                p.error = LinkError(p.request.request_id, "closed", "the link was closed")
                p.done.set()
            data.close(linger=0)
            control.close(linger=0)
            self._wake_recv.close(linger=0)

    def _send(self, sock: zmq.Socket, identities, content, parent=None) -> None:
        sock.send_multipart(self.codec.encode(content, parent=parent, identities=identities))
        self.audit("out", self.codec.key_id, _MSG_TYPES[type(content)], getattr(content, "request_id", None))

    def _drain_outbox(self) -> None:
        while True:
            try:
                kind, pending = self._outbox.get_nowait()
            except queue.Empty:
                return
            if kind == "control":
                instrument_id, content, done, box = pending
                agent = self.agents.get(instrument_id)
                if agent is None or agent.control_identity is None:
                    box.append(LinkError(None, "not-registered", f"no control lane to {instrument_id!r} yet"))
                    done.set()
                    continue
                frames = self.codec.encode(content, identities=[agent.control_identity])
                msg_id = json.loads(frames[3])["msg_id"]  # [identity, TAG, signature, header, ...]
                self._control_waiters[msg_id] = (done, box)
                self._control.send_multipart(frames)
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

    def _handle(self, sock: zmq.Socket, msg: Message) -> None:
        c, h, ids = msg.content, msg.header, msg.identities
        if isinstance(c, Hello):
            self._on_hello(sock, msg)
            return
        agent = next((a for a in self.agents.values() if a.identity == ids[0]), None) if ids else None
        if agent is None:
            # Control-lane messages come from the agent's second socket: match by session.
            agent = next((a for a in self.agents.values() if a.session == h.session), None)
        if agent is None:
            self._send(sock, ids, Error(code="not-registered", message="send hello first"), parent=h)
            return
        agent.last_heard = time.monotonic()
        if sock is self._control and ids:
            agent.control_identity = ids[0]
        if isinstance(c, (AbortReply, SafeStateReply)):
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
        common = [v for v in SUPPORTED_VERSIONS if v in c.versions]
        if not common:
            self._send(
                sock,
                msg.identities,
                Error(code="unsupported-version", message=f"controller speaks {', '.join(SUPPORTED_VERSIONS)}"),
                parent=msg.header,
            )
            return
        old = self.agents.get(c.instrument_id)
        agent = Agent(c.instrument_id, msg.identities[0], msg.header.session, msg.header.key_id, c.capabilities)
        with self._registered:
            self.agents[c.instrument_id] = agent
            self._registered.notify_all()
        best = max(common, key=lambda v: tuple(int(p) for p in v.split(".")))  # "1.10" > "1.9"
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
