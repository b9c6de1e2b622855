"""The hyperparameters' Laplace factor (abduce.hypotheses.occam): the Matern derivatives and the closed-form
gradient and Hessian against autograd, the factor against a brute-force integral, and the misfit it charges."""

import math

import numpy as np
import pytest
import torch
from gpytorch.kernels import MaternKernel

from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN, NONE_OF_THESE
from abduce.hypotheses.occam import log_occam, loglik_derivatives, matern, matern_correlation
from abduce.simulators.transition1d import Transition1D


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5])
def test_matern_equals_gpytorch_and_its_derivatives_equal_autograd(nu):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 2, generator=g, dtype=torch.float64)
    kernel = MaternKernel(nu=nu, ard_num_dims=2).to(torch.float64)
    kernel.lengthscale = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    with torch.no_grad():
        expected = kernel(x).to_dense()
    s = (((x.unsqueeze(1) - x.unsqueeze(0)) / torch.tensor([0.3, 0.7], dtype=torch.float64)) ** 2).sum(-1)
    k, _, _ = matern(s, nu)
    assert torch.allclose(k, expected, atol=1e-12)
    off = s[~torch.eye(12, dtype=torch.bool)].clone().requires_grad_(True)
    value, d1, d2 = matern(off, nu)
    (g1,) = torch.autograd.grad(value.sum(), off, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), off)
    assert torch.allclose(d1, g1, rtol=1e-9, atol=1e-12)
    assert torch.allclose(d2, g2, rtol=1e-7, atol=1e-10)


def _reference_loglik(z, diff2, resid, nu):
    d = diff2.shape[-1]
    s = (diff2 * torch.exp(-2.0 * z[1 : 1 + d])).sum(-1)
    r = s.clamp_min(1e-300).sqrt()
    a = math.sqrt(2 * nu) * r
    k = {0.5: torch.exp(-r), 1.5: (1 + a) * torch.exp(-a), 2.5: (1 + a + a * a / 3) * torch.exp(-a)}[nu]
    cov = torch.exp(z[0]) * k + torch.exp(z[-1]) * torch.eye(len(resid), dtype=resid.dtype)
    return torch.distributions.MultivariateNormal(torch.zeros_like(resid), covariance_matrix=cov).log_prob(resid)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5])
@pytest.mark.parametrize("d", [1, 2])
def test_closed_form_gradient_and_hessian_equal_autograd(nu, d):
    g = torch.Generator().manual_seed(d)
    u = torch.rand(15, d, generator=g, dtype=torch.float64)
    resid = torch.randn(15, generator=g, dtype=torch.float64) * 0.3
    diff2 = (u.unsqueeze(1) - u.unsqueeze(0)) ** 2
    z = torch.tensor(
        [math.log(0.05)] + [math.log(0.2 + 0.1 * j) for j in range(d)] + [math.log(0.01)], dtype=torch.float64
    )
    value, grad, hess = loglik_derivatives(z, diff2, resid, nu)
    zr = z.clone().requires_grad_(True)
    ref = _reference_loglik(zr, diff2, resid, nu)
    (ref_grad,) = torch.autograd.grad(ref, zr)
    ref_hess = torch.autograd.functional.hessian(lambda t: _reference_loglik(t, diff2, resid, nu), z)
    assert float(value) == pytest.approx(float(ref.detach()), abs=1e-9)
    assert torch.allclose(grad, ref_grad, rtol=1e-7, atol=1e-8)
    assert torch.allclose(hess, ref_hess, rtol=1e-6, atol=1e-7)


def test_matern_correlation_is_the_first_of_materns_three_and_refuses_other_smoothness():
    s = torch.linspace(0.0, 4.0, 9, dtype=torch.float64)
    for nu in (0.5, 1.5, 2.5):
        assert torch.equal(matern_correlation(s, nu), matern(s, nu)[0])
    with pytest.raises(ValueError, match="nu must be 0.5, 1.5 or 2.5, got 2.0"):
        matern_correlation(s, 2.0)


def test_a_kernel_matrix_singular_to_rounding_gets_gpytorchs_jitter_not_a_refusal():
    """Duplicated inputs and a noise of e^-60: K is singular in float64 (the bare Cholesky fails); with
    the jitter GPyTorch adds, the likelihood and its derivatives are finite."""
    u = torch.tensor([[0.2], [0.2], [0.5], [0.5], [0.8]], dtype=torch.float64)
    resid = torch.tensor([0.1, 0.1, -0.2, -0.2, 0.05], dtype=torch.float64)
    diff2 = (u.unsqueeze(1) - u.unsqueeze(0)) ** 2
    z = torch.tensor([math.log(0.05), math.log(0.3), -60.0], dtype=torch.float64)
    k = math.exp(float(z[0])) * matern(diff2.sum(-1) * math.exp(-2 * float(z[1])), 2.5)[0]
    assert int(torch.linalg.cholesky_ex(k + math.exp(-60.0) * torch.eye(5, dtype=torch.float64))[1]) != 0
    value, grad, hess = loglik_derivatives(z, diff2, resid, 2.5)
    assert math.isfinite(float(value)) and torch.isfinite(grad).all() and torch.isfinite(hess).all()


