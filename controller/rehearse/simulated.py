"""Campaigns against in-process simulators: the setup ``abduce run`` describes.

Used by the CLI, the benchmarks and the statistical tests, so all three run
exactly the same campaign for the same options.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.core.space import Space
from abduce.controller.drive.loop import Consumer, run_campaign
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.build import campaign_from_names
from abduce.simulators.registry import SIMULATORS


@dataclass(frozen=True)
class SimulatedRun:
    """A campaign against a simulator, as ``abduce run`` takes it.

    Attributes:
        simulator: simulator name (``transition-1d``).
        truth: the law generating the data.
        hypotheses: hypothesis names or dotted paths.
        policy, acquisition: by name (acquisition None = the policy's default).
        budget: measurements.
        seed: seeds both the campaign and the simulator's noise.
        x_c, beta, noise, grid: simulator parameters (noise None = 5% of the amplitude).
        n_init: initial space-filling measurements.
        epsilon: epsilon-greedy exploration probability.
        device: where the campaign's maths runs ("auto": CUDA when present).
    """

    simulator: str = "transition-1d"
    truth: str = "second-order"
    hypotheses: tuple[str, ...] = ("second-order", "first-order", "linear", "sigmoid")
    policy: str = "epsilon-greedy"
    acquisition: str | None = None
    budget: int = 40
    seed: int = 0
    x_c: float = 0.6
    beta: float = 0.5
    noise: float | None = None
    grid: int = 501
    n_init: int = 5
    epsilon: float = 0.1
    device: str = "auto"

    def build(self) -> tuple[Campaign, object]:
        """The campaign and the simulator."""
        sim = SIMULATORS[self.simulator](
            truth=self.truth, x_c=self.x_c, beta=self.beta, noise=self.noise, grid=self.grid, seed=self.seed
        )
        candidates = sim.candidates()
        space = Space.finite(candidates) if candidates is not None else Space.box(sim.bounds)
        campaign = campaign_from_names(
            space,
            self.hypotheses,
            self.policy,
            self.acquisition,
            self.budget,
            self.seed,
            self.n_init,
            self.epsilon,
            scale={"device": self.device},
        )
        return campaign, sim

    def run(self, consumers: Iterable[Consumer] = (), journal: Journal | None = None) -> Campaign:
        """Build and run to the end (journalling if given a journal); returns the finished campaign."""
        campaign, sim = self.build()

        def instrument(request: MeasureRequest) -> Measurement:
            return Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))

        return run_campaign(campaign, instrument, consumers, journal=journal)
