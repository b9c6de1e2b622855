"""An instrument agent written from ``instruments/protocol/SPEC.md`` alone: the standard library and pyzmq.

It imports nothing of abduce, so a campaign that the reference controller runs through it shows that the
protocol's text is enough to talk to the controller (tests/controller/test_independent_agent.py): the
spec and the reference implementation cannot drift apart unnoticed. It serves a simulated 1-D instrument:
axis "x" in [0, 1] on 101 candidates, scalar channel "y" = sqrt(max(0.6 - x, 0) / 0.6) + N(0, 0.02)
(a second-order transition at x = 0.6), with seeded noise.

    python tests/independent_agent.py --connect tcp://127.0.0.1:5555 --key KEYFILE [--versions 1.1,1.0]
        [--instrument-id ID] [--dwell SECONDS] [--seed N]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import random
import re
import signal
import struct
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from datetime import UTC, datetime

import zmq
from zmq.utils.monitor import recv_monitor_message

TAG = b"<ABDUCE|MSG>"  # SPEC 2
MAX_JSON, MAX_BUFFER, REPLAY_WINDOW, CACHE = 1 << 20, 256 << 20, 100_000, 10_000  # SPEC 11, 5, 7
HELLO_PERIOD = 1.0  # before the first welcome the period is the agent's own choice (SPEC 8)
HEADER = ("msg_id", "msg_type", "version", "session", "seq", "date", "key_id")
TYPES_1_0 = {"hello", "welcome", "measure", "ack", "reject", "result", "result_ack", "query", "abort"}
TYPES_1_0 |= {"abort_reply", "safe_state", "safe_state_reply", "ping", "pong", "error"}
TYPES_1_1 = {"bye", "release", "release_reply"}
AGENT_SENDS = {"hello", "ack", "reject", "result", "abort_reply", "safe_state_reply", "release_reply"}
CONNECTED = (zmq.EVENT_CONNECTED, zmq.EVENT_HANDSHAKE_SUCCEEDED)
log = logging.getLogger("independent-agent")


def load_key(path: str) -> tuple[str, bytes]:
    """``(key_id, secret)`` of a key file ``{"key_id", "hmac": hex}`` (SPEC 3); ValueError says what is wrong."""
    try:
        if os.name == "posix" and os.stat(path).st_mode & 0o077:
            mode = os.stat(path).st_mode & 0o777
            raise ValueError(f"key file {path} is open to group or others (mode {mode:o}): run chmod 600 {path}")
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        key_id, secret = obj["key_id"], bytes.fromhex(obj["hmac"])
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"key file {path}: not a readable {{'key_id', 'hmac'}} JSON file ({exc})") from None
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= 128 or len(secret) < 32:
        raise ValueError(f"key file {path}: key_id must be 1-128 characters and the secret at least 32 bytes")
    return key_id, secret


def sign(secret: bytes, frames) -> bytes:
    """Lowercase hex HMAC-SHA256 over the frames after the signature, each after its 8-byte big-endian length."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for frame in frames:
        mac.update(struct.pack(">Q", len(frame)) + frame)
    return mac.hexdigest().encode("ascii")


def _finite(text: str) -> float:
    if not math.isfinite(value := float(text)):
        raise ValueError(f"{text} overflows a double")
    return value


def _integer(text: str) -> int:
    float(value := int(text))  # OverflowError beyond a double's range
    return value


def _no_constant(text: str):
    raise ValueError(f"{text} is not allowed on the wire")


