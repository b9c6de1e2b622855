"""Re-tell a campaign its journal: resume after a crash, and the corpus that rebuilds, inspects and replays.

The campaign is deterministic (same seed, same measurements -> same
requests), so rebuilding it is re-asking and re-telling (:func:`retell`; not to be
confused with ``abduce replay``, which runs a *what-if* campaign against a simulator): for each journalled
measurement, in order, ``ask()`` must return a request with the journalled id
(else the journal belongs to another campaign and :class:`JournalError` says
so), then ``tell`` gives it the journalled value; the next request after a
resume is the one an uninterrupted run would have sent. Fitted states
journalled with each decision are restored rather than refitted (exactly:
float64 through JSON is lossless), so a resume costs the conditioning and
evidence updates, not the fits; a decision lost to a power cut only means
that step is refitted. A proposal round is replayed from its decision's proposals (their laws rebuilt,
added with their journalled fits), not run again, so what it added cannot depend on the machine that
resumes. Measurements that ``tell`` refused (journalled with an
``error``) are skipped, as they were live, and so are requests the instrument ended
``aborted`` (journalled as a skipped instrument error). Requests journalled but never answered are
returned as *in flight*, for the caller to settle (query the instrument, or
re-measure where allowed). Steps whose measurement was journalled but whose
decision was not (a stop mid-fit) are returned as *undecided*: their step
records, for the caller to journal, so the journal holds every step's decision.
An operator's ``accept`` of a suggested composed law is accepted again where it
was journalled: after the same number of measurements, before the next request
(it must come out suggested there again, else the journal is another campaign's).
"""

from __future__ import annotations

from dataclasses import dataclass

from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.errors import ConfigError
from abduce.controller.journal.events import read, refused_points
from abduce.controller.journal.store import Journal, JournalError
from abduce.hypotheses.belief import refused_refits


@dataclass(frozen=True)
class Resumed:
    campaign: Campaign
    in_flight: tuple[MeasureRequest, ...]
    undecided: tuple[StepRecord, ...] = ()


def retell(campaign: Campaign, journal: Journal, limit: int | None = None) -> Resumed:
    """Re-tell every journalled measurement (or the first ``limit``) to a fresh ``campaign``
    built from the journal's config. A batch is re-asked with its journalled number of points
    and re-told point by point (``index``); a batch partly told when the run stopped is in flight,
    its remaining points still open in the campaign (``Campaign.waiting``)."""
    told: set[str] = set()  # requests settled: every point told or skipped
    undecided: list[StepRecord] = []
    requested: dict[str, MeasureRequest] = {}
    # measurements tell() refused are not part of the data (an instrument error leaves the request in flight)
    events = list(read(journal))  # one read: errors and decisions come after the measurements they settle
    refused, skipped, _ = refused_points(events)
    decided = {(e.request_id, e.body.index): e.body for e in events if e.kind == "decision"}  # restored
    for event in events:
        if limit is not None and event.kind == "measurement" and campaign.n >= limit:
            break
        rid = event.request_id
        if event.kind == "request":
            requested[rid] = event.body.request(rid)
        elif event.kind == "accept":
            _accept(campaign, event, journal)
        elif event.kind == "error" and event.body.stage == "instrument" and event.body.skipped:
            _ask(campaign, requested, event, journal)
            campaign.skip(rid)
            told.add(rid)  # settled: not in flight
        elif event.kind == "measurement" and (rid, event.body.index) in skipped:
            _ask(campaign, requested, event, journal)
            campaign.skip(rid, event.body.index)
            if campaign.pending is None or campaign.pending.request_id != rid:
                told.add(rid)  # settled: not in flight
        elif event.kind == "measurement" and (rid, event.body.index) not in refused:
            _ask(campaign, requested, event, journal)
            b = event.body
            decision = decided.get((rid, b.index))
            try:
                record = campaign.tell(
                    Measurement(rid, b.x, b.y, y_sd=b.y_sd, index=b.index),
                    restore=None if decision is None else restored(decision),
                    proposals=decision.proposals if decision is not None else None,
                )
            except ConfigError as exc:  # a journalled proposal this campaign cannot replay
                raise JournalError(f"{journal.path}: the decision after event {event.seq}: {exc}") from None
            if campaign.pending is None or campaign.pending.request_id != rid:
                told.add(rid)
            if decision is None:
                undecided.append(record)
    in_flight = tuple(r for rid, r in requested.items() if rid not in told)
    return Resumed(campaign, in_flight, tuple(undecided))


def restored(decision) -> dict[str, dict]:
    """What a journalled decision gives ``tell`` to restore: its fitted states, and its refused refits
    (refused again without fitting, so that a resume cannot decide otherwise)."""
    return {**decision.fits, **refused_refits(decision.fit_failures, decision.step + 1)}


def _accept(campaign: Campaign, event, journal: Journal) -> None:
    """Accept a journalled ``accept`` again, where it was made (a kill between the journal and the accept
    leaves it journalled: it is accepted here as it would have been)."""
    name, n = event.body.name, event.body.n
    if campaign.n != n:
        raise JournalError(
            f"{journal.path}: event {event.seq} accepts {name!r} after {n} measurements, but it comes after "
            f"{campaign.n}: the journal is out of order"
        )
    try:
        campaign.accept(name)
    except ConfigError as exc:
        raise JournalError(
            f"{journal.path}: event {event.seq} accepts {name!r} after {n} measurements, which this campaign "
            f"does not suggest there ({exc}): the journal was written by a campaign with other settings"
        ) from None


def _ask(campaign: Campaign, requested: dict[str, MeasureRequest], event, journal: Journal) -> MeasureRequest:
    """The campaign's request for ``event``, asked with as many points as were journalled for it."""
    journalled = requested.get(event.request_id)
    request = campaign.ask(q=journalled.q if journalled is not None else None)
    _check(request, event, journal)
    return request


def _check(request: MeasureRequest, event, journal: Journal) -> None:
    if request.request_id != event.request_id:
        raise JournalError(
            f"{journal.path}: step {request.step} asks for request {request.request_id} but the journal "
            f"recorded {event.request_id}: the journal was written by a campaign with other settings"
        )
