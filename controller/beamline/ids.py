"""The ``_id`` of each point abduce suggests to bluesky-adaptive, and the point an ``_id`` names.

bluesky-adaptive matches every outcome to its suggestion by a unique ``_id``. A campaign's request holds one
point or a batch (``Campaign.ask(q=...)``), so a point is ``(request_id, index)``, and its ``_id`` is::

    request_id              for point 0 (the request's ``x``: every one-point request, as before batches)
    f"{request_id}/{k}"     for point k > 0 of a batch

Request ids are UUIDs (deterministic in the campaign's name, seed and step), which hold no ``/``; the
journal leaves ``index`` out for point 0 in the same way, so an ``_id`` reads straight off the journal and
a step record (:func:`point_id`) and back (:func:`point_key`).
"""

from __future__ import annotations

from typing import Any

ID_KEY = "_id"  # bluesky_adaptive.protocols.ID_KEY (kept here: abduce.controller.beamline imports no bluesky)


def point_id(request_id: str, index: int = 0) -> str:
    """The ``_id`` of point ``index`` of request ``request_id``.

    Example:
        >>> point_id("5f0c...", 0), point_id("5f0c...", 2)
        ('5f0c...', '5f0c.../2')
    """
    return request_id if index == 0 else f"{request_id}/{index}"


def point_key(pid: Any) -> tuple[str, int]:
    """``(request_id, index)`` of the ``_id`` ``pid``: :func:`point_id` inverted, so that
    ``point_id(*point_key(pid)) == str(pid)`` for any ``pid`` (one that is no point's ``_id`` is read as a
    request id of its own, which the caller then finds is no request of its campaign)."""
    rid, sep, k = str(pid).rpartition("/")
    return (rid, int(k)) if sep and k.isdigit() and not k.startswith("0") else (str(pid), 0)
