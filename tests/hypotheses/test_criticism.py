"""Posterior predictive checks (abduce.hypotheses.criticism): the leave-one-out residuals against a
brute-force oracle, the false-alarm rate on data a law generated, and the misfit they exist to catch."""

import math

import numpy as np
import pytest
import torch

from abduce.controller.core.verdict import explained
from abduce.hypotheses.criticism import criticise, difference_noise, loo_limit, noise_limit
from abduce.hypotheses.declaration import KernelPriors
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN, NONE_OF_THESE
from abduce.hypotheses.posterior import CandidatePosterior
from abduce.simulators.transition1d import Transition1D


def _posterior(name, u, y):
    h = NONE_OF_THESE if name == NONE_OF_THESE.name else BUILTIN[name]
    fit = fit_hypothesis(FitProblem(h, u, y, (0.0,), (1.0,), seed=0), FitSettings())
    cand = torch.linspace(0, 1, 51, dtype=torch.float64).unsqueeze(-1)
    return fit, CandidatePosterior(fit.model(u, y), u, y / fit.frame.s, cand)


def test_loo_residuals_equal_predicting_each_point_from_the_others(transition_data):
    """The closed form against n conditionings with one point left out (hyperparameters fixed)."""
    u, y = transition_data
    u, y = u[:20], y[:20]
    fit, post = _posterior("second-order", u, y)
    z = post.loo_residuals()
    v = y / fit.frame.s
    model = fit.model(u, y)
    with torch.no_grad():
        m = model.mean_module(u)
        k = model.covar_module(u, u).to_dense() + post.noise_rel * torch.eye(len(u), dtype=u.dtype)
    expected = []
    for i in range(len(u)):
        keep = [j for j in range(len(u)) if j != i]
        kk, ki = k[keep][:, keep], k[keep, i]
        mu = m[i] + ki @ torch.linalg.solve(kk, v[keep] - m[keep])
        var = k[i, i] - ki @ torch.linalg.solve(kk, ki)
        expected.append(float((v[i] - mu) / var.sqrt()))
    torch.testing.assert_close(z, torch.tensor(expected, dtype=z.dtype), rtol=1e-6, atol=1e-8)


def test_the_limits_are_the_chi_square_and_f_tails():
    assert loo_limit(40) == pytest.approx(1.355, abs=0.005)  # sqrt(chi2.ppf(0.999, 40) / 40) = sqrt(73.40 / 40)
    assert loo_limit(400) < loo_limit(40)  # more points, a tighter reference
    assert noise_limit(30, 20) == pytest.approx(11.40, abs=0.01)  # f.ppf(0.999, 30, 20 / 2.7)


@pytest.mark.parametrize("truth", ["second-order", "sigmoid"])
def test_a_law_on_its_own_data_passes_its_checks(truth):
    """The false-alarm rate: 8 noisy data sets drawn from the law itself, fitted by it; at most one fails."""
    failed = []
    for seed in range(8):
        sim = Transition1D(law=truth, x_c=0.3 + 0.05 * seed, seed=seed, noise_fraction=0.05)
        x = np.random.default_rng(seed).uniform(0, 1, 30)[:, None]
        u, y = torch.tensor(x), torch.tensor(sim.measure(x))
        fit, post = _posterior(truth, u, y)
        c = criticise(post, KernelPriors(), reference=difference_noise(u, y))
        if c.misfit:
            failed.append((seed, c.reasons))
    assert len(failed) <= 1, failed


def test_a_law_that_cannot_explain_a_peak_fails_its_checks():
    """A Gaussian peak in the middle of the space, fitted by the straight line and the sigmoid: each
    calls the peak noise (or residual), far more than neighbouring readings differ by."""
    sim = Transition1D(law="peak", x_c=0.5, seed=3, noise_fraction=0.03)
    x = np.linspace(0, 1, 30)[:, None]
    u, y = torch.tensor(x), torch.tensor(sim.measure(x))
    for name in ("linear", "sigmoid"):
        fit, post = _posterior(name, u, y)
        c = criticise(post, KernelPriors(), reference=difference_noise(u, y))
        assert c.misfit, (name, c)
        assert c.reasons and all(isinstance(r, str) for r in c.reasons)


