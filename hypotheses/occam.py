"""The kernel hyperparameters' share of a hypothesis's evidence: a Laplace approximation in their logs.

:func:`abduce.hypotheses.evidence.log_evidence` integrates the physical
parameters ``theta`` out with the kernel and noise hyperparameters held at
their fit, ``psi_hat``. That leaves out what the residual costs: a law whose
residual kernel must be pressed to its largest amplitude or shortest
lengthscale to follow the data (a staircase read as a power law, a transition
on a slope read as one without it) was scored as if the residual were free.
This module adds the missing factor,

    log Z = log integral Z(psi) p(psi) d psi
          ~ log Z(psi_hat) + [l(psi*) + log p(psi*) - l(psi_hat)] + D/2 log 2 pi - 1/2 log det H,

over ``psi = (log outputscale, log lengthscale_1..d, log noise)`` (``D = d + 2``),
where ``l(psi)`` is the Gaussian log likelihood of the residuals
``v - m(u; theta_hat)`` (the physics at its fit), ``p`` the log-normal priors
of :class:`~abduce.hypotheses.declaration.KernelPriors` (normal in the logs),
``psi*`` the mode of ``l + log p`` in the logs and ``H`` the Hessian of
``-(l + log p)`` there. ``Z(psi*) / Z(psi_hat)`` is taken as the likelihood
ratio at ``theta_hat``.

Why the mode in the logs and not the fit's optimum: the fit maximises the
posterior density of the hyperparameters themselves, and for a residual the
data do not need that density's ``1/psi`` factor runs the outputscale down to
its lower bound, far in the tail of the prior in the logs; there the factor
would charge a law that fits perfectly ~20 nats for a residual it does not
use. At the mode in the logs a direction the data do not constrain costs
nothing (the prior alone: factor 1), and one they pin costs the ratio of the
posterior's width to the prior's. Each eigenvalue of ``H`` is floored at the
smallest prior precision, so no direction counts as wider than its prior (a
likelihood that curves the wrong way at a bound).

Why Laplace and not a grid or importance draws over ``psi``: ``D`` is 3 in one
dimension, the posterior in the logs is close to normal where the data pin it
and prior-like where they do not, and a grid of ``k^D`` Cholesky factors per
refit is what the evidence's cost budget does not have. Computed at every refit
on the first :data:`MAX_POINTS` points (``O(n^3)`` a Newton step; its size in
``n`` is ``-D/2 log n``, alike for every hypothesis of a campaign), and held
between refits like the hyperparameters themselves. The priors' truncation to
their bounds is ignored (each holds more than 99.8% of its prior's mass), but
the normal's is not: a mode on a bound (a residual pressed to its largest
amplitude) keeps only the normal's mass inside the bounds, coordinate by
coordinate in its marginal sds (:func:`_log_inside`, ~log 1/2 on a bound),
which took the factor from 0.5 to within 0.2 nats of a brute-force integral
on a transition on a slope read as one without it (tests/hypotheses/test_occam.py).
"""

from __future__ import annotations

import math
import warnings

import torch
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NotPSDError
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from abduce.hypotheses.model import LOG_2PI, StructuredGP

MAX_POINTS = 200  # the factor on the first 200 points: a refit's Newton steps stay ~0.1 s a hypothesis
NEWTON_STEPS = 30


def matern_correlation(s: Tensor, nu: float) -> Tensor:
    """The Matern correlation of the squared scaled distance ``s = r^2``, for ``nu`` in {1/2, 3/2, 5/2}:
    with ``a = sqrt(2 nu) r``, ``e^-a`` (1/2), ``(1 + a) e^-a`` (3/2), ``(1 + a + a^2/3) e^-a`` (5/2);
    ``s``'s shape. GPyTorch's ``MaternKernel`` in closed form, for the code that builds kernel matrices
    itself (this module, the batched fits of :mod:`abduce.hypotheses.batched`). Autograd through it
    needs ``s > 0`` (``sqrt`` at 0): callers clamp the squared distance first.
    """
    if nu not in (0.5, 1.5, 2.5):
        raise ValueError(f"Matern nu must be 0.5, 1.5 or 2.5, got {nu}")
    a = math.sqrt(2.0 * nu) * s.clamp_min(0).sqrt()
    e = torch.exp(-a)
    if nu == 2.5:
        return (1.0 + a + a * a / 3.0) * e
    return (1.0 + a) * e if nu == 1.5 else e


