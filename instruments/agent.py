"""The instrument agent: a host process that serves one driver to a controller.

Threads: the *I/O thread* (the caller of :meth:`InstrumentAgent.serve`) owns
every socket; it registers, answers pings, checks requests against the
declared limits, keeps the result cache and sends results. The *worker
thread* runs ``driver.measure`` one request at a time and hands results back
through an ``inproc`` pipe, so a measurement that takes minutes never delays a
heartbeat, a query or an abort (which arrives on its own control lane).

Protocol 1.2: a result carries the driver's per-point standard deviations (``Reading.sd``) and spectral
axes (``Reading.axes``); the codec leaves them out for a controller that welcomed the agent at 1.1 or 1.0.
Protocol 1.1: the agent is idle, measuring, aborting or safe (:mod:`abduce.instruments.states`);
``safe_state`` holds it safe until ``release``; after ``bye`` it sends nothing until its
instrument-lane connection drops and comes back (a new controller session), watched with a
ZeroMQ socket monitor.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from abduce.instruments.drivers.base import Driver
from abduce.instruments.protocol.codec import Codec, Message, ProtocolError, version_key
from abduce.instruments.protocol.models import (
    Abort,
    AbortReply,
    Ack,
    ArraySpec,
    Bye,
    Error,
    Hello,
    Measure,
    Ping,
    Pong,
    Query,
    Reject,
    Release,
    ReleaseReply,
    Result,
    ResultAck,
    SafeState,
    SafeStateReply,
    SpectralAxisSpec,
    Welcome,
)
from abduce.instruments.states import AgentState

if TYPE_CHECKING:  # fault injection for tests; never imported at run time
    from abduce.instruments.drivers.faults import Faults

log = logging.getLogger("abduce.agent")


def control_endpoint(endpoint: str) -> str:
    """The control lane of an instrument endpoint: same host, port + 1 (for ``ipc://PATH``: ``PATH.control``)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return f"{endpoint}.control"
    base, _, port = endpoint.rpartition(":")
    return f"{base}:{int(port) + 1}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class _Done:
    content: Result
    buffers: list[bytes]


_CONNECTED = {zmq.EVENT_CONNECTED, getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", zmq.EVENT_CONNECTED)}


class InstrumentAgent:
    """Connects to a controller, registers, and serves ``driver``.

    Args:
        driver: the instrument.
        endpoint: the controller's instrument endpoint (``tcp://host:port``).
        codec: signs with this agent's key.
        instrument_id: the name the controller knows this instrument by.
        cache_size: results kept for retries and queries.
        curve: optional ``(server_public, own_public, own_secret)`` CURVE keys (z85 bytes).
        faults: for tests only: drop some results and send some late, out of
            order, with seeded decisions (:class:`abduce.instruments.drivers.faults.Faults`,
            ``p_drop``, ``p_reorder``, ``hold_s``). None (the default): every
            result is sent at once, and the send path has no extra step.
    """

    def __init__(
        self,
        driver: Driver,
        endpoint: str,
        codec: Codec,
        instrument_id: str,
        cache_size: int = 10_000,
        curve: tuple[bytes, bytes, bytes] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.driver, self.endpoint, self.codec, self.instrument_id = driver, endpoint, codec, instrument_id
        if codec.role is None:
            codec.role = "agent"  # a controller-only message sent to this agent is answered wrong-direction
        self.capabilities = driver.describe()
        self.cache_size, self.curve = cache_size, curve
        self.heartbeat_s = 1.0
        self.registered = False
        self.parted = False  # a bye came: silent until the controller's connection comes back
        self.state = AgentState()
        self._aborted: set[str] = set()  # requests an abort or the safe state stopped: their results say so
        self._running: str | None = None  # the request the driver is measuring now (worker thread)
        self._claim = threading.Lock()
        self._stopping: str | None = None  # the running request an abort is stopping
        self._doomed: OrderedDict[str, None] = OrderedDict()  # aborted before their measure arrived
        self._parents: dict[str, object] = {}  # accepted requests -> their measure's header (the result's parent)
        self.measured = 0  # driver.measure calls made (tests check nothing is measured twice)
        self.sent = 0  # messages sent (tests check that nothing is sent after bye)
        self._results: OrderedDict[str, _Done] = OrderedDict()
        self._inflight: set[str] = set()
        self._jobs: queue.Queue[tuple[Measure, object] | None] = queue.Queue()
        self._stop = threading.Event()
        self.reply_gate = None if faults is None else faults.reply_gate()  # drops/holds results (tests read its log)
        self._candidates = (
            None if self.capabilities.candidates is None else np.asarray(self.capabilities.candidates, dtype=float)
        )

    # ------------------------------------------------------------ checks

    def check(self, m: Measure) -> Reject | None:
        """The agent's own safety check: dimension, axis limits, candidate grid, channels it declares (1.3)."""
        axes = self.capabilities.axes
        unknown = [c for c in m.channels if c not in {ch.name for ch in self.capabilities.channels}]
        if unknown:
            return Reject(
                request_id=m.request_id,
                code="invalid",
                reason=f"no channel {', '.join(map(repr, unknown))}; it declares "
                f"{[ch.name for ch in self.capabilities.channels]}",
            )
        for p in m.points:
            if len(p) != len(axes):
                return Reject(
                    request_id=m.request_id,
                    code="wrong-dimension",
                    reason=f"point {p} has {len(p)} coordinates, the instrument {len(axes)}",
                )
            for v, a in zip(p, axes):
                if not (a.min <= v <= a.max):
                    return Reject(
                        request_id=m.request_id,
                        code="out-of-limits",
                        reason=f"{a.name} = {v} outside [{a.min}, {a.max}]",
                    )
            if self._candidates is not None:
                span = np.array([a.max - a.min for a in axes])
                if np.min(np.max(np.abs(self._candidates - np.asarray(p)) / span, axis=1)) > 1e-6:
                    return Reject(
                        request_id=m.request_id, code="off-grid", reason=f"point {p} is not one of the candidates"
                    )
        return None

    # ------------------------------------------------------------ worker

    def _run_driver(self, job: Measure) -> _Done:
        """Call the driver and package its reading (or its failure) as a result; a request stopped by an
        abort or the safe state ends ``aborted`` with no readings (the driver reports none it finished)."""
        started = _now()
        try:
            reading = self.driver.measure(job)
            self.measured += 1
            if job.request_id in self._aborted:
                return _Done(Result(request_id=job.request_id, status="aborted", started=started, finished=_now()), [])
            arrays, buffers = [], []
            for i, (name, arr) in enumerate(reading.arrays.items()):
                a = np.ascontiguousarray(arr)
                arrays.append(ArraySpec(channel=name, buffer=i, dtype=a.dtype.str, shape=list(a.shape)))
                buffers.append(a.tobytes())
            values = {k: [v if math.isfinite(v) else None for v in vals] for k, vals in reading.values.items()}
            # 1.2: kept in the cache whatever version is spoken now; the codec leaves them out for an older peer
            sd = {k: [float(v) if math.isfinite(v) else None for v in vals] for k, vals in reading.sd.items()}
            axes = {
                k: SpectralAxisSpec(name=a.name, unit=a.unit, values=np.asarray(a.values, dtype=float).tolist())
                for k, a in reading.axes.items()
            }
            fields = dict(
                request_id=job.request_id,
                status="ok",
                points=reading.points,
                values=values,
                arrays=arrays,
                started=started,
                finished=_now(),
                state=reading.state,
            )
            try:
                content = Result(**fields, sd=sd, axes=axes)
            except ValueError as exc:  # bad uncertainties or axes cost them, never the reading
                if not (sd or axes):
                    raise
                content = Result(**fields)  # the reading itself (a failure here is the driver's)
                log.warning("request %s: sd/axes not valid, sent without them: %s", job.request_id, exc)
            return _Done(content, buffers)
        except Exception as exc:  # the driver failed: say so, keep serving
            if job.request_id in self._aborted:  # a driver may stop by raising: still an abort, not a failure
                return _Done(Result(request_id=job.request_id, status="aborted", started=started, finished=_now()), [])
            log.exception("driver failed on request %s", job.request_id)
            return _Done(
                Result(
                    request_id=job.request_id,
                    status="failed",
                    started=started,
                    finished=_now(),
                    error=f"{type(exc).__name__}: {exc}"[:500],
                ),
                [],
            )

    def _work(self, pipe_addr: str, ctx: zmq.Context) -> None:
        pipe = ctx.socket(zmq.PAIR)
        pipe.connect(pipe_addr)
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                job, parent = item
                with self._claim:
                    if job.request_id not in self._inflight:  # halted while queued: already settled
                        continue
                    self._running = job.request_id
                self._done_queue.put((job.request_id, self._run_driver(job), parent))
                try:
                    pipe.send(b"done")
                except zmq.ZMQError:  # the agent stopped while the driver was measuring
                    log.warning("agent stopped during request %s: its result is not sent", job.request_id)
                    return
        finally:
            try:
                pipe.close(linger=0)
            except zmq.ZMQError:
                pass

    def _finish(self, sock: zmq.Socket, rid: str, done: _Done, parent=None) -> None:
        """Cache and send a finished request's result; its parent header is the ``measure`` that started it.
        The request stays claimed as running until here, so an abort racing its end never settles it twice."""
        with self._claim:
            self._inflight.discard(rid)
            if self._running == rid:
                self._running = None
        stopped = rid == self._stopping  # the running one an abort stopped (not a queued one settled at once)
        if stopped:
            self._stopping = None
        self._aborted.discard(rid)
        self._parents.pop(rid, None)
        self._results[rid] = done
        while len(self._results) > self.cache_size:
            self._results.popitem(last=False)
        self._send_result(sock, done, parent=parent)
        if not self._inflight:
            self.state.on("done")
        elif stopped and self.state.state == "aborting":  # the stopped one ended; the queue goes on
            self.state.on("done")
            self.state.on("measure")

    def _send_result(self, sock: zmq.Socket, done: _Done, parent=None) -> None:
        """Send a result; with injected faults, the gate may drop it or hold it back."""
        if self.reply_gate is None:
            self._send(sock, done.content, parent=parent, buffers=done.buffers)
            return
        self._send_all(sock, self.reply_gate.route(done.content.request_id, (done, parent), time.monotonic()))

    def _send_all(self, sock: zmq.Socket, results: list[tuple[_Done, object]]) -> None:
        for done, parent in results:
            self._send(sock, done.content, parent=parent, buffers=done.buffers)

    # ------------------------------------------------------------ I/O

    def stop(self) -> None:
        self._stop.set()

    def serve(self, duration_s: float | None = None) -> None:
        """Run until :meth:`stop` (or for ``duration_s``). Reconnects and re-registers as needed."""
        ctx = zmq.Context()
        data = self._data = self._dealer(ctx, self.endpoint)
        control = self._dealer(ctx, control_endpoint(self.endpoint))
        monitor = data.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        unwelcomed = f"{min(self.codec.versions, key=version_key).split('.')[0]}.0"
        pipe_addr = f"inproc://agent-{id(self)}"
        pipe = ctx.socket(zmq.PAIR)
        pipe.bind(pipe_addr)
        self._done_queue: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._work, args=(pipe_addr, ctx), daemon=True, name="abduce-agent-worker")
        worker.start()
        poller = zmq.Poller()
        for s in (data, control, pipe, monitor):
            poller.register(s, zmq.POLLIN)
        end = None if duration_s is None else time.monotonic() + duration_s
        last_heard = 0.0
        last_hello = 0.0
        last_control_ping = 0.0
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                now = time.monotonic()
                if self.registered and now - last_heard > 3 * self.heartbeat_s:
                    log.warning("controller silent for %.1f s: re-registering", now - last_heard)
                    self.registered = False
                if not self.registered:
                    self.codec.version = unwelcomed  # until welcomed again: MAJOR.0 of the oldest major (SPEC 9)
                # hello and pings never wait for a peer: until one has connected (a controller not yet up, or
                # one whose CURVE handshake refuses this agent), a DEALER's send would block, and with it stop()
                if not self.registered and not self.parted and now - last_hello >= self.heartbeat_s:
                    self._send(
                        data,
                        Hello(
                            instrument_id=self.instrument_id,
                            versions=sorted(self.codec.versions, key=version_key, reverse=True),
                            capabilities=self.capabilities,
                            software="abduce",
                        ),
                        block=False,
                    )
                    last_hello = now
                elif self.registered and now - last_control_ping >= self.heartbeat_s:
                    # keeps the control lane routable and shows it alive
                    self._send(control, Ping(), block=False)
                    last_control_ping = now
                events = dict(poller.poll(timeout=int(250 * min(1.0, self.heartbeat_s))))
                if monitor in events:
                    while monitor.poll(0):
                        if recv_monitor_message(monitor)["event"] in _CONNECTED and self.parted:
                            log.info("the controller's endpoint is back: registering with the new session")
                            self.parted, last_hello = False, 0.0
                if pipe in events:
                    while pipe.poll(0):
                        pipe.recv()
                    while not self._done_queue.empty():
                        rid, done, parent = self._done_queue.get()
                        self._finish(data, rid, done, parent)
                if self.reply_gate is not None:  # a held-back result whose time is up
                    self._send_all(data, self.reply_gate.due(time.monotonic()))
                for sock in (control, data):
                    if sock in events:
                        while sock.poll(0):
                            msg = self._recv(sock)
                            if msg is not None:
                                last_heard = time.monotonic()
                                self._handle(sock, msg)
        finally:
            self._jobs.put(None)
            worker.join(timeout=5)
            data.disable_monitor()
            for s in (data, control, pipe, monitor):
                s.close(linger=0)
            if worker.is_alive():  # a measurement is still running: do not wait for it to exit
                log.warning("stopping while the driver is still measuring; its result will not be sent")
                ctx.destroy(linger=0)
            else:
                ctx.term()

    def _dealer(self, ctx: zmq.Context, endpoint: str) -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)  # exponential backoff up to 5 s
        if self.curve is not None:
            server_public, public, secret = self.curve
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_public, public, secret
        s.connect(endpoint)
        return s

    def _send(self, sock: zmq.Socket, content, parent=None, buffers=(), block: bool = True) -> None:
        """Send one message; with ``block=False`` it is dropped (to be sent again later) when no peer is connected.
        After ``bye`` nothing is sent (SPEC 8): a result that ends meanwhile stays in the cache for a query."""
        if self.parted:
            return
        try:
            sock.send_multipart(self.codec.encode(content, parent=parent, buffers=buffers), 0 if block else zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            pass

    def _recv(self, sock: zmq.Socket) -> Message | None:
        frames = sock.recv_multipart()
        try:
            return self.codec.decode(frames)
        except ProtocolError as exc:
            if exc.drop:
                log.warning("dropped unauthenticated message: %s", exc)
            elif exc.header is not None and exc.header.msg_type == "error":
                log.warning("bad error message from controller (not answered): %s", exc)
            else:
                log.warning("bad message from controller: %s", exc)
                self._send(
                    sock, Error(code=exc.code, message=exc.message, request_id=exc.request_id), parent=exc.header
                )
            return None

    def _handle(self, sock: zmq.Socket, msg: Message) -> None:
        c, h = msg.content, msg.header
        if self.parted:  # after bye: silent (SPEC 8), even to a straggling ping of the controller that left
            return
        if isinstance(c, Welcome):
            self.registered, self.heartbeat_s = True, c.heartbeat_s
            self.codec.version = c.version  # both lanes speak the negotiated version from now on
            log.info("registered with controller session %s (protocol %s)", c.controller_session, c.version)
        elif isinstance(c, Bye):
            log.info(
                "the controller said bye (%s%s): silent until a new controller session",
                c.reason,
                f": {c.detail}" if c.detail else "",
            )
            self.registered, self.parted = False, True
        elif isinstance(c, Ping):
            self._send(sock, Pong(), parent=h)
        elif isinstance(c, Measure):
            self._on_measure(sock, c, h)
        elif isinstance(c, Query):
            self._on_query(sock, c, h)
        elif isinstance(c, ResultAck):
            pass  # recorded by the controller; the result stays cached until evicted
        elif isinstance(c, Abort):
            self._send(sock, self._on_abort(c), parent=h)  # on the lane it came in on (SPEC 7)
        elif isinstance(c, SafeState):
            self._send(sock, self._on_safe_state(c), parent=h)
        elif isinstance(c, Release):
            self._send(sock, self._on_release(), parent=h)
        elif isinstance(c, Error):
            log.warning("controller reports %s: %s", c.code, c.message)
            if c.code == "not-registered":  # the controller restarted and does not know us: hello again
                self.registered = False
        elif isinstance(c, Pong):
            pass
        else:
            log.info("ignoring %s from controller", h.msg_type)

    def _halt(self, request_id: str | None = None) -> bool:
        """Mark the named (default: every) running or queued request aborted, and stop the driver only when
        the one it measures is among them (a queued one never reaches it); True if any request was stopped."""
        with self._claim:  # the worker claims a queued job under the same lock: each job is halted or run
            targets = {r for r in self._inflight if request_id is None or r == request_id}
            self._aborted.update(targets)
            running = self._running if self._running in targets else None
            queued = targets - {running}
            self._inflight -= queued
        for rid in queued:  # settled now, aborted: the worker passes it by
            now = _now()
            done = _Done(Result(request_id=rid, status="aborted", started=now, finished=now), [])
            self._finish(self._data, rid, done, self._parents.pop(rid, None))
        if running is not None:
            self._stopping = running
            try:
                self.driver.abort()  # last: a driver that raises here has left nothing unanswered
            except Exception:
                self._aborted.discard(running)  # not stopped: its reading, when it comes, is a reading
                self._stopping = None
                raise
        return bool(targets)

    def _on_abort(self, c: Abort) -> AbortReply:
        if c.request_id is not None and c.request_id not in self._inflight:
            if c.request_id in self._results:
                return AbortReply(request_id=c.request_id, aborted=False, detail="that request has finished")
            # the abort overtook its measure (the lanes are not ordered): that measure will end aborted, unmeasured
            self._doomed[c.request_id] = None
            while len(self._doomed) > 1000:
                self._doomed.popitem(last=False)
            return AbortReply(request_id=c.request_id, aborted=True, detail="not received yet: it will not be measured")
        before = self.state.state
        try:
            # the state moves to aborting only when what the driver measures is stopped (SPEC 6, "Agent states")
            hits_running = c.request_id is None or c.request_id == self._running
            act = self.state.on("abort") if hits_running else "abort"
            stopped = act == "abort" and self._halt(c.request_id)
        except Exception as exc:  # a driver failure must not end the agent
            log.exception("driver abort failed")
            return AbortReply(request_id=c.request_id, aborted=False, detail=f"{type(exc).__name__}: {exc}"[:500])
        return AbortReply(request_id=c.request_id, aborted=stopped, detail=f"{before} -> {self.state.state}")

    def _on_safe_state(self, c: SafeState) -> SafeStateReply:
        self.state.on("safe_state")
        log.warning("safe state requested%s", f": {c.reason}" if c.reason else "")
        try:
            self._halt()  # what runs ends aborted; what is queued is never measured
        except Exception:  # the driver could not stop the measurement: the safe state must still be reached
            log.exception("driver abort failed on the way to the safe state")
        try:
            return SafeStateReply(ok=True, detail=str(self.driver.safe_state())[:500])
        except Exception as exc:
            log.exception("driver safe_state failed")
            return SafeStateReply(ok=False, detail=f"{type(exc).__name__}: {exc}"[:500])

    def _on_release(self) -> ReleaseReply:
        if self.state.state != "safe":
            return ReleaseReply(ok=True, detail=f"not in the safe state ({self.state.state}): nothing to release")
        try:
            detail = str(self.driver.release())[:500]
        except Exception as exc:  # still safe: the driver could not leave it
            log.exception("driver release failed")
            return ReleaseReply(ok=False, detail=f"{type(exc).__name__}: {exc}"[:500])
        self.state.on("release")
        return ReleaseReply(ok=True, detail=detail)

    def _on_measure(self, sock: zmq.Socket, m: Measure, h) -> None:
        done = self._results.get(m.request_id)
        if done is not None:  # a retry: answer from the cache, never measure twice
            self._send_result(sock, done, parent=h)
            return
        if m.request_id in self._inflight:
            self._send(sock, Ack(request_id=m.request_id), parent=h)
            return
        rejection = self.check(m)
        if rejection is not None:
            self._send(sock, rejection, parent=h)
            return
        if m.request_id in self._doomed:  # aborted before it arrived
            del self._doomed[m.request_id]
            now = _now()
            done = _Done(Result(request_id=m.request_id, status="aborted", started=now, finished=now), [])
            self._finish(sock, m.request_id, done, parent=h)
            return
        if self.state.on("measure") == "busy":
            self._send(sock, Reject(request_id=m.request_id, code="busy", reason=self.state.busy_reason()), parent=h)
            return
        if not self.driver.blocking:  # microseconds: the result stands in for the ack (SPEC section 7)
            self._inflight.add(m.request_id)
            self._finish(sock, m.request_id, self._run_driver(m), parent=h)
            return
        self._inflight.add(m.request_id)
        self._parents[m.request_id] = h
        self._send(sock, Ack(request_id=m.request_id), parent=h)
        self._jobs.put((m, h))

    def _on_query(self, sock: zmq.Socket, q: Query, h) -> None:
        done = self._results.get(q.request_id)
        if done is not None:
            self._send_result(sock, done, parent=h)
        elif q.request_id in self._inflight:
            self._send(sock, Ack(request_id=q.request_id), parent=h)
        else:
            self._send(
                sock, Reject(request_id=q.request_id, code="unknown-request", reason="no such request here"), parent=h
            )
