"""Drive a campaign against an in-process instrument: ask -> measure -> tell -> consumers.

Consumers are plain callables ``f(record)``, fed every :class:`StepRecord` as it
happens (a run directory, a progress bar, a live plot are all consumers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.core.measurements import Measurement, MeasureRequest, point_of
from abduce.controller.errors import AbduceError, CampaignStateError, ConfigError, MeasurementRejected
from abduce.controller.journal.events import (
    ErrorBody,
    MeasurementBody,
    PlainArray,
    RequestBody,
    append,
    decision_body,
)
from abduce.controller.journal.store import Journal

log = logging.getLogger("abduce.loop")

Instrument = Callable[[MeasureRequest], "Measurement | Sequence[Measurement]"]
"""Measures a request: one :class:`Measurement` for a one-point request, or one per point (``index`` set)."""
Consumer = Callable[[StepRecord], None]


def run_campaign(
    campaign: Campaign, instrument: Instrument, consumers: Iterable[Consumer] = (), journal: Journal | None = None
) -> Campaign:
    """Ask, measure and tell until the campaign is done; returns the campaign.

    With a journal, each request is journalled before it is sent, each
    measurement before it is told, and each step record after; a refused
    measurement is journalled as an error before the refusal is raised.
    Requests hold ``campaign.settings.q`` points (a batch) where the campaign asks for them.
    """
    consumers = list(consumers)
    while not campaign.done:
        for record in steps(campaign, instrument, journal):  # none: every reading skipped
            for consume in consumers:
                consume(record)
    return campaign


def step(
    campaign: Campaign,
    instrument: Instrument,
    journal: Journal | None = None,
    phase: Callable[[str], None] | None = None,
) -> StepRecord | None:
    """:func:`steps` for callers that take one record per request: the last point's record, or None when
    no point was told."""
    records = steps(campaign, instrument, journal, phase)
    return records[-1] if records else None


def steps(
    campaign: Campaign,
    instrument: Instrument,
    journal: Journal | None = None,
    phase: Callable[[str], None] | None = None,
) -> list[StepRecord]:
    """One request: ask -> measure its point(s) -> tell each, journalling the request before it is
    sent and each measurement before it is told; returns the records of the points told, in order.
    A refused measurement is journalled as an error; a NaN/inf reading then skips its point
    (the other points of a batch are still told; the next ask chooses anew) until ``max_failures``
    in a row, any other refusal is re-raised. A request the instrument ended ``aborted`` (an
    operator's abort, the safe state) is journalled as a skipped instrument error and all its
    points skipped the same way.

    ``phase(name)``, if given, is called as each part begins: ``"deciding"`` (ask),
    ``"measuring"`` (the instrument), ``"learning"`` (tell: refits and evidence); the
    daemon shows it in its status."""
    phase = phase or (lambda name: None)
    phase("deciding")
    request = campaign.ask()
    if journal is not None:
        append(journal, request_body(request), request_id=request.request_id)
    phase("measuring")
    try:
        answer = instrument(request)
    except AbduceError as exc:  # rejected, lost, timed out: who said what, before it propagates
        reason = getattr(exc, "code", type(exc).__name__)
        if reason != "aborted":
            if journal is not None:
                body = ErrorBody(stage="instrument", reason=reason, message=str(exc), skipped=False)
                append(journal, body, request_id=request.request_id)
            raise
        # stopped by an abort or the safe state: skipped, never measured twice
        abandon(campaign, request, journal, reason, str(exc))
        log.warning(
            "request %s at %s was aborted at the instrument; the point is skipped", request.request_id, request.x
        )
        return []
    measurements = [answer] if isinstance(answer, Measurement) else list(answer)
    if sorted(m.index for m in measurements) != list(range(request.q)):
        raise CampaignStateError(
            f"the instrument answered points {[m.index for m in measurements]} of request {request.request_id}, "
            f"which has {request.q}: one Measurement per point, index 0..{request.q - 1}"
        )
    records = []
    for measurement in measurements:
        if measurement.index not in campaign.waiting:  # told before a restart (a batch resumed part way)
            continue
        record = tell_point(campaign, request, measurement, journal, phase)
        if record is not None:
            records.append(record)
    return records


def request_body(request: MeasureRequest) -> RequestBody:
    """The journal's record of a request (its ``points`` only for a batch: one-point journals are as before)."""
    body = {k: getattr(request, k) for k in ("request_id", "step", "x", "hypothesis", "reason")}
    return RequestBody(**body, **({"points": request.points} if request.q > 1 else {}))


def abandon(campaign: Campaign, request: MeasureRequest, journal: Journal | None, reason: str, message: str) -> None:
    """The instrument ended ``request`` with no reading (an operator's abort, the safe state, a failed
    acquisition): journal it as a skipped instrument error of the whole request, then skip every point of it
    still open (on a finite space never asked for again; the next ask chooses anew)."""
    if journal is not None:
        body = ErrorBody(stage="instrument", reason=reason, message=message, skipped=True)
        append(journal, body, request_id=request.request_id)
    campaign.skip(request.request_id)


def tell_point(
    campaign: Campaign,
    request: MeasureRequest,
    measurement: Measurement,
    journal: Journal | None = None,
    phase: Callable[[str], None] | None = None,
) -> StepRecord | None:
    """Tell one point of ``request`` (``measurement.index``), journal first: the measurement before it is
    told, then the decision (its step record with the fitted states of its refits). A refused reading is
    journalled as a ``tell`` error; a NaN/inf one skips its point (returns None: the campaign asks elsewhere)
    until ``max_failures`` in a row, any other refusal is re-raised with the campaign unchanged.

    The loop (:func:`steps`) and bluesky-adaptive's optimizer (:mod:`abduce.controller.beamline`) both tell
    through here, so their journals are alike. ``journal``: anything with :meth:`Journal.append`'s signature."""
    phase = phase or (lambda name: None)
    at = {"index": measurement.index} if measurement.index else {}  # which point of a batch (0: left out)
    if journal is not None:
        # committed before it is told; its fsync runs alongside the tell and is done before the next
        # request goes out (Journal docstring). The raw reply and the key that signed it ride with it.
        known = {} if measurement.y_sd is None else {"y_sd": measurement.y_sd}  # the reading's own sd, if told
        try:
            x = tuple(point_of(measurement.x, campaign.space.names))
        except ConfigError as exc:  # misnamed axes: journalled as refused, as tell would refuse it
            append(journal, ErrorBody(stage="tell", reason="wrong-axes", message=str(exc), **at), request.request_id)
            raise MeasurementRejected(request.request_id, "wrong-axes", str(exc)) from None
        body = MeasurementBody(x=x, y=measurement.y, **known, **at)
        if measurement.arrays:  # raw spectra, kept with the value reduced from them
            arrays = {name: PlainArray.of(a) for name, a in measurement.arrays.items()}
            body = MeasurementBody(x=x, y=measurement.y, arrays=arrays, **known, **at)
        append(
            journal,
            body,
            request_id=request.request_id,
            key_id=measurement.source,
            blob=measurement.raw,
            durability="background",
        )
    phase("learning")
    try:
        record = campaign.tell(measurement)
    except MeasurementRejected as exc:
        # a reading that is not a number: skip the point and ask elsewhere, up to max_failures in a row
        skip = exc.reason == "non-finite" and campaign.consecutive_failures + 1 < campaign.settings.max_failures
        if journal is not None:
            append(
                journal,
                ErrorBody(stage="tell", reason=exc.reason, message=str(exc), skipped=skip, **at),
                request_id=request.request_id,
            )
        if not skip:
            raise
        log.warning("request %s at %s: %s; the point is skipped", request.request_id, measurement.x, exc)
        campaign.skip(request.request_id, measurement.index)
        return None
    if journal is not None:
        # replay recomputes decisions, so this one rides on the next fsync
        # with the fitted states of this step's refits: a resume restores them instead of refitting
        append(journal, decision_body(record, campaign.fit_states(record.refit)), request.request_id, durability="next")
    return record