def matern(s: Tensor, nu: float) -> tuple[Tensor, Tensor, Tensor]:
    """The Matern correlation as a function of the squared scaled distance ``s = r^2`` and its first
    two derivatives in ``s``, for ``nu`` in {1/2, 3/2, 5/2}: ``(k, dk/ds, d^2k/ds^2)``, each ``s``'s shape.

    With ``a = sqrt(2 nu) r``: ``k = e^-a`` (1/2), ``(1 + a) e^-a`` (3/2), ``(1 + a + a^2/3) e^-a`` (5/2), so

        nu = 5/2:  dk/ds = -5/6 (1 + a) e^-a,    d2k/ds2 = 25/12 e^-a
        nu = 3/2:  dk/ds = -3/2 e^-a,            d2k/ds2 = 3 sqrt(3) / (4 r) e^-a
        nu = 1/2:  dk/ds = -e^-r / (2 r),        d2k/ds2 = (1 + 1/r) e^-r / (4 r^2)

    The derivatives that diverge at ``r = 0`` are only ever multiplied by factors of order
    ``r^2`` (``rho_j``: :func:`log_occam`), whose products vanish there; they are set to 0 at ``s = 0``.
    (gpytorch's ``MaternKernel`` gives ``k`` but not these; tests/hypotheses/test_occam.py checks the
    two agree and the derivatives against autograd.)
    """
    k = matern_correlation(s, nu)
    r = s.clamp_min(0).sqrt()
    zero = s <= 0
    safe = torch.where(zero, torch.ones_like(r), r)
    e = torch.exp(-math.sqrt(2.0 * nu) * r)
    if nu == 2.5:
        return k, -5.0 / 6.0 * (1.0 + math.sqrt(5.0) * r) * e, 25.0 / 12.0 * e
    if nu == 1.5:
        return k, -1.5 * e, torch.where(zero, torch.zeros_like(r), 3.0 * math.sqrt(3.0) / (4.0 * safe) * e)
    d1 = torch.where(zero, torch.zeros_like(r), -e / (2.0 * safe))
    return k, d1, torch.where(zero, torch.zeros_like(r), (1.0 + 1.0 / safe) * e / (4.0 * safe**2))


