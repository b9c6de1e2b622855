"""The operator's buttons for the instrument: ``abort``, ``safe-state`` and ``release``, sent on the agent's
control lane from any thread, with every command and the instrument's reply queued for the journal.

The journal is written by the campaign thread only (SQLite, one writer): the daemon calls :meth:`journal`
between steps, while paused and before it closes, so a command is journalled even when no step follows it.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable

from abduce.controller.drive.link import Agent, InstrumentLink
from abduce.controller.errors import AbduceError
from abduce.controller.journal.events import ReplyBody, append

log = logging.getLogger("abduce.daemon")
COMMANDS = ("abort", "safe-state", "release")


class InstrumentButtons:
    """Commands to the registered instrument.

    Args:
        link: the link the instrument registered on.
        agent: the instrument as it registered (a re-registration replaces the link's object: :meth:`agent`).
        pending: ``() -> request id or None``: the request the campaign has in flight, which an abort names
            (so an abort that overtakes its measure on the way still stops it).
    """

    def __init__(self, link: InstrumentLink, agent: Agent, pending: Callable[[], str | None]) -> None:
        self.link, self._first, self._pending = link, agent, pending
        self._replies: queue.Queue = queue.Queue()

    def agent(self) -> Agent:
        """The instrument as the link knows it now."""
        return self.link.agents.get(self._first.instrument_id, self._first)

    def press(self, command: str, by: str, reason: str = "", request_id: str | None = None) -> dict:
        """Send ``command`` (:data:`COMMANDS`) and wait for the reply; returns ``{"command", "ok", "detail"}``.
        A silent or refusing instrument (no answer, a 1.0 agent asked to release) is ``ok: false``, said."""
        agent = self.agent()
        try:
            if command == "abort":
                request_id = request_id or self._pending()
                reply = self.link.abort(agent.instrument_id, request_id)
                ok, detail = reply.aborted, reply.detail
            elif command == "safe-state":
                request_id = None
                reply = self.link.safe_state(agent.instrument_id, reason or f"{by}'s command")
                ok, detail = reply.ok, reply.detail
            elif command == "release":
                request_id = None
                reply = self.link.release(agent.instrument_id, reason or f"{by}'s command")
                ok, detail = reply.ok, reply.detail
            else:
                raise AbduceError(f"unknown instrument command {command!r}; known: {', '.join(COMMANDS)}")
        except AbduceError as exc:
            if command not in COMMANDS:
                raise
            ok, detail = False, str(exc)
        done = "done" if ok else "not done"
        log.warning("%s's %s%s: %s (%s)", by, command, f" of {request_id}" if request_id else "", done, detail)
        self._replies.put((ReplyBody(command=command, by=by, ok=ok, detail=detail), request_id))
        return {"command": command, "ok": ok, "detail": detail}

    def journal(self, journal) -> None:
        """Append the commands pressed since the last call (campaign thread)."""
        while not self._replies.empty():
            body, request_id = self._replies.get()
            append(journal, body, request_id=request_id)
