"""The daemon's control lane: status, pause, resume, stop, list — answered at once, even mid-fit — the
operator's buttons for the instrument: abort, safe-state, release (forwarded to the agent's control lane),
and accept (a suggested composed law, applied by the campaign between requests: answered then).

A ROUTER socket served by its own thread, so a GP fit on the campaign thread
never delays an answer. Requests are signed with the daemon's key (the same
key file as the instrument link), so nobody without the key can pause or stop
a campaign:

    request  [JSON body, hex HMAC-SHA256(key, body)]   (DEALER/REQ side; a ROUTER adds the identity)
    body     {"command": COMMAND, "t": UNIX seconds, "nonce": str, "args": {...}}   (args optional:
             {"reason": str} for safe-state and release, {"request_id": str} for abort, {"name": str}
             for accept)
    reply    [JSON {"ok": bool, ...}]

A handler may answer with a :class:`~concurrent.futures.Future` of its dict (accept: the campaign thread
resolves it between requests); the lane replies when it is done and answers other requests meanwhile.

A request older than 30 s, or whose nonce was seen, is refused (no replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

import zmq

from abduce.controller.errors import AbduceError

log = logging.getLogger("abduce.control")
COMMANDS = ("status", "pause", "resume", "stop", "list", "abort", "safe-state", "release", "accept")
MAX_AGE_S = 30.0


class ControlError(AbduceError):
    """The daemon did not answer, or refused the request."""


def sign(secret: bytes, body: bytes) -> bytes:
    return hmac.digest(secret, body, hashlib.sha256).hex().encode()


class ControlServer:
    """Answers control requests with ``handler(command) -> dict`` on its own thread.

    Args:
        endpoint: where to bind (loopback tcp or ipc); port 0 binds a free port, and
            :attr:`endpoint` names it once :meth:`start` returns.
        secret: the signing key's secret.
        handler: ``handler(command, args) -> dict``, called on the control thread; must be thread-safe
            and quick (it reads a snapshot and sets flags; the instrument's buttons wait for the agent's
            reply, a few seconds at most), or return a ``Future`` of the dict, replied once it is done.
    """

    def __init__(self, endpoint: str, secret: bytes, handler: Callable[[str, dict], dict | Future]) -> None:
        self.endpoint, self._secret, self._handler = endpoint, secret, handler
        self._stop = threading.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="abduce-control")

    def start(self) -> ControlServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise ControlError(f"cannot bind the control lane {self.endpoint}: {self._error}")
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.endpoint)
            self.endpoint = sock.last_endpoint.decode()  # port 0: the port the system gave
        except zmq.ZMQError as exc:
            self._error = exc
            self._ready.set()
            sock.close(0)
            ctx.term()
            return
        self._ready.set()
        waiting: list[tuple[list[bytes], Future]] = []  # replies the campaign thread has still to give
        try:
            while not self._stop.is_set():
                for prefix, future in [w for w in waiting if w[1].done()]:
                    waiting.remove((prefix, future))
                    sock.send_multipart([*prefix, json.dumps(_resolved(future)).encode()])
                if not sock.poll(100):
                    continue
                frames = sock.recv_multipart()
                identity, rest = frames[0], frames[1:]
                if rest and rest[0] == b"":  # a REQ peer adds an empty delimiter
                    reply_prefix, rest = [identity, b""], rest[1:]
                else:
                    reply_prefix = [identity]
                answer = self._answer(rest)
                if isinstance(answer, Future):
                    waiting.append((reply_prefix, answer))
                else:
                    sock.send_multipart([*reply_prefix, json.dumps(answer).encode()])
        finally:
            sock.close(0)
            ctx.term()

    def _answer(self, frames: list[bytes]) -> dict | Future:
        if len(frames) != 2:
            return {"ok": False, "error": "expected [body, signature]"}
        body, signature = frames
        if not hmac.compare_digest(sign(self._secret, body), signature):
            log.warning("control request with a bad signature refused")
            return {"ok": False, "error": "bad signature"}
        try:
            request = json.loads(body)
            command, t, nonce = request["command"], float(request["t"]), str(request["nonce"])
            args = request.get("args") or {}
            if not isinstance(args, dict):
                raise TypeError("args")
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"ok": False, "error": "body must be a JSON object with command, t, nonce (and an args object)"}
        if abs(time.time() - t) > MAX_AGE_S or nonce in self._seen:
            return {"ok": False, "error": "stale or replayed request"}
        self._seen[nonce] = None
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        if command not in COMMANDS:
            return {"ok": False, "error": f"unknown command {command!r}; known: {', '.join(COMMANDS)}"}
        try:
            answer = self._handler(command, {str(k): v for k, v in args.items()})
        except Exception as exc:  # never let a handler bug kill the control lane
            log.exception("control handler failed")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return answer if isinstance(answer, Future) else {"ok": True, **answer}


def _resolved(future: Future) -> dict:
    """The reply to a request answered by a future: its dict, or the error it ended with."""
    exc = future.exception()
    if exc is not None:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, **future.result()}


def request(endpoint: str, secret: bytes, command: str, timeout_s: float = 5.0, **args) -> dict:
    """Send one signed control request and return the reply (raises ControlError on silence)."""
    body = json.dumps({"command": command, "t": time.time(), "nonce": uuid.uuid4().hex, "args": args}).encode()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart([body, sign(secret, body)])
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlError(f"no answer from a daemon at {endpoint} within {timeout_s} s")
        reply = json.loads(sock.recv_multipart()[-1])
    finally:
        sock.close(0)
    if not reply.get("ok"):
        raise ControlError(f"the daemon refused {command!r}: {reply.get('error')}")
    return reply
