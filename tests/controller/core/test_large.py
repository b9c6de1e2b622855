"""Past the exact-inference size every hypothesis switches to inducing points, together, logged,
reproducibly (a replay with restored fits is the same campaign), and memory caps the switch."""

import dataclasses
import logging

import numpy as np

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.core.measurements import Measurement
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.sparse import SparseCandidatePosterior
from abduce.simulators.transition1d import Transition1D

SMALL = CampaignSettings(
    n_init=20,
    fit=FitSettings(screen=64, maxiter=60),
    evidence_samples=128,
    exact_max_n=24,
    inducing=12,
    refit_every_step_below=10,
)
HYPS = [BUILTIN["second-order"], BUILTIN["linear"]]


def _campaign(settings=SMALL, budget=40, grid=201):
    sim = Transition1D(grid=grid, seed=4)
    return Campaign(
        Space.finite(sim.candidates()), HYPS, "discriminate", None, Budget(budget), seed=4, settings=settings
    ), sim


def _measure(sim, r):
    return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))


def test_all_hypotheses_switch_together_past_exact_max_n_and_say_so(caplog):
    c, sim = _campaign()
    states = []
    with caplog.at_level(logging.INFO, logger="abduce.hypotheses.belief"):
        while not c.done:
            record = c.tell(_measure(sim, c.ask()))
            states.append((c.n, record.refit, c.fit_states(c.hypothesis_names)))
    by_n = {n: (refit, fits) for n, refit, fits in states}
    assert all(f["inducing"] == 0 for f in by_n[24][1].values())
    assert set(by_n[25][0]) == {"second-order", "linear", "none of these"}  # all refit at the switch
    assert all(f["inducing"] == 12 for f in by_n[25][1].values())
    assert all(isinstance(s.posterior, SparseCandidatePosterior) for s in c.belief.all_slots())
    switched = [r for r in caplog.records if "switching from exact inference to 12 inducing points" in r.getMessage()]
    assert len(switched) == 3 and "n = 25 > 24" in switched[0].getMessage()
    assert c.leader() == "second-order" and c.probabilities()["second-order"] > 0.9


def test_a_replay_with_restored_fits_is_the_same_campaign_past_the_switch():
    live, sim = _campaign(budget=34)
    fits, told = [], []
    while not live.done:
        m = _measure(sim, live.ask())
        record = live.tell(m)
        told.append(m)
        fits.append(live.fit_states(record.refit))
    again, _ = _campaign(budget=34)
    for m, f in zip(told, fits):
        assert again.ask().request_id == m.request_id
        again.tell(m, restore=f)
    assert [h.probabilities for h in again.history] == [h.probabilities for h in live.history]
    np.testing.assert_array_equal(again.posterior_mean("second-order"), live.posterior_mean("second-order"))


def test_many_candidates_bring_the_switch_forward_to_cap_memory():
    c, _ = _campaign(settings=dataclasses.replace(SMALL, exact_max_n=10_000, exact_memory_gb=0.001))
    # 0.001 GiB / (8 B x 2.2 x 201 candidates x 2 hypotheses) = 151 rows
    assert c.exact_limit == 151
    assert _campaign(settings=dataclasses.replace(SMALL, exact_max_n=100))[0].exact_limit == 100