def test_the_difference_noise_recovers_the_noise_and_ignores_a_jump():
    """Readings of a jump plus N(0, 0.1^2) noise at 400 points: the estimate is within 15% of 0.01;
    each pair of mutual nearest neighbours counts once."""
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 1, 400))
    y = np.where(x < 0.5, 1.0, 0.0) + rng.normal(0, 0.1, 400)
    est = difference_noise(torch.tensor(x[:, None]), torch.tensor(y))
    assert est.variance == pytest.approx(0.01, rel=0.15)
    assert 200 <= est.pairs < 400
    assert difference_noise(torch.zeros(3, 1, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)) is None


def test_a_precise_instrument_is_not_a_misfit():
    """Noise far below the noise variance's lower bound: the law fits the bound, and the reference is
    floored there too (it was once flagged at 2.7x)."""
    sim = Transition1D(law="sigmoid", x_c=0.5, seed=2, noise_fraction=0.0005)
    x = np.random.default_rng(2).uniform(0, 1, 30)[:, None]
    u, y = torch.tensor(x), torch.tensor(sim.measure(x))
    _, post = _posterior("sigmoid", u, y)
    c = criticise(post, KernelPriors(), reference=difference_noise(u, y))
    assert not c.misfit, c.reasons


def test_the_noise_check_compares_physical_units_after_the_data_scale_grows():
    """A law fitted on the first points (an older, smaller data scale) and updated point by point:
    its noise is compared in physical units, so the same data pass the noise check whatever the frame
    (the stale fit's leave-one-out residuals may fail, rightly: its parameters predate the new points)."""
    sim = Transition1D(law="second-order", x_c=0.6, seed=4, noise_fraction=0.05)
    x = np.linspace(0.45, 1.0, 30)[:, None]  # the largest readings (small x) come last
    x = np.concatenate([x, np.linspace(0.0, 0.25, 8)[:, None]])
    u, y = torch.tensor(x), torch.tensor(sim.measure(x))
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u[:30], y[:30], (0.0,), (1.0,), seed=0), FitSettings())
    cand = torch.linspace(0, 1, 51, dtype=torch.float64).unsqueeze(-1)
    post = CandidatePosterior(fit.model(u[:30], y[:30]), u[:30], y[:30] / fit.frame.s, cand)
    for i in range(30, len(u)):
        post.add(u[i], float(y[i]) / fit.frame.s)
    assert float(y.abs().max()) > 1.3 * fit.frame.s  # the scale grew since the fit
    c = criticise(post, KernelPriors(), reference=difference_noise(u, y))
    ref = difference_noise(u, y).variance
    assert c.noise_ratio == pytest.approx(post.noise / ref)  # physical over physical, not the fit's frame over today's
    assert c.noise_ratio < 3.0 and not any("noise" in r for r in c.reasons), c


def test_none_of_these_is_not_checked_against_a_residual_prior(transition_data):
    u, y = transition_data
    _, post = _posterior("linear", u, y)
    assert criticise(post, KernelPriors(), flexible=True).residual_quantile is None
    q = criticise(post, KernelPriors()).residual_quantile
    assert 0.0 <= q <= 1.0 and math.isfinite(q)


def _h(name, p, misfit=None):
    return {"name": name, "probability": p, "check": None if misfit is None else {"misfit": misfit}}


def test_explained_is_the_most_probable_explanation_passing_its_checks():
    assert explained([], None) is None
    assert explained([_h("a", 0.7, False), _h("b", 0.2, True)], {"probability": 0.1}) is True
    assert explained([_h("a", 0.7, True), _h("b", 0.2, False)], {"probability": 0.1}) is False
    assert explained([_h("a", 0.3, False), _h("b", 0.2, False)], {"probability": 0.5}) is False
    assert explained([_h("a", 0.7), _h("b", 0.3)], None) is None  # not checked (past check_below)
