"""Readings with their uncertainty, end to end: an instrument whose noise grows tenfold past x = 0.5 and
that reports each reading's standard deviation (``Reading.sd``) runs a campaign in process and over the
protocol (1.2); told those sds, the campaign's fit of the true law follows the precise half closer, and
identifies the law more surely, than the same campaign told none; both paths give the same campaign."""

from __future__ import annotations

import os

import numpy as np
import pytest

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.loop import run_campaign
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.intake.capabilities import space_of
from abduce.controller.rehearse.rehearsal import DriverInstrument
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.drivers.simulated import SimulatedDriver
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import Capabilities, Measure
from abduce.simulators.transition1d import Transition1D
from tests.instruments.conftest import LOOPBACK, AgentThread

SETTINGS = CampaignSettings(n_init=4, fit=FitSettings(screen=32, maxiter=40), evidence_samples=64)


def noise_sd(x: np.ndarray) -> np.ndarray:
    """The instrument's own noise: 0.01 below x = 0.5, 0.15 above."""
    return np.where(x[:, 0] > 0.5, 0.15, 0.01)


class HeteroscedasticDriver(Driver):
    """The ``transition-1d`` simulator (its noise-free truth, from the simulated driver's declaration) with
    seeded noise of :func:`noise_sd`, and, with ``report``, that sd in ``Reading.sd``."""

    blocking = False

    def __init__(self, report: bool, seed: int = 0) -> None:
        self.inner = SimulatedDriver(Transition1D(law="second-order", grid=101, seed=seed))
        self.report, self.rng = report, np.random.default_rng(seed)

    def describe(self) -> Capabilities:
        return self.inner.describe()

    def measure(self, request: Measure) -> Reading:
        x = np.asarray(request.points, dtype=float)
        sd = noise_sd(x)
        y = self.inner.simulator.truth(x) + sd * self.rng.standard_normal(len(x))
        return Reading(points=x.tolist(), values={"y": y.tolist()}, sd={"y": sd.tolist()} if self.report else {})


def campaign(capabilities: Capabilities) -> Campaign:
    return Campaign(
        space_of(capabilities),
        [BUILTIN["second-order"], BUILTIN["linear"]],
        "discriminate",
        None,
        Budget(14),
        seed=0,
        settings=SETTINGS,
    )


def fit_error(c: Campaign, truth: Transition1D) -> float:
    """Largest error of the true law's posterior mean over the precise half (x <= 0.5) of the space."""
    points = c.points()
    mean = c.posterior_mean("second-order")
    precise = points[:, 0] <= 0.5
    return float(np.abs(mean[precise] - truth.truth(points[precise])).max())


@pytest.mark.slow  # three 14-measurement campaigns, one over TCP: ~40 s on a loaded 2-core machine
def test_told_sds_are_used_in_process_and_over_the_protocol_alike():
    keyring = Keyring({"lab": os.urandom(32)})
    told = run_campaign(campaign(HeteroscedasticDriver(True).describe()), DriverInstrument(HeteroscedasticDriver(True)))
    assert all(h.y is not None for h in told.history) and not np.isnan(told._y_sd).any()
    untold = run_campaign(
        campaign(HeteroscedasticDriver(False).describe()), DriverInstrument(HeteroscedasticDriver(False))
    )
    assert np.isnan(untold._y_sd).all()
    truth = HeteroscedasticDriver(True).inner.simulator
    assert fit_error(told, truth) < fit_error(untold, truth)
    # and the true law is more probable for it (measured: 0.998 told, 0.43 untold)
    assert told.probabilities()["second-order"] > 0.95 > untold.probabilities()["second-order"]

    link = InstrumentLink(LOOPBACK, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    agent = AgentThread(InstrumentAgent(HeteroscedasticDriver(True), link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.3"
        remote = run_campaign(campaign(registered.capabilities), LinkInstrument(link, registered, timeout_s=15))
    finally:
        agent.stop()
        link.close()
    assert remote._y_sd == told._y_sd
    assert [(h.x, h.y, h.probabilities) for h in remote.history] == [(h.x, h.y, h.probabilities) for h in told.history]
