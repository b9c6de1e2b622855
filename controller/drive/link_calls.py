"""The link's control-lane calls and its goodbye, made from any thread: each queues a message for the
link's I/O thread and waits for its outcome (:class:`~abduce.controller.drive.link.InstrumentLink` has them)."""

from __future__ import annotations

import json
import threading

from abduce.controller.drive.link_types import LinkError
from abduce.instruments.protocol.codec import version_key
from abduce.instruments.protocol.models import Abort, AbortReply, Bye, Release, ReleaseReply, SafeState, SafeStateReply


class ControlCalls:
    """``abort``, ``safe_state`` and ``release`` on an agent's control lane (never queued behind measurements),
    and ``bye`` to every agent; the host (the link) provides the agents, its I/O thread, ``_put``, ``_send`` and
    the sockets."""

    def abort(self, instrument_id: str, request_id: str | None = None, timeout_s: float = 5.0) -> AbortReply:
        """Abort on the control lane (never queued behind measurements)."""
        return self._control_call(instrument_id, Abort(request_id=request_id), timeout_s)  # type: ignore[return-value]

    def safe_state(self, instrument_id: str, reason: str = "", timeout_s: float = 5.0) -> SafeStateReply:
        """Ask the instrument to go to its safe state, on the control lane."""
        return self._control_call(instrument_id, SafeState(reason=reason), timeout_s)  # type: ignore[return-value]

    def release(self, instrument_id: str, reason: str = "", timeout_s: float = 5.0) -> ReleaseReply:
        """Ask the instrument to leave its safe state (protocol 1.1), on the control lane.

        Raises:
            LinkError: ``unsupported-version`` for an agent that speaks 1.0 (it has no release).
        """
        agent = self.agents.get(instrument_id)
        if agent is not None and version_key(agent.version) < (1, 1):
            raise LinkError(None, "unsupported-version", f"{instrument_id!r} speaks {agent.version}: no release")
        return self._control_call(instrument_id, Release(reason=reason), timeout_s)  # type: ignore[return-value]

    def bye(self, reason: str, detail: str = "", timeout_s: float = 2.0) -> int:
        """Tell every registered 1.1 agent the campaign ended (``done``, ``stopped`` or ``error``), so it stops
        re-registering; returns how many were told. The sockets then linger up to 1 s on close, so the
        message leaves before they do. 1.0 agents are not told (they know no ``bye``)."""
        if not self._thread.is_alive():  # never started, or its bind failed: nobody to tell
            return 0
        done, box = threading.Event(), []
        self._put(("bye", (Bye(reason=reason, detail=detail[:500]), done, box)))
        done.wait(timeout_s)
        return box[0] if box else 0

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

    def _carry_out(self, kind: str, pending) -> None:
        """Send a queued ``bye`` (to every 1.1 agent) or control call (to its agent's control lane)."""
        if kind == "bye":
            content, done, box = pending
            told = [a for a in self.agents.values() if version_key(a.version) >= (1, 1)]
            for agent in told:
                self._send(self._data, [agent.identity], content)
                del self.agents[agent.instrument_id]  # no more pings: it was told the campaign ended
            self._linger_ms = 1000 if told else 0
            box.append(len(told))
            done.set()
            return
        instrument_id, content, done, box = pending
        agent = self.agents.get(instrument_id)
        if agent is None or agent.control_identity is None:
            box.append(LinkError(None, "not-registered", f"no control lane to {instrument_id!r} yet"))
            done.set()
            return
        frames = self._send(self._control, [agent.control_identity], content)
        msg_id = json.loads(frames[3])["msg_id"]  # [identity, TAG, signature, header, ...]
        self._control_waiters[msg_id] = (done, box)
