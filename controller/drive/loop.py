"""Drive a campaign against an in-process instrument: ask -> measure -> tell -> consumers.

Consumers are plain callables ``f(record)``, fed every :class:`StepRecord` as it
happens (a run directory, a progress bar, a live plot are all consumers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.errors import AbduceError, MeasurementRejected
from abduce.controller.journal.events import DecisionBody, ErrorBody, MeasurementBody, PlainArray, RequestBody, append
from abduce.controller.journal.store import Journal

log = logging.getLogger("abduce.loop")

Instrument = Callable[[MeasureRequest], Measurement]
Consumer = Callable[[StepRecord], None]


def run_campaign(
    campaign: Campaign, instrument: Instrument, consumers: Iterable[Consumer] = (), journal: Journal | None = None
) -> Campaign:
    """Ask, measure and tell until the campaign is done; returns the campaign.

    With a journal, each request is journalled before it is sent, each
    measurement before it is told, and each step record after; a refused
    measurement is journalled as an error before the refusal is raised.
    """
    consumers = list(consumers)
    while not campaign.done:
        record = step(campaign, instrument, journal)
        if record is None:  # a skipped reading
            continue
        for consume in consumers:
            consume(record)
    return campaign


def step(
    campaign: Campaign,
    instrument: Instrument,
    journal: Journal | None = None,
    phase: Callable[[str], None] | None = None,
) -> StepRecord | None:
    """One ask -> measure -> tell, journalling the request before it is sent and the
    measurement before it is told. A refused measurement is journalled as an error;
    a NaN/inf reading then skips its point (returns None; the next ask chooses anew)
    until ``max_failures`` in a row, any other refusal is re-raised. A request the
    instrument ended ``aborted`` (an operator's abort, the safe state) is journalled as
    a skipped instrument error and its point skipped the same way (returns None).

    ``phase(name)``, if given, is called as each part begins: ``"deciding"`` (ask),
    ``"measuring"`` (the instrument), ``"learning"`` (tell: refits and evidence); the
    daemon shows it in its status."""
    phase = phase or (lambda name: None)
    phase("deciding")
    request = campaign.ask()
    if journal is not None:
        append(journal, RequestBody(**vars(request)), request_id=request.request_id)
    phase("measuring")
    try:
        measurement = instrument(request)
    except AbduceError as exc:  # rejected, lost, timed out: who said what, before it propagates
        reason = getattr(exc, "code", type(exc).__name__)
        aborted = reason == "aborted"  # stopped by an abort or the safe state: skipped, never measured twice
        if journal is not None:
            body = ErrorBody(stage="instrument", reason=reason, message=str(exc), skipped=aborted)
            append(journal, body, request_id=request.request_id)
        if not aborted:
            raise
        log.warning(
            "request %s at %s was aborted at the instrument; the point is skipped", request.request_id, request.x
        )
        campaign.skip(request.request_id)
        return None
    if journal is not None:
        # committed before it is told; its fsync runs alongside the tell and is done before the next
        # request goes out (Journal docstring). The raw reply and the key that signed it ride with it.
        body = MeasurementBody(x=measurement.x, y=measurement.y)
        if measurement.arrays:  # raw spectra, kept with the value reduced from them
            arrays = {name: PlainArray.of(a) for name, a in measurement.arrays.items()}
            body = MeasurementBody(x=measurement.x, y=measurement.y, arrays=arrays)
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
                ErrorBody(stage="tell", reason=exc.reason, message=str(exc), skipped=skip),
                request_id=request.request_id,
            )
        if not skip:
            raise
        log.warning("request %s at %s: %s; the point is skipped", request.request_id, request.x, exc)
        campaign.skip(request.request_id)
        return None
    if journal is not None:
        # replay recomputes decisions, so this one rides on the next fsync
        # with the fitted states of this step's refits: a resume restores them instead of refitting
        append(
            journal,
            DecisionBody(**vars(record), fits=campaign.fit_states(record.refit)),
            request_id=request.request_id,
            durability="next",
        )
    return record
