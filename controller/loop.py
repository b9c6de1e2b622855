"""Drive a campaign against an in-process instrument: ask -> measure -> tell -> consumers.

Consumers are plain callables ``f(record)``, fed every :class:`StepRecord` as it
happens (a run directory, a progress bar, a live plot are all consumers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from abduce.controller.campaign import Campaign, StepRecord
from abduce.controller.measurements import MeasureRequest, Measurement

Instrument = Callable[[MeasureRequest], Measurement]
Consumer = Callable[[StepRecord], None]


def run_campaign(campaign: Campaign, instrument: Instrument, consumers: Iterable[Consumer] = ()) -> Campaign:
    """Ask, measure and tell until the campaign is done; returns the campaign."""
    consumers = list(consumers)
    while not campaign.done:
        request = campaign.ask()
        record = campaign.tell(instrument(request))
        for consume in consumers:
            consume(record)
    return campaign
