"""An evaluation function over the RunEngine's own documents: bluesky-adaptive's outcomes without a database.

bluesky-adaptive calls ``evaluation_function(uid, suggestions)`` after each acquisition; the ``uid`` is
what the acquisition plan returned: with ``plans.optimize`` (``default_acquire``), the acquisition run's
uid, whose start document lists the suggestions' ``_id`` in the order they were measured
(``blop_acquisition_order``); with ``plans.optimize_in_run`` (``list_scan_in_run``), the tuple of ``_id``
in measurement order, the events being the newest ones of the one open run. :class:`Readings` keeps the
events of one stream (``primary``) as the RunEngine emits them (subscribe :meth:`Readings.receive_document`)
and answers with one outcome per suggestion: the reading of ``field`` in that suggestion's event.

A beamline that writes to Tiled (or any store) can evaluate from there instead; this one serves a
notebook, the tests and a RunEngine with no store.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from abduce.controller.beamline.ids import ID_KEY
from abduce.controller.errors import ConfigError


class Readings:
    """Outcomes ``[{"_id": id, field: value}]`` from the events the RunEngine emitted.

    Args:
        field: the data key holding the reading (a sensor's name, e.g. ``"det"``); the outcome carries it
            under the same name, which is the channel the campaign explains.
        sd: a data key holding the reading's standard deviation, if the sensor gives one: the outcome is
            then ``(value, sd)`` (Ax's ``(mean, sem)``).
        axes: data keys of the actuators' readbacks, named as the space's axes, to report the position
            actually reached with each reading (default: none, the suggested point stands).
        stream: the event stream the acquisition reads into.

    Example:
        >>> readings = Readings("det")
        >>> RE.subscribe(readings.receive_document)
        >>> problem = OptimizationProblem(optimizer, [motor], [det], readings)
    """

    def __init__(self, field: str, sd: str | None = None, axes: Sequence[str] = (), stream: str = "primary") -> None:
        self.field, self.sd, self.axes, self.stream = field, sd, tuple(axes), stream
        self._starts: dict[str, Mapping[str, Any]] = {}
        self._descriptors: dict[str, str] = {}  # descriptor uid -> run uid, for the descriptors of `stream`
        self._rows: dict[str, list[Mapping[str, Any]]] = {}  # run uid -> event data, in order
        self._used: dict[str, int] = {}  # run uid -> rows already evaluated (optimize_in_run)
        self._open: list[str] = []

    def receive_document(self, name: str, doc: Mapping[str, Any]) -> None:
        """A RunEngine subscriber: ``RE.subscribe(readings.receive_document)``."""
        if name == "start":
            self._starts[doc["uid"]] = doc
            self._rows[doc["uid"]] = []
            self._open.append(doc["uid"])
        elif name == "descriptor" and doc.get("name") == self.stream:
            self._descriptors[doc["uid"]] = doc["run_start"]
        elif name == "event" and doc["descriptor"] in self._descriptors:
            self._rows[self._descriptors[doc["descriptor"]]].append(doc["data"])
        elif name == "event_page" and doc["descriptor"] in self._descriptors:
            from event_model import unpack_event_page

            for event in unpack_event_page(doc):
                self._rows[self._descriptors[doc["descriptor"]]].append(event["data"])
        elif name == "stop" and doc["run_start"] in self._open:
            self._open.remove(doc["run_start"])

    def __call__(self, uid: Any, suggestions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The outcome of each suggestion acquired under ``uid`` (a run uid, or the ``_id`` tuple of an
        in-run acquisition).

        Raises:
            ConfigError: ``uid`` names no run this object saw (is it subscribed?), the stream holds another
                number of events than there were suggestions, or ``field`` is not among the data keys.
        """
        if isinstance(uid, str) and uid in self._starts:
            order: Sequence[Hashable] = self._starts[uid].get("blop_acquisition_order") or [
                s[ID_KEY] for s in suggestions
            ]
            rows = self._rows.pop(uid)
            del self._starts[uid]
        elif isinstance(uid, tuple) and self._open:
            run = self._open[-1]
            order, start = uid, self._used.get(run, 0)
            rows = self._rows[run][start:]
            self._used[run] = start + len(rows)
        else:
            raise ConfigError(
                f"no run {uid!r} was seen: subscribe receive_document to the RunEngine before it runs the plan"
            )
        if len(rows) != len(order):
            raise ConfigError(
                f"the acquisition emitted {len(rows)} {self.stream!r} events for {len(order)} suggestions; "
                "one event per suggestion is expected"
            )
        return [self._outcome(rid, row) for rid, row in zip(order, rows)]

    def _outcome(self, rid: Hashable, row: Mapping[str, Any]) -> dict[str, Any]:
        missing = [k for k in (self.field, self.sd, *self.axes) if k is not None and k not in row]
        if missing:
            raise ConfigError(f"no {missing} in the {self.stream!r} events; their data keys: {sorted(row)}")
        value = row[self.field] if self.sd is None else (row[self.field], row[self.sd])
        return {ID_KEY: rid, self.field: value, **{a: row[a] for a in self.axes}}
