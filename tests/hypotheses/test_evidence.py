import math

import pytest
import torch

from abduce.hypotheses.declaration import Hypothesis, Normal, Parameter
from abduce.hypotheses.evidence import EvidenceTracker, log_evidence, probabilities
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.posterior import CandidatePosterior

LO, SPAN = (0.0,), (1.0,)


def _brute_force_log_z(model, u, y, name, bounds, points=20001):
    """Quadrature over the single free parameter, kernel fixed: the exact integral."""
    hyp, frame = model.hypothesis, model.frame
    v = y / frame.s
    k = model.covar_module(u).to_dense() + model.likelihood.noise * torch.eye(len(u), dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(len(u), dtype=torch.float64), covariance_matrix=k.detach())
    grid = torch.linspace(*bounds, points, dtype=torch.float64)
    from abduce.hypotheses.model import relative_mean

    means = relative_mean(hyp, frame, u, {name: grid.unsqueeze(-1)})
    log_l = mvn.log_prob(v.unsqueeze(0) - means)
    prior = hyp.parameters[0].prior.log_prob(grid, *bounds)
    integrand = (log_l + prior).exp()
    return math.log(torch.trapezoid(integrand, grid).item()) - len(u) * math.log(frame.s)


@pytest.mark.parametrize("prior", [None, Normal(0.5, 0.3)])
def test_importance_sampling_matches_quadrature_for_one_parameter(transition_data, prior):
    u, y = transition_data
    kwargs = {"prior": prior} if prior else {}
    hyp = Hypothesis(
        "level", lambda x, p: p["c"] + 0 * x[..., 0], (Parameter("c", bounds=(-1.5, 1.5), unit="y", **kwargs),)
    )
    fit = fit_hypothesis(FitProblem(hyp, u, y, LO, SPAN, seed=0), FitSettings())
    model = fit.model(u, y)
    estimate = log_evidence(model, u, y, samples=512, seed=0).evidence()
    exact = _brute_force_log_z(model, u, y, "c", (-1.5, 1.5))
    assert estimate.log_z == pytest.approx(exact, abs=0.05)
    assert estimate.ess > 100


def test_evidence_prefers_the_true_law_and_probabilities_sum_to_one(transition_data):
    u, y = transition_data
    log_z = []
    for name in ("second-order", "first-order", "linear"):
        model = fit_hypothesis(FitProblem(BUILTIN[name], u, y, LO, SPAN, seed=0), FitSettings()).model(u, y)
        log_z.append(log_evidence(model, u, y).evidence().log_z)
    p = probabilities(log_z)
    assert sum(p) == pytest.approx(1.0)
    assert p[0] > 0.9


def test_tracker_follows_new_points_exactly(transition_data):
    u, y = transition_data
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u[:30], y[:30], LO, SPAN, seed=0), FitSettings())
    s = fit.frame.s
    model = fit.model(u[:30], y[:30])
    tracker = log_evidence(model, u[:30], y[:30])
    post = CandidatePosterior(model, u[:30], y[:30] / s, u)
    for i in range(30, 40):
        tracker.add(post.add(u[i], float(y[i]) / s), u[i], float(y[i]) / s)
    full = fit.model(u, y)
    k = full.covar_module(u).to_dense() + full.likelihood.noise * torch.eye(40, dtype=torch.float64)
    scratch = EvidenceTracker(full, u, y / s, torch.linalg.cholesky(k.detach()), tracker.phi, tracker.log_pq)
    assert tracker.evidence().log_z == pytest.approx(scratch.evidence().log_z, abs=1e-9)


def test_importance_sampling_matches_plain_prior_monte_carlo_for_three_parameters(transition_data):
    """The annealed IS estimate against 2^19 plain prior draws (unbiased, slow) for a 3-parameter law."""
    u, y = transition_data
    u, y = u[::2], y[::2]
    fit = fit_hypothesis(FitProblem(BUILTIN["sigmoid"], u, y, LO, SPAN, seed=0), FitSettings())
    model = fit.model(u, y)
    estimate = log_evidence(model, u, y, samples=512, seed=0).evidence()
    from abduce.hypotheses.fitting import prior_draws, whitened_residuals

    logliks = []
    for chunk in range(8):
        draws = prior_draws(BUILTIN["sigmoid"], 1 << 16, seed=100 + chunk)
        w, logdet = whitened_residuals(model, u, y / fit.frame.s, draws)
        logliks.append(-0.5 * (w**2).sum(0) - 0.5 * logdet - 0.5 * len(u) * math.log(2 * math.pi))
    ll = torch.cat(logliks)
    brute = float(torch.logsumexp(ll, 0)) - math.log(len(ll)) - len(u) * math.log(fit.frame.s)
    assert estimate.log_z == pytest.approx(brute, abs=0.1)


