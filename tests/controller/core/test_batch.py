"""Batches (``Campaign.ask(q=...)``) and named values (``{"x0": 0.31}``) in the pure campaign."""

import math

import numpy as np
import pytest
import torch

from abduce.controller.core.batch import SEPARATION, Believed, believe, length_scales, near, twin
from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest, point_of
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget, StoppingRule
from abduce.controller.errors import CampaignStateError, ConfigError, MeasurementRejected
from abduce.hypotheses.posterior import CandidatePosterior
from tests.controller.core.test_campaign import FAST, HYPS, make, snapshot


def reading(sim, x) -> float:
    return float(sim.measure(np.array([x]))[0])


def past_design(c, sim):
    """Tell the initial design (one request of n_init points)."""
    r = c.ask(q=FAST.n_init)
    for i, x in enumerate(r.points):
        c.tell(Measurement(r.request_id, x, reading(sim, x), index=i))
    return c, sim


def test_a_design_request_holds_the_next_q_design_points_of_the_one_point_campaign():
    one, sim = make(budget=8)
    batch, _ = make(budget=8)
    firsts = []
    for _ in range(3):
        r = one.ask()
        firsts.append(r.x)
        one.tell(Measurement(r.request_id, r.x, reading(sim, r.x)))
    r = batch.ask(q=3)
    assert r.points == tuple(firsts) and r.x == firsts[0] and r.q == 3 and r.reason == "initial-design"
    assert batch.ask(q=3) is r  # asked again before it is told: the same request


def test_ask_q4_gives_four_distinct_candidates_and_the_first_is_the_one_point_choice():
    c, sim = past_design(*make(budget=20))
    twin_campaign, _ = past_design(*make(budget=20))
    r = c.ask(q=4)
    assert r.q == 4 and len(set(r.points)) == 4
    assert all(c.space.index_of(x) is not None for x in r.points)  # each a candidate of the space
    assert not {c.space.index_of(x) for x in r.points} & set(c._measured_idx)
    assert r.x == twin_campaign.ask(q=1).x  # the first point is what q = 1 asks for


def test_tell_all_four_in_any_order_then_the_next_ask_works():
    c, sim = past_design(*make(budget=20))
    r = c.ask(q=4)
    for i in (2, 0, 3):
        c.tell(Measurement(r.request_id, r.points[i], reading(sim, r.points[i]), index=i))
        assert c.ask() is r and c.pending is r  # still waiting for a point
    assert c.waiting == (1,)
    before_refits = [rec.refit for rec in c.history[-3:]]
    last = c.tell(Measurement(r.request_id, r.points[1], reading(sim, r.points[1]), index=1))
    assert before_refits == [(), (), ()] and last.refit  # refits wait for the batch to be in
    assert [rec.index for rec in c.history[-4:]] == [2, 0, 3, 1]
    assert [rec.step for rec in c.history] == list(range(c.n)) and c.n == FAST.n_init + 4
    assert c.pending is None and c.waiting == ()
    nxt = c.ask(q=4)
    assert nxt.request_id != r.request_id and nxt.step == c.n and nxt.q == 4


def test_a_point_of_a_batch_told_twice_or_out_of_range_is_rejected_and_changes_nothing():
    c, sim = past_design(*make(budget=20))
    r = c.ask(q=3)
    c.tell(Measurement(r.request_id, r.points[0], reading(sim, r.points[0]), index=0))
    before = snapshot(c)
    for index, reason in [(0, "duplicate"), (3, "unknown-request"), (-1, "unknown-request")]:
        with pytest.raises(MeasurementRejected) as info:
            c.tell(Measurement(r.request_id, r.points[0], 0.1, index=index))
        assert info.value.reason == reason
        assert snapshot(c) == before


def test_a_skipped_point_of_a_batch_is_never_asked_again_and_the_rest_is_told():
    c, sim = past_design(*make(budget=30))
    r = c.ask(q=3)
    c.skip(r.request_id, index=1)
    for i in (0, 2):
        c.tell(Measurement(r.request_id, r.points[i], reading(sim, r.points[i]), index=i))
    nxt = c.ask(q=3)
    assert nxt.request_id != r.request_id
    assert c.space.index_of(r.points[1]) in c._failed_idx
    assert r.points[1] not in nxt.points