def json_object(raw: bytes) -> dict | None:
    """A JSON object from UTF-8 bytes; None for anything else (no BOM, NaN, Infinity, overflow: SPEC 2, 10)."""
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except (ValueError, OverflowError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return obj if isinstance(obj, dict) else None


def _text(lo: int, hi: int):
    return lambda v: isinstance(v, str) and lo <= len(v) <= hi


def is_header(h) -> bool:
    """SPEC 4: the seven fields, no other, with their types."""
    if not (isinstance(h, dict) and set(h) == set(HEADER) and type(h["seq"]) is int and h["seq"] >= 0):
        return False
    texts = [(k, 64) for k in ("msg_id", "msg_type", "session")] + [("key_id", 128)]
    return all(_text(1, n)(h[k]) for k, n in texts) and isinstance(h["date"], str) and _VERSION(h["version"])


_VERSION = lambda v: isinstance(v, str) and re.fullmatch(r"[0-9]{1,9}\.[0-9]{1,9}", v) is not None
_num = lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
CHECKS = {
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "request_id": _text(1, 128),
    "seconds": lambda v: _num(v) and v > 0,
    "points": lambda v: isinstance(v, list) and v != [] and all(isinstance(p, list) and all(map(_num, p)) for p in v),
    "reason": lambda v: v in ("done", "stopped", "error"),
}
# The content of each message this agent receives (SPEC 6): field -> check; "?" optional, "|null" may be null.
CONTENT = {
    "welcome": {"version": "str", "controller_session": "str", "heartbeat_s": "seconds"},
    "measure": {"request_id": "request_id", "points": "points", "parameters": "object?"}
    | {"deadline_s": "seconds|null?", "idempotent": "bool?"},
    "query": {"request_id": "request_id"},
    "result_ack": {"request_id": "request_id"},
    "abort": {"request_id": "request_id|null?"},
    "safe_state": {"reason": "str?"},
    "release": {"reason": "str?"},
    "bye": {"reason": "reason", "detail": "str?"},
    "ping": {},
    "pong": {},
    "error": {"code": "str", "message": "str", "request_id": "request_id|null?", "retryable": "bool?"},
}


def content_problem(msg_type: str, content: dict) -> str | None:
    """Why ``content`` is not valid for ``msg_type`` (a missing, unknown or mistyped field), or None."""
    fields = CONTENT[msg_type]
    for name in sorted(content.keys() - fields.keys()):
        return f"unknown field {name!r}"
    for name, kind in fields.items():
        check, nullable = CHECKS[kind.rstrip("?").removesuffix("|null")], "|null" in kind
        if name not in content and not kind.endswith("?"):
            return f"missing field {name!r}"
        if name in content and not (check(content[name]) or nullable and content[name] is None):
            return f"invalid field {name!r}"
    return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat()  # 2025-01-02T03:04:05.678901+00:00


class Agent:
    """Serves the simulated instrument to the controller at ``endpoint`` (control lane: port + 1) until :meth:`stop`.

    For tests it keeps what it sent (``sent``: lane, msg_type, header, parent, content) and received
    (``received``), the welcomes and byes it got (and ``sent_before_bye``, how many messages it had sent
    by the last bye), the requests it measured, the problems it saw (drops, errors, refusals) and
    ``withheld``: the heartbeats at which it would have sent hello had a bye not silenced it.
    """

    def __init__(
        self,
        endpoint: str,
        key_id: str,
        secret: bytes,
        versions=("1.1", "1.0"),
        instrument_id="independent-1d",
        dwell: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.endpoint, self.key_id, self.keyring = endpoint, key_id, {key_id: secret}
        self.versions, self.instrument_id, self.dwell = list(versions), instrument_id, dwell
        self.majors = {int(v.split(".")[0]) for v in self.versions}
        self.known = TYPES_1_0 | (TYPES_1_1 if "1.1" in self.versions else set())
        self.session, self.seq, self.version = uuid.uuid4().hex, 0, "1.0"
        self.rng = random.Random(seed)
        self.candidates = [i / 100 for i in range(101)]
        self.registered, self.quiet, self.safe, self.heartbeat_s = False, False, False, 1.0
        self.last_heard, self.next_beat, self.withheld, self.sent_before_bye = 0.0, 0.0, 0, 0
        self.sent, self.received, self.byes, self.welcomes, self.problems, self.measured = [], [], [], [], [], []
        self.results: OrderedDict[str, dict] = OrderedDict()
        self.inflight: dict[str, tuple[str, dict, threading.Event]] = {}  # request_id -> (lane, measure header, abort)
        self.seen: deque[bytes] = deque()
        self.seen_set: set[bytes] = set()
        self.jobs, self.done, self.stopped = queue.Queue(), queue.Queue(), threading.Event()

    @property
    def state(self) -> str:
        if self.safe:
            return "safe"
        running = tuple(self.inflight.values())  # a snapshot: tests read it from another thread
        if any(ev.is_set() for _, _, ev in running):
            return "aborting"
        return "measuring" if running else "idle"

    def stop(self) -> None:
        self.stopped.set()

    # ---------------------------------------------------------------- frames
    def encode(self, msg_type: str, content: dict, parent: dict | None = None, buffers=()) -> list[bytes]:
        values = (uuid.uuid4().hex, msg_type, self.version, self.session, self.seq, now_iso(), self.key_id)
        header, self.seq = dict(zip(HEADER, values)), self.seq + 1
        frames = [json.dumps(x, separators=(",", ":")).encode() for x in (header, parent or {}, {}, content)]
        frames += list(buffers)
        return [TAG, sign(self.keyring[self.key_id], frames), *frames]

    def send(self, lane: str, msg_type: str, content: dict, parent: dict | None = None) -> None:
        frames = self.encode(msg_type, content, parent)
        record = {"lane": lane, "msg_type": msg_type, "header": json.loads(frames[2]), "parent": parent or {}}
        self.sent.append(record | {"content": content})
        try:
            self.socks[lane].send_multipart(frames, zmq.NOBLOCK)  # no peer yet: dropped, sent again later
        except zmq.Again:
            log.debug("no peer on the %s lane: %s not sent", lane, msg_type)

    def decode(self, lane: str, frames: list[bytes]) -> dict | None:
        """SPEC 5's checks in order; None when the message was dropped or answered with an error."""
        tag = frames.index(TAG) if TAG in frames else len(frames)
        if len(frames) - tag < 6:
            return self._drop("missing-frame", "no TAG or fewer than five frames after it")
        sig, jsons, buffers = frames[tag + 1], frames[tag + 2 : tag + 6], frames[tag + 6 :]
        if any(len(f) > MAX_JSON for f in jsons) or any(len(b) > MAX_BUFFER for b in buffers):
            return self._drop("too-large", "a frame exceeds the size limit")
        header = json_object(jsons[0])
        if not is_header(header):
            return self._drop("malformed", "the header is not a valid header object")
        if header["key_id"] not in self.keyring:
            return self._drop("unknown-key", header["key_id"])
        if not hmac.compare_digest(sig, sign(self.keyring[header["key_id"]], frames[tag + 2 :])):
            return self._drop("bad-signature", header["msg_type"])
        if sig in self.seen_set:
            return self._drop("replayed", header["msg_type"])
        self.seen.append(sig)
        self.seen_set.add(sig)
        if len(self.seen) > REPLAY_WINDOW:
            self.seen_set.discard(self.seen.popleft())
        self.last_heard = time.monotonic()  # any authenticated message is a sign of life, answered or not
        parent, metadata, content = (json_object(f) for f in jsons[1:])
        rid = content.get("request_id") if content else None
        answer = lambda code, why: self._refuse(lane, header, code, why, rid if CHECKS["request_id"](rid) else None)
        if int(header["version"].split(".")[0]) not in self.majors:
            return answer("unsupported-version", f"this agent speaks {', '.join(self.versions)}")
        if header["msg_type"] not in self.known:
            return answer("unknown-msg-type", header["msg_type"])
        if header["msg_type"] in AGENT_SENDS:  # only an agent sends it; a 1.0 message knows no wrong-direction
            wrong = "1.1" in self.known and header["version"] != "1.0"
            return answer("wrong-direction" if wrong else "unknown-msg-type", f"agents send {header['msg_type']}")
        if parent is None or metadata is None or content is None or (parent and not is_header(parent)):
            return answer("malformed", "parent_header, metadata and content must be JSON objects")
        if (why := content_problem(header["msg_type"], content)) is not None:
            return answer("invalid-content", why)
        return {"lane": lane, "header": header, "parent": parent, "content": content, "buffers": buffers}

    def _note(self, problem: str) -> None:
        log.warning("%s", problem)
        self.problems.append(problem)

    def _drop(self, code: str, why: str) -> None:  # nothing is answered before the signature is verified
        self._note(f"dropped [{code}] {why}")

    def _refuse(self, lane: str, header: dict, code: str, why: str, rid: str | None) -> None:
        self._note(f"[{code}] {why} in {header['msg_type']}")
        if header["msg_type"] != "error" and not self.quiet:  # an error is never answered (no loops)
            self.send(lane, "error", {"code": code, "message": why, "request_id": rid, "retryable": False}, header)

    # ---------------------------------------------------------------- the instrument
    def check(self, points, parameters) -> tuple[str, str] | None:
        """The agent's own safety check: dimension, limits, grid, point by point; it takes no parameters."""
        for p in points:
            if len(p) != 1:
                return "wrong-dimension", f"point {p} has {len(p)} coordinates, the instrument 1"
            if not 0.0 <= p[0] <= 1.0:
                return "out-of-limits", f"x = {p[0]} outside [0.0, 1.0]"
            if min(abs(c - p[0]) for c in self.candidates) > 1e-6:
                return "off-grid", f"point {p} is not one of the candidates"
        return ("invalid", "this instrument takes no parameters") if parameters else None

    def measure(self, rid: str, points, abort: threading.Event | None) -> dict:
        started = now_iso()
        if abort is not None and abort.wait(self.dwell):  # stopped before any reading was complete
            return dict(request_id=rid, status="aborted", points=[], values={}, started=started, finished=now_iso())
        self.measured.append(rid)
        ys = [math.sqrt(max(0.6 - p[0], 0.0) / 0.6) + self.rng.gauss(0.0, 0.02) for p in points]
        result = dict(request_id=rid, status="ok", points=[list(p) for p in points], values={"y": ys}, arrays=[])
        return result | dict(started=started, finished=now_iso(), state={}, error="")

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            self.done.put((job[0], self.measure(*job)))

    def _finish(self, rid: str, result: dict, lane: str, parent: dict) -> None:
        self.inflight.pop(rid, None)
        self.results[rid] = result
        while len(self.results) > CACHE:
            self.results.popitem(last=False)
        self.send(lane, "result", result, parent)  # parent: the measure that started it

    # ---------------------------------------------------------------- conversations
    def handle(self, m: dict) -> None:
        lane, h, c, kind = m["lane"], m["header"], m["content"], m["header"]["msg_type"]
        self.received.append({"lane": lane, "msg_type": kind, "header": h, "content": c})
        if self.quiet:  # after bye: nothing is sent until a new controller session connects
            return self._note(f"{kind} received after bye: not answered")
        rid = c.get("request_id")
        if kind == "welcome":
            if c["version"] not in self.versions:
                self._note(f"welcomed with version {c['version']}, not one offered")
            self.registered, self.version, self.heartbeat_s, self.next_beat = True, c["version"], c["heartbeat_s"], 0
            self.welcomes.append(c)
        elif kind == "ping":
            self.send(lane, "pong", {}, h)
        elif kind == "measure":
            if rid in self.results:  # a retry: answered from the cache, never measured twice
                self.send(lane, "result", self.results[rid], h)
            elif rid in self.inflight:
                self.send(lane, "ack", {"request_id": rid}, h)
            elif bad := self.check(c["points"], c.get("parameters")):  # limits first, whatever the state
                self.send(lane, "reject", {"request_id": rid, "code": bad[0], "reason": bad[1]}, h)
            elif self.state in ("safe", "aborting"):
                why = "in the safe state: release it first" if self.safe else "aborting: try again when idle"
                self.send(lane, "reject", {"request_id": rid, "code": "busy", "reason": why}, h)
            elif self.dwell <= 0:  # microseconds: the result stands in for the ack
                self._finish(rid, self.measure(rid, c["points"], None), lane, h)
            else:
                self.inflight[rid] = (lane, h, threading.Event())
                self.send(lane, "ack", {"request_id": rid}, h)
                self.jobs.put((rid, c["points"], self.inflight[rid][2]))
        elif kind == "query":
            if rid in self.results:
                self.send(lane, "result", self.results[rid], h)
            elif rid in self.inflight:
                self.send(lane, "ack", {"request_id": rid}, h)
            else:
                self.send(lane, "reject", {"request_id": rid, "code": "unknown-request", "reason": "no record"}, h)
        elif kind in ("abort", "safe_state"):
            hit = [r for r, (_, _, ev) in self.inflight.items() if rid in (None, r) and not ev.is_set()]
            for r in hit:  # stopped now (the queued ones end aborted without being measured)
                self.inflight[r][2].set()
            if kind == "abort":
                detail = f"stopping {', '.join(hit)}" if hit else "nothing running"
                self.send(lane, "abort_reply", {"request_id": rid, "aborted": bool(hit), "detail": detail}, h)
            else:
                self.safe = True
                self.send(lane, "safe_state_reply", {"ok": True, "detail": "simulated beam off; parked"}, h)
        elif kind == "release":
            detail = "left the safe state" if self.safe else "was not in the safe state"
            self.safe = False
            self.send(lane, "release_reply", {"ok": True, "detail": detail}, h)
        elif kind == "bye":
            log.info("bye (%s): silent until a new controller session connects", c["reason"])
            self.byes.append(c)
            self.sent_before_bye = len(self.sent)
            self.registered, self.quiet, self.version = False, True, "1.0"
            while self.monitor.poll(0):  # connections made before the bye do not count
                recv_monitor_message(self.monitor)
        elif kind == "error":
            self._note(f"controller error [{c['code']}] {c['message']}")
            if c["code"] == "not-registered":
                self.registered, self.version, self.next_beat = False, "1.0", 0  # hello at once

    # ---------------------------------------------------------------- I/O
    def serve(self) -> None:
        ctx = zmq.Context()
        base, _, port = self.endpoint.rpartition(":")
        self.socks = {}
        for lane, endpoint in (("instrument", self.endpoint), ("control", f"{base}:{int(port) + 1}")):
            s = self.socks[lane] = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RECONNECT_IVL, 100)
            s.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
            s.connect(endpoint)
        self.monitor = self.socks["instrument"].get_monitor_socket(CONNECTED[0] | CONNECTED[1])
        lanes = {s: lane for lane, s in self.socks.items()}
        poller = zmq.Poller()
        for s in (*lanes, self.monitor):
            poller.register(s, zmq.POLLIN)
        worker = threading.Thread(target=self._work, daemon=True, name="independent-agent-worker")
        worker.start()
        try:
            while not self.stopped.is_set():
                now = time.monotonic()
                if self.registered and now - self.last_heard > 3 * self.heartbeat_s:
                    log.warning("controller silent for 3 heartbeats: hello again")
                    self.registered, self.version, self.next_beat = False, "1.0", 0
                if now >= self.next_beat:
                    self.next_beat = now + (self.heartbeat_s if self.registered else HELLO_PERIOD)
                    if self.quiet:
                        self.withheld += 1  # a heartbeat at which a 1.0 agent would have sent hello
                    elif self.registered:
                        self.send("control", "ping", {})
                    else:
                        self.send("instrument", "hello", self.hello())
                while not self.done.empty():
                    rid, result = self.done.get()
                    self._finish(rid, result, *self.inflight[rid][:2])
                for s, _ in poller.poll(50):
                    while s.poll(0):
                        if s is self.monitor:
                            if recv_monitor_message(s)["event"] in CONNECTED and self.quiet:
                                log.info("a controller connected after bye: hello again")
                                self.quiet, self.next_beat = False, 0
                        elif (m := self.decode(lanes[s], s.recv_multipart())) is not None:
                            self.handle(m)
        finally:
            self.jobs.put(None)
            for ev in [e for _, _, e in self.inflight.values()]:
                ev.set()
            worker.join(timeout=5)
            self.socks["instrument"].disable_monitor()
            self.monitor.close(linger=0)
            for s in lanes:
                s.close(linger=0)
            ctx.term()

    def hello(self) -> dict:
        axes, channels = [dict(name="x", unit="", min=0.0, max=1.0)], [dict(name="y")]
        capabilities = dict(axes=axes, candidates=[[x] for x in self.candidates], channels=channels, simulator=True)
        software = "tests/independent_agent.py (written from SPEC.md)"
        return dict(
            instrument_id=self.instrument_id, versions=self.versions, capabilities=capabilities, software=software
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", required=True, help="the controller's instrument endpoint, tcp://HOST:PORT")
    p.add_argument("--key", required=True, help="signing key file (JSON, mode 0600)")
    p.add_argument("--versions", default="1.1,1.0", help="protocol versions offered in hello")
    p.add_argument("--instrument-id", default="independent-1d")
    p.add_argument("--dwell", type=float, default=0.0, help="seconds per measurement (0: inline, result at once)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        key_id, secret = load_key(args.key)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agent = Agent(args.connect, key_id, secret, args.versions.split(","), args.instrument_id, args.dwell, args.seed)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        agent.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