def loglik_derivatives(
    z: Tensor, diff2: Tensor, resid: Tensor, nu: float, known: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The Gaussian log likelihood of ``resid`` under ``K = e^z0 C(z_1..d) + e^z_-1 I + diag(w)`` and its gradient
    and Hessian in ``z = (log outputscale, log lengthscales, log noise)``, in closed form.

    With ``alpha = K^-1 r``, ``W = K^-1`` and ``K_i``, ``K_ij`` the derivatives of ``K``:

        l     = -1/2 r^T alpha - 1/2 log det K - n/2 log 2 pi
        g_i   =  1/2 alpha^T K_i alpha - 1/2 tr(W K_i)
        H_ij  = -alpha^T K_i W K_j alpha + 1/2 alpha^T K_ij alpha + 1/2 tr(W K_i W K_j) - 1/2 tr(W K_ij)

    where, with ``rho_j = (x_j - x'_j)^2 e^(-2 z_j)`` and ``s = sum_j rho_j``, ``dC/dz_j = -2 rho_j k'(s)`` and
    ``d2C/dz_j dz_k = 4 rho_j rho_k k''(s) + 4 rho_j delta_jk k'(s)`` (:func:`matern`). ``O(n^3)``.

    Args:
        z: ``D = d + 2`` log hyperparameters; diff2: ``n x n x d`` squared differences of the inputs;
        resid: ``n`` residuals; nu: the Matern smoothness; known: ``w``, the readings' ``n`` known noise
            variances (constant in ``z``: no derivative changes); None: none.

    Returns:
        ``(l, g, H)`` (a scalar, ``D``, ``D x D``), or None where ``K`` is not positive definite even
        with the jitter GPyTorch's ``psd_safe_cholesky`` adds (``1e-8`` to ``1e-6`` on the diagonal).
    """
    n, d = resid.shape[0], diff2.shape[-1]
    rho = diff2 * torch.exp(-2.0 * z[1 : 1 + d])  # n x n x d
    k, k1, k2 = matern(rho.sum(-1), nu)
    amp, noise = torch.exp(z[0]), torch.exp(z[-1])
    eye = torch.eye(n, dtype=resid.dtype, device=resid.device)
    try:  # GPyTorch's own rule where a kernel matrix is singular to rounding: jitter 1e-8, x10, three tries
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)
            chol = psd_safe_cholesky(
                amp * k + noise * eye if known is None else amp * k + noise * eye + torch.diag(known)
            )
    except NotPSDError:
        return None
    alpha = torch.cholesky_solve(resid.unsqueeze(-1), chol).squeeze(-1)
    w = torch.cholesky_inverse(chol)
    value = -0.5 * resid @ alpha - chol.diagonal().log().sum() - 0.5 * n * LOG_2PI
    # first derivatives of K: [amp C, amp dC/dz_j ..., noise I]; second: K_00 = K_0, K_0j = K_j, K_jk, K_-1-1 = noise I
    dc = [-2.0 * rho[..., j] * k1 for j in range(d)]
    firsts = [amp * k] + [amp * c for c in dc] + [noise * eye]
    big = len(firsts)
    second = {(0, 0): firsts[0], (big - 1, big - 1): firsts[-1]}
    for j in range(d):
        second[(0, 1 + j)] = firsts[1 + j]
        for m in range(j, d):
            c = 4.0 * rho[..., j] * rho[..., m] * k2 + (4.0 * rho[..., j] * k1 if j == m else 0.0)
            second[(1 + j, 1 + m)] = amp * c
    b = torch.stack([f @ alpha for f in firsts])  # D x n: K_i alpha
    wk = [w @ f for f in firsts]  # W K_i
    grad = 0.5 * (b @ alpha) - 0.5 * torch.stack([t.diagonal().sum() for t in wk])
    hess = -(b @ w @ b.T)
    for i in range(big):
        for j in range(i, big):
            h = hess[i, j] + 0.5 * (wk[i] * wk[j].T).sum()
            kij = second.get((i, j))
            if kij is not None:
                h = h + 0.5 * alpha @ kij @ alpha - 0.5 * (w * kij).sum()
            hess[i, j] = h
            hess[j, i] = h
    return value, grad, hess


def _log_normal(prior) -> tuple[Tensor, Tensor]:
    return prior.loc.reshape(()), prior.scale.reshape(())


def log_occam(model: StructuredGP, u: Tensor, v: Tensor, max_points: int = MAX_POINTS) -> float:
    """The log factor (nats, <= about 0) that integrates ``model``'s kernel and noise hyperparameters out.

    Args:
        model: a fitted ``StructuredGP`` (its physics at its fit, its priors and bounds are used).
        u: ``n x d`` relative inputs; v: ``n`` relative outputs (``y / s``; the factor is the same in
            any unit, as ``Z(psi) / Z(psi_hat)`` and the priors on the logs do not depend on ``s``).
        max_points: the factor is computed on the first ``max_points`` points.

    Returns:
        ``log Z - log Z(psi_hat)`` by the Laplace approximation of the module docstring.
    """
    u, v = u[:max_points].detach(), v[:max_points].detach()
    n, d = u.shape
    kern, lik = model.covar_module, model.likelihood
    with torch.no_grad():
        resid = (v - model.mean_module(u)).reshape(-1)
    (mu_o, s_o), (mu_l, s_l), (mu_n, s_n) = (
        _log_normal(kern.outputscale_prior),
        _log_normal(kern.base_kernel.lengthscale_prior),
        _log_normal(lik.noise_covar.noise_prior),
    )
    kw = {"dtype": u.dtype, "device": u.device}
    mu = torch.cat([mu_o.reshape(1), mu_l.expand(d), mu_n.reshape(1)]).to(**kw)
    sigma = torch.cat([s_o.reshape(1), s_l.expand(d), s_n.reshape(1)]).to(**kw)
    c_o, c_l = kern.raw_outputscale_constraint, kern.base_kernel.raw_lengthscale_constraint
    c_n = lik.noise_covar.raw_noise_constraint
    margin = 1e-6
    lo = torch.tensor([math.log(float(c.lower_bound)) + margin for c in (c_o, *[c_l] * d, c_n)], **kw)
    hi = torch.tensor([math.log(float(c.upper_bound)) - margin for c in (c_o, *[c_l] * d, c_n)], **kw)
    diff2 = (u.unsqueeze(1) - u.unsqueeze(0)) ** 2  # n x n x d
    nu = float(kern.base_kernel.nu)
    known = None if getattr(lik, "known", None) is None else lik.known[:max_points].detach()
    precision = 1.0 / sigma**2

    def joint(z: Tensor) -> tuple[float, Tensor, Tensor, float] | None:
        """-(l + log p) at z, its gradient and Hessian, and l (None: K not positive definite)."""
        out = loglik_derivatives(z, diff2, resid, nu, known)
        if out is None:
            return None
        value, grad, hess = out
        log_p = (-0.5 * ((z - mu) / sigma) ** 2 - sigma.log() - 0.5 * LOG_2PI).sum()
        return -float(value + log_p), -(grad - (z - mu) * precision), -(hess - torch.diag(precision)), float(value)

    with torch.no_grad():
        start = (
            torch.cat(
                [kern.outputscale.reshape(1), kern.base_kernel.lengthscale.reshape(-1), lik.noise.reshape(-1)[:1]]
            )
            .to(**kw)
            .log()
        )
    z = torch.minimum(torch.maximum(start, lo), hi)
    here = joint(z)
    if here is None:  # not positive definite even with jitter: no Newton step can start, the fit's factor stands
        return 0.0
    f, grad, hess, ll_fit = here
    damping, rejected = 0.0, 0
    for _ in range(NEWTON_STEPS):  # damped Newton on -(l + log p), projected onto the bounds
        evals, evecs = torch.linalg.eigh(hess)
        projected = evecs.T @ grad
        scaled = evals.abs().clamp_min(1e-6) + damping
        if float((projected**2 / scaled).sum()) < 1e-10:  # the Newton decrement: converged
            break
        trial = torch.minimum(torch.maximum(z - evecs @ (projected / scaled), lo), hi)
        there = joint(trial)
        if there is not None and math.isfinite(there[0]) and there[0] < f - 1e-12:
            z, (f, grad, hess, _), damping, rejected = trial, there, damping * 0.1, 0
        else:  # no descent (a bound, or too long a step): shorter steps, and give up after three
            damping, rejected = max(10.0 * damping, 1.0), rejected + 1
            if rejected == 3:
                break
    floor = float(precision.min())
    if torch.isfinite(hess).all():
        evals, evecs = torch.linalg.eigh(hess)
        evals = evals.clamp_min(floor)
        sd = ((evecs**2) @ (1.0 / evals)).sqrt()  # the marginal sds of the normal, diag(H^-1)^1/2
    else:
        evals, sd = precision, sigma
    return -f - ll_fit + 0.5 * len(z) * LOG_2PI - 0.5 * float(evals.log().sum()) + _log_inside(z, sd, lo, hi)


def _log_inside(z: Tensor, sd: Tensor, lo: Tensor, hi: Tensor) -> float:
    """log of the normal's mass inside the bounds, one coordinate at a time:
    ``sum_i log(Phi((hi_i - z_i) / sd_i) - Phi((lo_i - z_i) / sd_i))``, ~0 for a mode far inside
    and ~log 1/2 for one on a bound (a residual pressed to its largest amplitude), where the
    Laplace normal would count the half that lies outside."""
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    inside = normal.cdf((hi - z) / sd) - normal.cdf((lo - z) / sd)
    return float(inside.clamp_min(1e-300).log().sum())