def test_a_batch_is_cut_to_the_budget():
    c, sim = make(budget=6)
    sizes = []
    while not c.done:
        r = c.ask(q=4)
        sizes.append(r.q)
        for i, x in enumerate(r.points):
            c.tell(Measurement(r.request_id, x, reading(sim, x), index=i))
    assert sizes == [4, 2] and c.n == 6  # design of 4, then the 2 the budget leaves


def test_the_batch_size_can_be_the_campaigns_setting():
    import dataclasses

    c, _ = make(settings=dataclasses.replace(FAST, q=3))
    assert c.ask().q == 3
    with pytest.raises(ConfigError):
        dataclasses.replace(FAST, q=0)
    with pytest.raises(ConfigError):
        make()[0].ask(q=0)


class StopAt(StoppingRule):
    """Fires at ``n`` measurements without saying so in advance (no ``remaining``): a batch is not cut."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, view) -> bool:
        return view.n >= self.n

    def describe(self) -> str:
        return f"n >= {self.n}"


def test_a_rule_that_fires_mid_batch_stops_asking_and_keeps_the_rest_of_the_batch():
    base, sim = make()
    c = Campaign(base.space, HYPS, "discriminate", None, StopAt(FAST.n_init + 2), seed=0, settings=FAST)
    past_design(c, sim)
    r = c.ask(q=4)
    for i, x in enumerate(r.points):
        rec = c.tell(Measurement(r.request_id, x, reading(sim, x), index=i))
        assert rec.stopped == (i >= 1)
    assert c.done and c.n == FAST.n_init + 4 and c.pending is None
    with pytest.raises(CampaignStateError):
        c.ask()


def test_the_kriging_believer_equals_a_posterior_built_on_the_fantasy():
    """A twin told its mean at a candidate has the posterior a fresh factorisation gives on the data plus
    that reading (an independent computation), and the original is untouched."""
    c, sim = past_design(*make(budget=20))
    slot = c.belief.slots[0]
    post = slot.posterior
    mean0, var0 = post.mean_rel.clone(), post.var_rel.clone()
    j = int(torch.argmax(post.var_rel))
    fantasy = twin(post)
    fantasy.add(c._points[j], float(fantasy.mean_rel[j]))
    u, y = c._data_tensors()
    model = slot.fit.model(u, y)
    v = torch.cat([y / slot.fit.frame.s, fantasy.mean_rel[j : j + 1]])
    fresh = CandidatePosterior(model, torch.cat([u, c._points[j : j + 1]]), v, c._points)
    assert torch.allclose(fantasy.mean_rel, fresh.mean_rel, atol=1e-8)
    assert torch.allclose(fantasy.var_rel, fresh.var_rel, atol=1e-8)
    assert torch.allclose(fantasy.mean_rel, mean0, atol=1e-8)  # a reading at the mean keeps the mean
    assert float(fantasy.var_rel[j]) < float(var0[j])
    assert torch.equal(post.mean_rel, mean0) and torch.equal(post.var_rel, var0)  # the original as it was


def test_the_second_point_is_the_acquisitions_best_after_the_fantasy():
    c, sim = past_design(*make(budget=20, policy="epsilon-greedy"))
    r = c.ask(q=2)
    driver = c.hypothesis_names.index(r.hypothesis)
    first = c.space.index_of(r.x)
    believed = believe(Believed(), c.belief, c.belief.usable(), c._points[first], first, *c._data_tensors())
    scores, _ = c._scores(driver, believed)
    assert c.space.index_of(r.points[1]) == int(torch.argmax(scores))


def test_a_box_gives_q_points_inside_it():
    c, sim = make(budget=12, space=Space.box([(0.0, 1.0)]))
    past_design(c, sim)
    r = c.ask(q=3)
    assert r.q == 3 and all(c.space.contains(x) for x in r.points)
    for i, x in enumerate(r.points):
        c.tell(Measurement(r.request_id, x, reading(sim, x), index=i))
    assert c.n == FAST.n_init + 3


# ------------------------------------------------------------------ named values


def test_requests_and_measurements_use_the_spaces_axis_names():
    sim_c, sim = make()
    space = Space.finite(sim.candidates(), names=["composition"])
    c = Campaign(space, HYPS, "discriminate", None, Budget(8), seed=0, settings=FAST)
    r = c.ask(q=2)
    assert r.values == [{"composition": r.points[0][0]}, {"composition": r.points[1][0]}]
    assert r.named(1) == {"composition": r.points[1][0]}
    rec = c.tell(Measurement(r.request_id, r.named(0), reading(sim, r.x), index=0))
    assert rec.x == r.x


@pytest.mark.parametrize(
    ("x", "words"),
    [
        ({"compositon": 0.5}, ["'compositon'", "'composition'"]),  # misspelt: both named
        ({}, ["no value for axis 'composition'"]),
        ({"composition": 0.5, "T": 280.0}, ["unknown axis 'T'"]),
    ],
)
def test_a_misnamed_point_is_rejected_naming_the_axis_and_changes_nothing(x, words):
    _, sim = make()
    space = Space.finite(sim.candidates(), names=["composition"])
    c = Campaign(space, HYPS, "discriminate", None, Budget(8), seed=0, settings=FAST)
    r = c.ask()
    before = snapshot(c)
    with pytest.raises(MeasurementRejected) as info:
        c.tell(Measurement(r.request_id, x, 0.1))
    assert info.value.reason == "wrong-axes"
    assert all(w in str(info.value) for w in words), str(info.value)
    assert snapshot(c) == before


def test_point_of_orders_a_mapping_by_axis_and_passes_tuples_through():
    assert point_of({"T": 280.0, "x": 0.31}, ("x", "T")) == (0.31, 280.0)
    assert point_of((0.31, 280.0), ("x", "T")) == (0.31, 280.0)
    with pytest.raises(ConfigError, match="'y'"):
        point_of({"x": 0.31, "y": 1.0}, ("x", "T"))


def test_a_request_keeps_x_as_its_first_point():
    r = MeasureRequest("id", 0, (0.5,), None, "initial-design")
    assert r.points == ((0.5,),) and r.q == 1 and r.named() == {"x0": 0.5}
    with pytest.raises(ValueError):
        MeasureRequest("id", 0, (0.5,), None, "initial-design", points=((0.4,), (0.5,)))
    assert not math.isnan(r.x[0])


def test_a_box_batch_after_readings_with_their_sd_gives_q_points_inside_it():
    c, sim = make(budget=12, space=Space.box([(0.0, 1.0)]))
    r = c.ask(q=FAST.n_init)
    for i, x in enumerate(r.points):
        c.tell(Measurement(r.request_id, x, reading(sim, x), y_sd=0.01, index=i))
    r = c.ask(q=3)
    assert r.q == 3 and all(c.space.contains(x) for x in r.points)


# ------------------------------------------------------------------ the batch's separation


def test_near_is_the_ball_of_separation_shortest_length_scales_by_hand():
    """``near`` against a hand computation: the candidates within SEPARATION x (the shortest length scale
    among the usable laws) of the point, the point itself included."""
    c, sim = past_design(*make(budget=20))
    usable = c.belief.usable()
    scales = [float(c.belief.slots[i].posterior._kernel.base_kernel.lengthscale.detach()) for i in usable]
    assert float(length_scales(c.belief, usable)) == min(scales)
    radius = SEPARATION * min(scales)
    j = len(c._points) // 2
    unit = c._points[:, 0].tolist()
    by_hand = [k for k, x in enumerate(unit) if abs(x - unit[j]) <= radius]
    assert near(c.belief, usable, c._points[j]) == by_hand and j in by_hand and len(by_hand) > 1
    assert near(c.belief, usable, c._points[j], separation=0.0) == [j]


def test_the_points_of_a_batch_are_at_least_the_separation_apart_and_the_excluded_are_taken():
    c, sim = past_design(*make(budget=20))
    usable = c.belief.usable()
    scale = float(length_scales(c.belief, usable))
    r = c.ask(q=4)
    u = [float(c.space.to_unit(c._tensor(x))[0]) for x in r.points]
    assert r.q == 4
    assert min(abs(a - b) for k, a in enumerate(u) for b in u[:k]) > SEPARATION * scale
    first = c.space.index_of(r.x)
    believed = believe(Believed(), c.belief, usable, c._points[first], first, *c._data_tensors())
    assert believed.taken[0] == first and set(believed.taken) == set(near(c.belief, usable, c._points[first]))
    scores, _ = c._scores(None, believed)
    assert torch.isinf(scores[believed.taken]).all()
