"""Drive a campaign against an in-process instrument: ask -> measure -> tell -> consumers.

Consumers are plain callables ``f(record)``, fed every :class:`StepRecord` as it
happens (a run directory, a progress bar, a live plot are all consumers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from abduce.controller.campaign import Campaign, StepRecord
from abduce.controller.errors import AbduceError, MeasurementRejected
from abduce.controller.journal import Journal
from abduce.controller.measurements import MeasureRequest, Measurement

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
        for consume in consumers:
            consume(record)
    return campaign


def step(campaign: Campaign, instrument: Instrument, journal: Journal | None = None) -> StepRecord:
    """One ask -> measure -> tell, journalling the request before it is sent and the
    measurement before it is told (a refused measurement as an error, then re-raised)."""
    request = campaign.ask()
    if journal is not None:
        journal.append("request", vars(request), request_id=request.request_id)
    try:
        measurement = instrument(request)
    except AbduceError as exc:  # rejected, lost, timed out: who said what, before it propagates
        if journal is not None:
            journal.append("error", {"stage": "instrument", "reason": getattr(exc, "code", type(exc).__name__),
                                     "message": str(exc)},
                           request_id=request.request_id)
        raise
    if journal is not None:
        # committed before it is told; its fsync runs alongside the tell and is done before the next
        # request goes out (Journal docstring). The raw reply and the key that signed it ride with it.
        body = {"x": list(measurement.x), "y": measurement.y}
        if measurement.arrays:  # raw spectra, kept with the value reduced from them
            body["arrays"] = {name: _plain(a) for name, a in measurement.arrays.items()}
        journal.append("measurement", body, request_id=request.request_id,
                       key_id=measurement.source, blob=measurement.raw, durability="background")
    try:
        record = campaign.tell(measurement)
    except MeasurementRejected as exc:
        if journal is not None:
            journal.append("error", {"stage": "tell", "reason": exc.reason, "message": str(exc)},
                           request_id=request.request_id)
        raise
    if journal is not None:
        # replay recomputes decisions, so this one rides on the next fsync
        journal.append("decision", vars(record), request_id=request.request_id, durability="next")
    return record


def _plain(array) -> dict:
    """A numpy array as JSON: dtype, shape and the values (float64 round-trips exactly through repr)."""
    import numpy as np

    a = np.asarray(array)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.ravel().tolist()}
