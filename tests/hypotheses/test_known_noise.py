"""Readings' known standard deviations (``y_sd``) as known noise on top of the fitted noise.

Oracles: the GP posterior written out by hand, ``m(C) + K(C,X) (K + s2 I + W)^-1 (v - m(X))``; GPyTorch's
own marginal likelihood for the batched objective; and, with no ``y_sd``, the very same bits as before."""

import math

import pytest
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from abduce.hypotheses.batched import fit_hypotheses_batched, negative_log_posteriors
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis, plan_fit
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.model import known_noise
from abduce.hypotheses.posterior import CandidatePosterior

LO, SPAN = (0.0,), (1.0,)
SETTINGS = FitSettings(screen=32, restarts=1, maxiter=40)


def sds(n: int) -> torch.Tensor:
    """Known sds for ``n`` points: large on every third point, unknown (NaN) on every fifth, small elsewhere."""
    out = torch.full((n,), 0.01, dtype=torch.float64)
    out[::3] = 0.3
    out[::5] = math.nan
    return out


def test_known_noise_is_relative_variance_and_none_when_nothing_is_known():
    y_sd = torch.tensor([0.2, math.nan, 0.0], dtype=torch.float64)
    assert torch.allclose(known_noise(y_sd, 2.0), torch.tensor([0.01, 0.0, 0.0], dtype=torch.float64), rtol=1e-15)
    assert known_noise(None, 2.0) is None
    assert known_noise(torch.full((3,), math.nan, dtype=torch.float64), 2.0) is None


def test_without_a_known_sd_a_fit_is_bit_identical(transition_data):
    u, y = transition_data
    problem = FitProblem(BUILTIN["sigmoid"], u, y, LO, SPAN, seed=3)
    plain = fit_hypothesis(problem, SETTINGS)
    unknown = fit_hypothesis(
        FitProblem(BUILTIN["sigmoid"], u, y, LO, SPAN, seed=3, y_sd=torch.full_like(y, math.nan)), SETTINGS
    )
    assert plain.log_posterior == unknown.log_posterior
    assert all(torch.equal(plain.state[k], unknown.state[k]) for k in plain.state)


def test_the_posterior_is_the_gp_formula_with_known_noise_and_rank_one_updates_agree(transition_data):
    u, y = transition_data
    y_sd = sds(len(y))
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0, y_sd=y_sd), SETTINGS)
    points = torch.linspace(0, 1, 23, dtype=torch.float64).unsqueeze(-1)
    model = fit.model(u, y, y_sd)
    post = CandidatePosterior(model, u, y / fit.frame.s, points)
    with torch.no_grad():  # the textbook formula, written out
        w = torch.where(torch.isnan(y_sd), 0.0, y_sd / fit.frame.s) ** 2
        cov = model.covar_module(u).to_dense() + float(model.likelihood.noise) * torch.eye(len(u)) + torch.diag(w)
        cross = model.covar_module(points, u).to_dense()
        resid = y / fit.frame.s - model.mean_module(u)
        mean = model.mean_module(points) + cross @ torch.linalg.solve(cov, resid)
        var = model.covar_module(points, diag=True).to_dense() - (cross * torch.linalg.solve(cov, cross.T).T).sum(-1)
    assert torch.allclose(post.mean_rel, mean, atol=1e-9)
    assert torch.allclose(post.var_rel, var.clamp_min(0), atol=1e-9)
    # the same posterior built on n - 3 points and told the last three one by one, with their known noise
    k = len(y) - 3
    part = CandidatePosterior(fit.model(u[:k], y[:k], y_sd[:k]), u[:k], y[:k] / fit.frame.s, points)
    for j in range(k, len(y)):
        part.add(u[j], float(y[j] / fit.frame.s), float(w[j]))
    assert torch.allclose(part.mean_rel, post.mean_rel, atol=1e-9)
    assert torch.allclose(part.var_rel, post.var_rel, atol=1e-9)


def test_the_batched_objective_is_gpytorchs_with_known_noise(transition_data):
    u, y = transition_data
    y_sd = sds(len(y))
    plans = [
        plan_fit(FitProblem(BUILTIN[n], u, y, LO, SPAN, seed=1, y_sd=y_sd), FitSettings(restarts=2))
        for n in ("second-order", "linear")
    ]
    models = [p.start_model(state) for p in plans for state in p.starts]
    ours = negative_log_posteriors(models, u, plans[0].v)
    for model, value in zip(models, ours):
        with torch.no_grad():
            marginal = model.likelihood(model(u)).covariance_matrix
            direct = model.covar_module(u).to_dense() + torch.diag(model.likelihood.noise.reshape(()) + plans[0].known)
            assert torch.allclose(marginal, direct, atol=1e-12)  # what GPyTorch's likelihood adds: s2 + w
            gpytorch = -float(ExactMarginalLogLikelihood(model.likelihood, model)(model(u), plans[0].v))
        assert float(value) == pytest.approx(gpytorch, rel=1e-9, abs=1e-9)
    batched = fit_hypotheses_batched(plans, FitSettings(restarts=2))
    alone = [
        fit_hypothesis(FitProblem(BUILTIN[n], u, y, LO, SPAN, seed=1, y_sd=y_sd), FitSettings(restarts=2))
        for n in ("second-order", "linear")
    ]
    for a, b in zip(batched, alone):
        assert a.log_posterior == pytest.approx(b.log_posterior, abs=1e-4)


def test_readings_with_a_large_known_sd_weigh_less():
    """Precise readings on y = x, and on every other point a reading 0.5 too high told with sd 1: the fit
    follows the precise readings; told without its sd, the same data pull the fit up."""
    n = 24
    x = torch.linspace(0, 1, n, dtype=torch.float64).unsqueeze(-1)
    y = x[:, 0] + 1.0
    y[1::2] += 0.5
    y_sd = torch.full((n,), math.nan, dtype=torch.float64)
    y_sd[1::2] = 1.0
    y_sd[::2] = 0.01
    points = torch.linspace(0, 1, 11, dtype=torch.float64).unsqueeze(-1)
    truth = points[:, 0] + 1.0

    def error(sd):
        fit = fit_hypothesis(FitProblem(BUILTIN["linear"], x, y, LO, SPAN, seed=0, y_sd=sd), SETTINGS)
        post = CandidatePosterior(fit.model(x, y, sd), x, y / fit.frame.s, points)
        return float((post.mean - truth).abs().max())

    told, untold = error(y_sd), error(None)
    assert told < 0.05 < 0.15 < untold  # untold: about half of the 0.5 offset
