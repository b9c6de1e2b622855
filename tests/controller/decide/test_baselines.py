"""Baseline policies: they pick valid, unmeasured points by their own rule, reproducibly."""

import numpy as np
import pytest
import torch

from abduce.controller.decide.policies import POLICIES, PlainGP, RandomSampling, SelectionContext, UniformGrid
from abduce.controller.rehearse.rehearsal import Rehearsal


def ctx(measured=(), step=0, u=None, y=None, n=65, seed=0, finite=True):
    points = torch.linspace(0, 1, n, dtype=torch.float64).unsqueeze(-1)
    u = u if u is not None else torch.zeros(0, 1, dtype=torch.float64)
    y = y if y is not None else torch.zeros(0, dtype=torch.float64)
    return SelectionContext(points, finite, tuple(measured), u, y, step, np.random.default_rng(seed))


def test_random_picks_unmeasured_candidates_reproducibly():
    measured = tuple(range(0, 65, 2))
    picks = [RandomSampling().select(ctx(measured, seed=s)) for s in range(50)]
    assert all(p not in measured and 0 <= p < 65 for p in picks)
    assert picks == [RandomSampling().select(ctx(measured, seed=s)) for s in range(50)]
    assert len(set(picks)) > 10  # spread, not one point


def test_grid_refines_dyadically_skipping_measured_points():
    points = [UniformGrid().select(ctx(step=s)) for s in range(3)]
    assert points == [32, 48, 16]  # x = 1/2, 3/4, 1/4 on a 65-point grid
    assert UniformGrid().select(ctx(measured=(32,), step=0)) in (31, 33)  # nearest unmeasured


def test_plain_gp_measures_where_its_variance_is_largest():
    u = torch.tensor([[0.0], [0.1], [0.2], [0.3]], dtype=torch.float64)
    y = torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)
    pick = PlainGP().select(ctx(measured=(0, 6, 13, 19), u=u, y=y))
    assert pick == 64  # the far end, farthest from every measurement


@pytest.mark.parametrize("policy", ["random", "grid", "plain-gp"])
def test_a_campaign_runs_with_each_baseline_and_still_scores_every_hypothesis(policy):
    c = Rehearsal(
        "simulated:transition-1d", ("second-order", "linear"), {"grid": 101}, policy=policy, budget=8, n_init=4
    ).run()
    assert c.n == 8 and set(c.probabilities()) == {"second-order", "linear"}
    assert len(set(c.data[0])) == 8  # never the same point twice
    assert [r.reason for r in c.history[4:]] == [policy] * 4
    assert policy in POLICIES
