"""Inducing points: exact when Z = X, rank-1 steps equal a rebuild, and close to exact with m << n."""

import math

import pytest
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from abduce.hypotheses.evidence import log_evidence
from abduce.hypotheses.fitting import Fit, FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.posterior import CandidatePosterior
from abduce.hypotheses.sparse import SparseCandidatePosterior, TitsiasMarginalLogLikelihood, inducing_points
from abduce.simulators.transition1d import Transition1D

LO, SPAN = (0.0,), (1.0,)
CAND = torch.linspace(0, 1, 301, dtype=torch.float64).unsqueeze(-1)


def _data(n, seed=3):
    sim = Transition1D(seed=seed)
    x = torch.rand(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return x, torch.tensor(sim.measure(x.numpy()))


def test_farthest_point_inducing_points_are_deterministic_and_spread():
    u, _ = _data(500)
    z = inducing_points(u, 20)
    assert torch.equal(z, inducing_points(u, 20)) and len(z) == 20
    assert torch.equal(z[0], u[0])
    gaps = torch.diff(z[:, 0].sort().values)
    assert float(gaps.max()) < 0.12  # 20 points cover [0, 1] without a hole
    assert torch.equal(inducing_points(u[:10], 20), u[:10])  # n <= m: every point


def test_with_every_point_inducing_the_bound_posterior_and_evidence_are_exact(transition_data):
    u, y = transition_data
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0), FitSettings())
    model, s = fit.model(u, y), fit.frame.s
    v = y / s
    model.train()
    with torch.no_grad():
        exact = float(ExactMarginalLogLikelihood(model.likelihood, model)(model(u), v))
        bound = float(TitsiasMarginalLogLikelihood(model.likelihood, model, u)(None, v))
    assert bound == pytest.approx(exact, rel=1e-5)
    model.eval()
    dense = CandidatePosterior(model, u, v, CAND)
    sparse = SparseCandidatePosterior(model, u, v, CAND, z=u)
    torch.testing.assert_close(sparse.mean, dense.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.var, dense.var, rtol=1e-3, atol=1e-6)
    ref = torch.arange(0, 301, 7)
    torch.testing.assert_close(sparse.variance_reduction(ref), dense.variance_reduction(ref), rtol=1e-3, atol=1e-7)
    ev_dense = log_evidence(model, u, y, 256, seed=1, chol=dense.chol).evidence()
    ev_sparse = log_evidence(model, u, y, 256, seed=1, sparse=sparse).evidence()
    assert ev_sparse.log_z == pytest.approx(ev_dense.log_z, abs=1e-3)


def test_rank_one_steps_equal_a_rebuild_for_posterior_and_evidence():
    u, y = _data(160)
    z = inducing_points(u[:120], 24)
    fit = fit_hypothesis(
        FitProblem(BUILTIN["second-order"], u[:120], y[:120], LO, SPAN, seed=0, inducing=24), FitSettings()
    )
    assert fit.inducing == 24 and torch.equal(z, inducing_points(u[:120], 24))
    s = fit.frame.s
    model = fit.model(u[:120], y[:120])
    post = SparseCandidatePosterior(model, u[:120], y[:120] / s, CAND, z=z, chunk=70)
    tracker = log_evidence(model, u[:120], y[:120], 256, seed=2, sparse=post)
    for i in range(120, 160):
        row = post.add(u[i], float(y[i]) / s)
        tracker.add(row, u[i], float(y[i]) / s)
    full = fit.model(u, y)
    rebuilt = SparseCandidatePosterior(full, u, y / s, CAND, z=z)
    torch.testing.assert_close(post.mean, rebuilt.mean, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(post.var, rebuilt.var, rtol=1e-6, atol=1e-10)
    again = log_evidence(full, u, y, 256, seed=2, sparse=rebuilt)
    # same draws (the proposal is adapted on the first 120 points in both): same log likelihoods
    again_from_120 = type(tracker)(full, u, y / s, rebuilt, tracker.phi, tracker.log_pq)
    torch.testing.assert_close(tracker._loglik(), again_from_120._loglik(), rtol=1e-8, atol=1e-6)
    assert math.isfinite(again.evidence().log_z)


def test_sparse_fit_of_many_points_is_close_to_exact_and_to_the_truth():
    u, y = _data(600, seed=5)
    exact = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0), FitSettings())
    sparse = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0, inducing=64), FitSettings())
    e_post = CandidatePosterior(exact.model(u, y), u, y / exact.frame.s, CAND)
    s_post = SparseCandidatePosterior(sparse.model(u, y), u, y / sparse.frame.s, CAND, z=inducing_points(u, 64))
    truth = torch.tensor(Transition1D(seed=5).truth(CAND.numpy()))
    scale = float(truth.max() - truth.min())
    assert float((s_post.mean - truth).pow(2).mean().sqrt()) < 0.02 * scale
    assert float((s_post.mean - e_post.mean).abs().max()) < 0.02 * scale
    # and the fitted physics agrees
    xc_exact, xc_sparse = (float(f.model(u, y).physics.value("x_c").detach()) for f in (exact, sparse))
    assert xc_sparse == pytest.approx(xc_exact, abs=0.01)


def test_fit_json_round_trip_keeps_the_inducing_count():
    u, y = _data(60)
    fit = fit_hypothesis(FitProblem(BUILTIN["linear"], u, y, LO, SPAN, seed=0, inducing=16), FitSettings())
    back = Fit.from_json(fit.hypothesis, fit.frame, fit.to_json())
    assert back.inducing == 16
    assert Fit.from_json(fit.hypothesis, fit.frame, {**fit.to_json(), "inducing": 0}).inducing == 0