def test_the_band_integrated_over_the_parameters_equals_a_direct_mixture(transition_data):
    """The tracker's band against the mixture computed from scratch: for each importance draw, the GP
    posterior mean by a direct solve with K (no cached factors), weighted by the draw's likelihood times
    prior over proposal; the variance is the kernel's latent variance plus the spread of the means."""
    from abduce.hypotheses.model import relative_mean

    u, y = transition_data
    u, y = u[::2], y[::2]
    hyp = BUILTIN["second-order"]
    fit = fit_hypothesis(FitProblem(hyp, u, y, LO, SPAN, seed=0), FitSettings(screen=64))
    model = fit.model(u, y)
    points = torch.linspace(0, 1, 57, dtype=torch.float64).unsqueeze(-1)
    post = CandidatePosterior(model, u, y / model.frame.s, points)
    tracker = log_evidence(model, u, y, samples=256, seed=0, chol=post.chol)
    mean, var = tracker.band(post, mass=1.0)

    v = y / model.frame.s
    k = (model.covar_module(u).to_dense() + model.likelihood.noise * torch.eye(len(u), dtype=torch.float64)).detach()
    kc = model.covar_module(points, u).to_dense().detach()  # N x n
    inside = tracker.inside
    draws = {p.name: tracker.phi[inside, i : i + 1] for i, p in enumerate(hyp.free)}
    m_x = relative_mean(hyp, model.frame, u, draws)  # S x n
    m_c = relative_mean(hyp, model.frame, points, draws)  # S x N
    resid = v.unsqueeze(0) - m_x
    loglik = torch.distributions.MultivariateNormal(
        torch.zeros(len(u), dtype=torch.float64), covariance_matrix=k
    ).log_prob(resid)
    w = torch.softmax(loglik + tracker.log_pq[inside], 0)
    mu = m_c + (kc @ torch.linalg.solve(k, resid.T)).T  # S x N
    expected_mean = (w.unsqueeze(-1) * mu).sum(0)
    latent = model.covar_module(points, diag=True).to_dense().detach() - (kc * torch.linalg.solve(k, kc.T).T).sum(-1)
    expected_var = latent + (w.unsqueeze(-1) * (mu - expected_mean) ** 2).sum(0)
    s = model.frame.s
    torch.testing.assert_close(mean, expected_mean * s, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(var, expected_var * s**2, rtol=1e-6, atol=1e-10)
    assert (var >= post.var - 1e-12).all()  # never narrower than the plug-in band's latent variance


def test_the_standard_error_of_log_z_is_that_of_the_mean_importance_weight(transition_data):
    """se(log Z) = se(Z) / Z with Z the mean of the unnormalised weights and se(Z) its sample sd / sqrt(S)."""
    u, y = transition_data
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0), FitSettings(screen=64))
    tracker = log_evidence(fit.model(u, y), u, y, samples=256, seed=0)
    ev = tracker.evidence()
    log_w = torch.full_like(tracker.log_pq, -math.inf)
    log_w[tracker.inside] = tracker._loglik() + tracker.log_pq[tracker.inside]
    omega = (log_w - log_w.max()).exp()  # weights up to a constant factor, which cancels
    expected = float(omega.std(unbiased=True) / math.sqrt(len(omega)) / omega.mean())
    assert ev.log_z_se == pytest.approx(expected, rel=1e-9)
    assert ev.log_z_se > 0


