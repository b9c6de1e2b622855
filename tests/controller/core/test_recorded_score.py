"""The campaign records the value its acquisition gave each point it chose (``StepRecord.score``), and the
journal keeps it (``DecisionBody.score``, left out where there is none, as journals were before it)."""

import dataclasses
import math

import numpy as np
import pytest

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.controller.journal.events import DecisionBody, decision_body
from tests.controller.core.test_batch import past_design, reading
from tests.controller.core.test_campaign import FAST, HYPS, make


@pytest.mark.parametrize("policy", ["discriminate", "epsilon-greedy"])
def test_each_step_records_the_maximum_its_acquisition_chose_the_point_by(policy):
    c, sim = make(policy=policy, budget=9)
    expected = []
    while not c.done:
        if c.n >= FAST.n_init:  # what the next ask scores, without asking: its maximum is the point it asks for
            scores, _ = c.acquisition_scores()
            expected.append(float(np.nanmax(scores)))
        else:
            expected.append(None)
        r = c.ask()
        c.tell(Measurement(r.request_id, r.x, reading(sim, r.x)))
    got = [record.score for record in c.history]
    assert got[: FAST.n_init] == [None] * FAST.n_init  # the initial design is chosen by no acquisition
    assert got[FAST.n_init :] == pytest.approx(expected[FAST.n_init :], rel=1e-12)
    assert all(math.isfinite(s) for s in got[FAST.n_init :])


def test_a_batch_records_each_points_own_score_its_first_as_one_point_would():
    one, sim = past_design(*make(budget=12))
    batch, _ = past_design(*make(budget=12))
    first = one.tell(Measurement((r := one.ask()).request_id, r.x, reading(sim, r.x)))
    request = batch.ask(q=3)
    records = [
        batch.tell(Measurement(request.request_id, x, reading(sim, x), index=i)) for i, x in enumerate(request.points)
    ]
    assert [rec.index for rec in records] == [0, 1, 2]
    assert records[0].score == first.score  # the first point is the one q = 1 asks for, scored the same
    assert all(rec.score is not None and math.isfinite(rec.score) for rec in records)
    assert len({rec.score for rec in records}) == 3  # each scored against the fantasised readings before it


def test_a_box_records_the_optimised_value_and_a_baseline_records_none():
    settings = dataclasses.replace(FAST, restarts=2, raw_samples=32)
    c = Campaign(Space.box([(0.0, 1.0)]), HYPS, "discriminate", None, Budget(6), seed=0, settings=settings)
    _, sim = make()
    while not c.done:
        r = c.ask()
        c.tell(Measurement(r.request_id, r.x, reading(sim, r.x)))
    scores = [rec.score for rec in c.history]
    assert scores[:4] == [None] * 4 and all(isinstance(s, float) and math.isfinite(s) for s in scores[4:])
    grid, sim = make(policy="random", budget=6)
    while not grid.done:
        r = grid.ask()
        grid.tell(Measurement(r.request_id, r.x, reading(sim, r.x)))
    assert [rec.score for rec in grid.history] == [None] * 6  # a baseline picks its points without an acquisition


def test_the_journal_keeps_the_score_and_leaves_it_out_where_there_is_none():
    c, sim = make(budget=5)
    while not c.done:
        r = c.ask()
        c.tell(Measurement(r.request_id, r.x, reading(sim, r.x)))
    design, chosen = c.history[0], c.history[-1]
    assert "score" not in decision_body(design, {}).model_dump(exclude_unset=True)  # as journals were before it
    body = decision_body(chosen, {})
    assert body.model_dump(exclude_unset=True)["score"] == chosen.score
    assert DecisionBody.model_validate(body.model_dump(exclude_unset=True)).step_record() == chosen
    older = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "score"}
    assert DecisionBody.model_validate(older).step_record().score is None  # an older journal's decision loads
