"""Campaigns against in-process simulators: the setup ``abduce run`` describes.

Used by the CLI, the benchmarks and the statistical tests, so all three run
exactly the same campaign for the same options.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.drive.loop import Consumer, run_campaign
from abduce.controller.intake.capabilities import space_of
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.recipe import TRANSITION_LAWS, Recipe
from abduce.simulators.registry import SIMULATORS


class SimulatedRun(Recipe):
    """A campaign (its :class:`~abduce.controller.recipe.recipe.Recipe`) against a simulator, as ``abduce run``
    takes it; ``seed`` seeds the simulator's noise too.

    Attributes:
        simulator: simulator name (``transition-1d``).
        truth: the law generating the data.
        hypotheses: by default the four transition laws (the simulator's family).
        x_c, beta, noise, grid: simulator parameters (noise None = 5% of the amplitude; grid 0 = a continuous box).
    """

    hypotheses: Annotated[tuple[str, ...], Field(min_length=1)] = TRANSITION_LAWS
    simulator: str = "transition-1d"
    truth: str = "second-order"
    x_c: float = 0.6
    beta: float = 0.5
    noise: float | None = None
    grid: Annotated[int, Field(ge=0)] = 501

    @model_validator(mode="after")
    def _scalar_only(self) -> SimulatedRun:
        """In process, the campaign reads the simulator's own scalar reading: no other channel, no reduction."""
        own = "y"  # the channel the simulator is built with here (its default)
        if self.reduction is not None or self.channel not in (None, own) or self.cheap_channels:
            raise ValueError(
                f"an in-process run measures {self.simulator}'s scalar channel {own!r} directly; for another "
                "channel, several channels or a reduction of spectra, serve the instrument (abduce instrument "
                "serve) and run with --listen, or rehearse it (abduce replay --against)"
            )
        return self

    def build(self) -> tuple[Campaign, object]:
        """The campaign and the simulator."""
        sim = SIMULATORS[self.simulator](
            truth=self.truth, x_c=self.x_c, beta=self.beta, noise=self.noise, grid=self.grid, seed=self.seed
        )
        from abduce.instruments.drivers.simulated import SimulatedDriver

        space = space_of(SimulatedDriver(sim).describe())  # named, with units, as a rebuild from its journal
        campaign = self.build_campaign(space)
        return campaign, sim

    def run(self, consumers: Iterable[Consumer] = (), journal: Journal | None = None) -> Campaign:
        """Build and run to the end (journalling if given a journal); returns the finished campaign."""
        campaign, sim = self.build()

        def instrument(request: MeasureRequest) -> Measurement | list[Measurement]:
            if request.q == 1:
                return Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))
            y = sim.measure(np.array(request.points))  # a batch: one call, one reading per point
            return [
                Measurement(request.request_id, x, float(v), index=i) for i, (x, v) in enumerate(zip(request.points, y))
            ]

        return run_campaign(campaign, instrument, consumers, journal=journal)