def _fit(name, x, y):
    h = NONE_OF_THESE if name == NONE_OF_THESE.name else BUILTIN[name]
    u, y = torch.tensor(x), torch.tensor(y)
    fit = fit_hypothesis(FitProblem(h, u, y, (0.0,), (1.0,), seed=0), FitSettings())
    return fit.model(u, y), u, y / fit.frame.s


@pytest.mark.parametrize("law,tolerance", [("second-order", 0.1), ("sloped-transition", 0.25)])
def test_the_factor_equals_a_brute_force_integral_over_the_hyperparameters(law, tolerance):
    """log of the integral of exp(l(psi) + log p(psi)) over a fine grid in the logs, minus l at the fit: the
    Laplace approximation within 0.1 nats on 40 points of the law itself, and within 0.25 where the law
    misfits (a transition on a slope: its residual pressed to its largest amplitude, where the posterior
    in the logs is cut by the bound)."""
    sim = Transition1D(law=law, x_c=0.6, beta=0.4, noise_fraction=0.05, background=0.8, seed=3)
    x = np.linspace(0, 1, 40)[:, None]
    model, u, v = _fit("second-order", x, sim.measure(x))
    factor = log_occam(model, u, v)
    kern, lik = model.covar_module, model.likelihood
    with torch.no_grad():
        resid = v - model.mean_module(u)
        z_fit = torch.log(
            torch.stack([kern.outputscale.reshape(()), kern.base_kernel.lengthscale.reshape(()), lik.noise.reshape(())])
        )
    priors = [kern.outputscale_prior, kern.base_kernel.lengthscale_prior, lik.noise_covar.noise_prior]
    constraints = [
        kern.raw_outputscale_constraint,
        kern.base_kernel.raw_lengthscale_constraint,
        lik.noise_covar.raw_noise_constraint,
    ]
    axes = []
    for i, (p, c) in enumerate(zip(priors, constraints)):
        lo = max(float(p.loc) - 6 * float(p.scale), math.log(float(c.lower_bound)))
        hi = min(float(p.loc) + 6 * float(p.scale), math.log(float(c.upper_bound)))
        if i == 2:  # the noise: pinned by the data (sd ~ (2 / n)^1/2 in its log), so a fine axis about its fit
            lo, hi = float(z_fit[2]) - 1.5, float(z_fit[2]) + 1.5
        axes.append(torch.linspace(lo, hi, 31, dtype=torch.float64))
    grid = torch.cartesian_prod(*axes)
    diff2 = (u.unsqueeze(1) - u.unsqueeze(0)) ** 2
    loc = torch.stack([p.loc.reshape(()) for p in priors]).to(grid)
    scale = torch.stack([p.scale.reshape(()) for p in priors]).to(grid)
    r = diff2[..., 0].sqrt()
    log_joint = []
    for block in grid.split(4096):  # the likelihood at every grid point, in batches
        a = math.sqrt(5.0) * r / torch.exp(block[:, 1, None, None])
        cov = torch.exp(block[:, 0, None, None]) * (1 + a + a * a / 3) * torch.exp(-a) + torch.exp(
            block[:, 2, None, None]
        ) * torch.eye(len(u), dtype=u.dtype)
        chol = torch.linalg.cholesky(cov)
        w = torch.linalg.solve_triangular(chol, resid.expand(len(block), -1).unsqueeze(-1), upper=False)
        ll = (
            -0.5 * (w**2).sum((-1, -2))
            - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
            - 0.5 * len(u) * math.log(2 * math.pi)
        )
        lp = (-0.5 * ((block - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_joint.append(ll + lp)
    cell = math.prod(float(a[1] - a[0]) for a in axes)
    brute = float(torch.logsumexp(torch.cat(log_joint), 0)) + math.log(cell)
    at_fit = float(_reference_loglik(z_fit, diff2, resid, 2.5))
    assert model.hypothesis.nu == 2.5
    assert factor == pytest.approx(brute - at_fit, abs=tolerance)


def test_a_law_that_needs_its_residual_pays_for_it():
    """Data of a transition on a rising background: second-order fits them only with its residual near its
    largest amplitude, and pays several nats more for its hyperparameters than on data it generated."""
    x = np.linspace(0, 1, 30)[:, None]
    clean = Transition1D(law="second-order", x_c=0.5, beta=0.3, noise_fraction=0.03, seed=4).measure(x)
    sloped = Transition1D(
        law="sloped-transition", x_c=0.5, beta=0.3, background=0.8, noise_fraction=0.03, seed=4
    ).measure(x)
    fits = log_occam(*_fit("second-order", x, clean))
    misfits = log_occam(*_fit("second-order", x, sloped))
    assert misfits < fits - 2.0
    assert -8.0 < fits < 0.0
