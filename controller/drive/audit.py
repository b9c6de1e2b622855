"""``audit.jsonl``: one JSON line for every message in or out, on either lane, authenticated or not.

A line::

    {"t": 1733480000.123, "dir": "in", "lane": "instrument", "peer": "00b8d4e2a1",
     "key_id": "lab", "verified": true, "msg_type": "result", "request_id": "r-1",
     "size": 412, "outcome": "delivered"}

``peer`` is the routing identity the controller's ROUTER gave the sender (hex); ``key_id`` is the key
that signed the message, or for a message that failed authentication the one its header claims
(``verified`` false; null when no header could be read); ``outcome`` is ``delivered`` or ``sent``,
``answered CODE`` (an ``error`` reply went back) or ``dropped CODE`` (nothing went back: checks 1-6 of
SPEC section 5, or an ``error`` that is never answered).

Bounded: the file rotates at ``max_bytes`` into ``audit.jsonl.1`` ... ``.BACKUPS`` (the oldest dropped;
:class:`logging.handlers.RotatingFileHandler`), so the audit of a flood of garbage never holds more than
``max_bytes x (backups + 1)`` bytes (128 MiB by default) and never fills the disk. The journal, not the
audit, is the record of the campaign.
"""

from __future__ import annotations

import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

MAX_BYTES = 32 << 20
BACKUPS = 3


def incoming(lane: str, frames, header, verified: bool, request_id: str | None, outcome: str) -> dict[str, Any]:
    """The line of a frame list received on ``lane`` (``frames[0]``: the ROUTER's peer identity); ``header``
    as read (verified or claimed; None when none could be read)."""
    return {
        "dir": "in",
        "lane": lane,
        "peer": bytes(frames[0]).hex() if frames else None,
        "key_id": header.key_id if header is not None else None,
        "verified": verified,
        "msg_type": header.msg_type if header is not None else None,
        "request_id": request_id,
        "size": sum(len(f) for f in frames),
        "outcome": outcome,
    }


def outgoing(lane: str, identities, frames, key_id: str, msg_type: str, request_id: str | None) -> dict[str, Any]:
    """The line of a message sent on ``lane`` to ``identities[0]`` (``frames``: routing identities first)."""
    return {
        "dir": "out",
        "lane": lane,
        "peer": bytes(identities[0]).hex() if identities else None,
        "key_id": key_id,
        "verified": True,
        "msg_type": msg_type,
        "request_id": request_id,
        "size": sum(len(f) for f in frames) - sum(len(i) for i in identities),
        "outcome": "sent",
    }


class AuditLog:
    """Appends audit lines to ``path`` (see the module docstring); call it with one line's fields."""

    def __init__(self, path: str | Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = Path(path)
        self._handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def __call__(self, line: dict[str, Any]) -> None:
        record = logging.LogRecord(
            "abduce.audit", logging.INFO, "", 0, json.dumps({"t": time.time(), **line}), None, None
        )
        self._handler.handle(record)  # formats, rotates when due, writes and flushes, under the handler's lock

    def close(self) -> None:
        self._handler.close()