def test_a_jump_between_two_close_measurements_is_integrated_not_missed():
    """A first-order jump whose x_c the data pin to a gap of 0.002 (500 times narrower than its bounds), as
    `discriminate` measures it: the importance sampler must find that sliver. Against a 2-D quadrature over
    (A, x_c), kernel fixed. (Its first proposal had one width, 0.1 of the bounds: 3 of 512 draws fell in the
    gap, the effective sample size was ~3 and log Z came out ~10 nats low, so a first-order truth lost to a
    second-order law at P = 1.0 in a benchmark campaign.)"""
    from abduce.hypotheses.model import relative_mean
    from abduce.simulators.transition1d import Transition1D

    x = torch.cat([torch.linspace(0, 0.4, 8), torch.linspace(0.448, 0.488, 20), torch.linspace(0.55, 1, 8)])
    sim = Transition1D(law="first-order", x_c=0.4541, amplitude=0.7, noise_fraction=0.1, seed=5)
    u = x.to(torch.float64).unsqueeze(-1)
    y = torch.as_tensor(sim.measure(u.numpy()), dtype=torch.float64)
    hyp = BUILTIN["first-order"]
    model = fit_hypothesis(FitProblem(hyp, u, y, LO, SPAN, seed=0), FitSettings()).model(u, y)
    estimate = log_evidence(model, u, y, samples=512, seed=0).evidence()

    frame = model.frame
    v = y / frame.s
    with torch.no_grad():
        k = model.covar_module(u).to_dense() + model.likelihood.noise * torch.eye(len(u), dtype=torch.float64)
        chol = torch.linalg.cholesky(k)
        a_grid = torch.linspace(0.0, 1.5, 301, dtype=torch.float64)
        xc_grid = torch.linspace(0.40, 0.52, 4801, dtype=torch.float64)  # the likelihood outside is < e^-40 of its peak
        a_all, xc_all = torch.cartesian_prod(a_grid, xc_grid).unbind(-1)
        log_l = []
        for a, xc in zip(a_all.split(100_000), xc_all.split(100_000)):
            means = relative_mean(hyp, frame, u, {"A": a.unsqueeze(-1), "x_c": xc.unsqueeze(-1)})
            w = torch.linalg.solve_triangular(chol, (v - means).T, upper=False)
            log_l.append(-0.5 * (w**2).sum(0) - chol.diagonal().log().sum() - 0.5 * len(u) * math.log(2 * math.pi))
        log_l = torch.cat(log_l).reshape(len(a_grid), len(xc_grid))
        cell = float(a_grid[1] - a_grid[0]) * float(xc_grid[1] - xc_grid[0])
        exact = (
            float(torch.logsumexp(log_l.reshape(-1), 0)) + math.log(cell) - math.log(1.5) - len(u) * math.log(frame.s)
        )
    assert estimate.ess > 50
    assert estimate.log_z == pytest.approx(exact, abs=0.15)


def test_the_posterior_of_a_jump_fills_the_gap_between_the_measurements_either_side():
    """With the jump rounded over 2e-4, the law was still 5% off its plateau 3 deltas from x_c, so the two
    measurements either side of the jump ruled out x_c from 6e-4 of the gap between them; on a gap of 1.2e-3 the
    posterior held its middle half, and a truth near an edge of the gap came out 2-5 sds away (18% of the
    benchmark's first-order campaigns had x_c beyond 2 sd). The posterior must be the gap's uniform: mean at its
    centre, sd ``gap / sqrt(12)``, the truth within 2 sd wherever in the gap it lies."""
    from abduce.simulators.transition1d import Transition1D

    lo, hi, truth = 0.4530, 0.4542, 0.45303
    x = torch.cat([torch.linspace(0.0, 0.44, 12), torch.tensor([0.449, lo, hi, 0.458]), torch.linspace(0.47, 1.0, 12)])
    sim = Transition1D(law="first-order", x_c=truth, amplitude=0.7, noise_fraction=0.05, seed=3)
    u = x.to(torch.float64).unsqueeze(-1)
    y = torch.as_tensor(sim.measure(u.numpy()), dtype=torch.float64)
    model = fit_hypothesis(FitProblem(BUILTIN["first-order"], u, y, LO, SPAN, seed=0), FitSettings()).model(u, y)
    estimate = log_evidence(model, u, y, samples=512, seed=0).evidence()
    gap = hi - lo
    assert estimate.mean["x_c"] == pytest.approx((lo + hi) / 2, abs=0.1 * gap)
    assert estimate.sd["x_c"] == pytest.approx(gap / math.sqrt(12), rel=0.25)
    assert abs(estimate.mean["x_c"] - truth) < 2 * estimate.sd["x_c"]
