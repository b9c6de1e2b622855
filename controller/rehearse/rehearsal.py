"""Campaigns against an in-process driver: rehearsals, what-if replays and sweep cells.

The driver is the very object ``abduce instrument serve`` would serve (a
simulated, recorded or faulty driver); the campaign's space comes from its
declared capabilities and its readings become measurements through
:func:`abduce.controller.intake.readings.to_measurement`, exactly as over the
protocol. Only the sockets are skipped, so thousands of short campaigns (a
sweep) cost what their fits cost.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import Field

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.drive.loop import Consumer, run_campaign
from abduce.controller.intake.capabilities import space_of
from abduce.controller.intake.readings import channel_points, check_channels, on_channels, pick_channel, to_measurement
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.recipe import Recipe
from abduce.instruments.drivers.base import Driver
from abduce.instruments.drivers.sources import build_seeded
from abduce.instruments.protocol.models import Measure


class DriverInstrument:
    """``f(MeasureRequest) -> Measurement`` calling a driver in this process."""

    def __init__(self, driver: Driver, channel: str | None = None, reduction: str | None = None) -> None:
        self.driver = driver
        self.capabilities = driver.describe()
        self.channel = pick_channel(self.capabilities, channel, reduction)
        self.channels: tuple[str, ...] | None = None  # a campaign over several channels: their names, in order
        self.reduction = None
        if reduction is not None:
            from abduce.controller.intake.reduction import resolve_reduction

            self.reduction = resolve_reduction(reduction)

    def __call__(self, request: MeasureRequest) -> Measurement | list[Measurement]:
        """The request's reading: one Measurement for one point, else one per point (``index`` 0..q-1),
        all from one ``measure`` of the driver, as the protocol carries a batch."""
        points, names = channel_points(request.points, self.channels)
        measure = Measure(request_id=request.request_id, points=points, channels=sorted(set(names or ())))
        reading = self.driver.measure(measure)
        out = [
            to_measurement(
                request.request_id,
                requested,
                reading.points,
                reading.values,
                reading.arrays,
                names[i] if names else self.channel,
                self.reduction,
                index=i,
                sd=reading.sd,
                axes={name: axis.values for name, axis in reading.axes.items()},
            )
            for i, requested in enumerate(points)
        ]
        out = on_channels(out, request.points, names)
        return out[0] if request.q == 1 else out


class Rehearsal(Recipe):
    """A campaign (its :class:`~abduce.controller.recipe.recipe.Recipe`) against a simulator or recorded
    data set, by name.

    Attributes:
        source: ``simulated:NAME`` (a registered simulator) or ``recorded:PATH``.
        options: constructor options of the simulator (``seed`` defaults to the recipe's ``seed``).
    """

    source: str
    options: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, *args: Any, **data: Any) -> None:
        """``Rehearsal(source, hypotheses, options, policy=..., ...)``: the first three may be positional."""
        data.update(zip(("source", "hypotheses", "options"), args))
        super().__init__(**data)

    def driver(self) -> Driver:
        return build_seeded(self.source, self.options, self.seed)

    def build(self) -> tuple[Campaign, DriverInstrument]:
        instrument = DriverInstrument(self.driver(), self.channel, self.reduction)
        campaign = self.build_campaign(space_of(instrument.capabilities, self.channel, self.reduction))
        if campaign.channels is not None:
            instrument.channels = check_channels(instrument.capabilities, campaign.channels.names)
        return campaign, instrument

    def run(self, consumers: Iterable[Consumer] = (), journal: Journal | None = None) -> Campaign:
        campaign, instrument = self.build()
        return run_campaign(campaign, instrument, consumers, journal=journal)

    def run_into(
        self,
        out: str | os.PathLike,
        consumers: Iterable[Consumer] = (),
        built: tuple[Campaign, DriverInstrument] | None = None,
        **config: Any,
    ) -> Campaign:
        """Build (or take ``built``, what :meth:`build` returned), then run to the end into a new run directory
        ``out`` (journal, jsonl files, and the summary once the campaign is done), as ``abduce replay --out``
        keeps one; ``config`` adds keys to its ``config.json`` beside the recipe (mode ``rehearsal``).
        Nothing is written when the build fails."""
        from abduce.controller.journal.rundir import RunDirectory

        campaign, instrument = built or self.build()
        rundir = RunDirectory(out, {"mode": "rehearsal", **self.model_dump(mode="json"), **config})
        try:
            run_campaign(campaign, instrument, [rundir, *consumers], journal=rundir.journal)
        finally:
            rundir.finish(campaign) if campaign.done else rundir.close()
        return campaign


def truth_on(driver: Driver, points: np.ndarray, reduction: str | None = None) -> np.ndarray | None:
    """The noise-free value at ``points`` (``n x d``) where the source knows it (a simulator), else None."""
    sim = getattr(driver, "simulator", None)
    while sim is not None and not hasattr(sim, "truth") and hasattr(sim, "simulator"):
        sim = sim.simulator  # through fault wrappers
    if sim is None or not hasattr(sim, "truth"):
        return None
    t = np.asarray(sim.truth(points))
    if reduction is not None and t.ndim > 1:
        from abduce.controller.intake.reduction import resolve_reduction

        f = resolve_reduction(reduction)
        t = np.array([f(row) for row in t])
    return t
