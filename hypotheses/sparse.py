"""Large n: inducing points (SGPR, Titsias 2009) for fits, evidence and candidate posteriors.

Exact inference costs ``O(n^3)`` per likelihood evaluation and keeps an
``n x N`` factor per hypothesis (8 GB at n = 10^4, N = 10^5). Past
``CampaignSettings.exact_max_n`` the campaign switches every hypothesis to
``m`` inducing points ``Z`` (chosen from the measured points by farthest-point
sampling, fixed between refits), with the kernel ``k``, noise ``sigma^2`` and
mean ``m(.)`` of the structured GP unchanged. Notation (relative frame):

    K_ZZ + jitter I = L_Z L_Z^T                 (m x m)
    phi(x) = L_Z^-1 k(Z, x)                     (whitened features, m)
    Phi = [phi(x_1) ... phi(x_n)]               (m x n)
    A = I + Phi Phi^T / sigma^2                 (m x m, the features' posterior precision)
    r = v - m(X)

Fitting maximises the collapsed variational bound of the marginal likelihood
(the same objective as GPyTorch's ``InducingPointKernel``; computed here with
Woodbury in ``O(n m^2)``, which GPyTorch's lazy path was far slower at):

    log N(r; 0, Phi^T Phi + sigma^2 I) - tr(K_XX - Phi^T Phi) / (2 sigma^2)

Predictions are the bound's optimal (DTC) predictive, i.e. Bayesian linear
regression on the features plus the prior variance the features miss:

    mean(c) = m(c) + phi(c)^T mu_w,       mu_w = A^-1 Phi r / sigma^2
    var(c)  = k(c, c) - |phi(c)|^2 + phi(c)^T A^-1 phi(c)

Adding one measurement at ``x`` (``h = A^-1 phi(x)``, ``d^2 = sigma^2 + phi(x)^T h``)
is a rank-1 update costing ``O(m N)``:

    row(c) = phi(c)^T h / d,   mean += row * (r_x - phi(x)^T mu_w) / d,   var -= row^2,
    A^-1 -= h h^T / d^2

so the candidate factor ``P = [phi(c)]`` (``m x N``) never grows with ``n``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from gpytorch.mlls import MarginalLogLikelihood
from torch import Tensor

from abduce.hypotheses.model import LOG_2PI
from abduce.hypotheses.posterior import PosteriorAtPoints, chunk_for, integrated_variance_reduction

JITTER = 1e-6  # relative to the kernel's variance


def inducing_points(u: Tensor, m: int) -> Tensor:
    """``min(m, n)`` of the ``n x d`` points by greedy farthest-point sampling from the first one.

    Deterministic for the same points in the same order, so a resumed campaign
    picks the same ``Z``. ``O(n m)``.
    """
    n = len(u)
    if n <= m:
        return u.clone()
    chosen = torch.empty(m, dtype=torch.long, device=u.device)
    chosen[0] = 0
    dist = ((u - u[0]) ** 2).sum(-1)
    for i in range(1, m):
        j = torch.argmax(dist)
        chosen[i] = j
        dist = torch.minimum(dist, ((u - u[j]) ** 2).sum(-1))
    return u[chosen].clone()


class Features:
    """Whitened inducing features ``phi(x) = L_Z^-1 k(Z, x)`` of one kernel.

    Args:
        kernel: the GP's covariance module (hyperparameters as they are).
        z: ``m x d`` inducing points.
    """

    def __init__(self, kernel, z: Tensor) -> None:
        self.kernel, self.z = kernel, z
        k_zz = kernel(z, z).to_dense()
        scale = k_zz.diagonal().mean().detach()
        self.chol = torch.linalg.cholesky(k_zz + JITTER * scale * torch.eye(len(z), dtype=z.dtype, device=z.device))

    @property
    def m(self) -> int:
        return len(self.z)

    def __call__(self, x: Tensor, chunk: int | None = None) -> Tensor:
        """``m x b`` features of ``b x d`` points (in chunks of ``chunk`` points)."""
        chunk = chunk or chunk_for(self.m, x.device)
        blocks = [
            torch.linalg.solve_triangular(self.chol, self.kernel(self.z, x[i : i + chunk]).to_dense(), upper=False)
            for i in range(0, len(x), chunk)
        ]
        return torch.cat(blocks, dim=1) if blocks else x.new_zeros(self.m, 0)


def titsias_terms(phi: Tensor, r: Tensor, noise: Tensor, prior_diag: Tensor):
    """The collapsed bound's pieces for residuals ``r`` (``n`` or ``n x S``).

    Args:
        phi: ``m x n`` features of the data; noise: ``sigma^2``; prior_diag: ``n`` values ``k(x_i, x_i)``.

    Returns:
        ``(quad, logdet, trace)``: ``r^T (Phi^T Phi + sigma^2 I)^-1 r`` (``S`` or scalar),
        ``log det(Phi^T Phi + sigma^2 I)`` and ``tr(K_XX - Phi^T Phi) / sigma^2``.
    """
    n, m = phi.shape[1], phi.shape[0]
    b = phi @ phi.T + noise * torch.eye(m, dtype=phi.dtype, device=phi.device)
    chol_b = torch.linalg.cholesky(b)
    c = torch.linalg.solve_triangular(chol_b, phi @ (r if r.dim() == 2 else r.unsqueeze(-1)), upper=False)
    rr = (r**2).sum(0)
    quad = (rr - (c**2).sum(0).reshape(rr.shape)) / noise
    logdet = (n - m) * torch.log(noise) + 2 * chol_b.diagonal().log().sum()
    trace = (prior_diag.sum() - (phi**2).sum()).clamp_min(0) / noise
    return quad, logdet, trace


class TitsiasMarginalLogLikelihood(MarginalLogLikelihood):
    """The collapsed SGPR bound of a ``StructuredGP`` with fixed inducing points, plus the
    model's hyperparameter log priors, divided by ``n`` (the convention of
    ``ExactMarginalLogLikelihood``, so ``fit_gpytorch_mll_scipy`` can optimise it).

    The ``function_dist`` BoTorch's closure passes in is ignored: the bound is
    computed from the model's modules directly in ``O(n m^2)``.
    """

    def __init__(self, likelihood, model, z: Tensor) -> None:
        super().__init__(likelihood, model)
        self.z = z

    def forward(self, function_dist, target: Tensor, *params) -> Tensor:
        model = self.model
        u = model.train_inputs[0]
        v = target.reshape(-1)
        n = len(v)
        noise = model.likelihood.noise.reshape(())
        feats = Features(model.covar_module, self.z)
        phi = feats(u)
        r = v - model.mean_module(u)
        quad, logdet, trace = titsias_terms(phi, r, noise, model.covar_module(u, diag=True))
        res = -0.5 * (quad + logdet + trace + n * LOG_2PI)
        for _, module, prior, closure, _ in self.model.named_priors():
            res = res + prior.log_prob(closure(module)).sum()
        return res / n


class SparseRow(NamedTuple):
    """What one new point did to the features' posterior (for the evidence tracker).

    Attributes:
        phi: ``m`` features of the new point; h: ``A^-1 phi`` before the update;
        d: ``sqrt(sigma^2 + phi^T h)``, the predictive sd of the new reading;
        excess: ``k(x, x) - |phi|^2``, the prior variance the features miss at it.
    """

    phi: Tensor
    h: Tensor
    d: float
    excess: float


class SparseCandidatePosterior(PosteriorAtPoints):
    """:class:`~abduce.hypotheses.posterior.CandidatePosterior`'s interface on inducing features.

    Memory ``O(m N + m^2)`` instead of ``O(n N + n^2)``; a step costs ``O(m N)``.

    Args:
        model: the hypothesis's ``StructuredGP`` (hyperparameters used as they are).
        u: ``n x d`` relative inputs; v: ``n`` relative outputs.
        points: ``N x d`` relative coordinates of the candidates / reference points.
        z: ``m x d`` inducing points.
        chunk: candidates per block (bounds peak memory).
    """

    def __init__(self, model, u: Tensor, v: Tensor, points: Tensor, z: Tensor, chunk: int | None = None) -> None:
        chunk = chunk or chunk_for(len(z), points.device)
        self._take(model, points)
        with torch.no_grad():
            self.features = Features(self._kernel, z)
            phi = self.features(u, chunk)
            self._phi_data = phi  # for the evidence built next from the same data (pop_data_features)
            m = self.features.m
            b = phi @ phi.T + self.noise_rel * torch.eye(m, dtype=u.dtype, device=u.device)
            self.a_inv = self.noise_rel * torch.cholesky_inverse(torch.linalg.cholesky(b))  # A^-1 = sigma^2 B^-1
            self.r = v - self._mean(u)
            self.t = phi @ self.r  # Phi r
            self.mu_w = self.a_inv @ self.t / self.noise_rel
            self.u = u
            self.p = self.features(points, chunk)  # m x N, fixed between refits
            self.prior_var = self._kernel(points, points, diag=True).to_dense()
            self.mean_rel = self._mean(points) + self.p.T @ self.mu_w
            var = self.prior_var.clone()
            for i in range(0, len(points), chunk):
                pb = self.p[:, i : i + chunk]
                var[i : i + chunk] -= (pb**2).sum(0) - ((self.a_inv @ pb) * pb).sum(0)
            self.var_rel = var.clamp_min(0)

    @property
    def n(self) -> int:
        return len(self.u)

    @property
    def m(self) -> int:
        return self.features.m

    def pop_data_features(self, u: Tensor) -> Tensor:
        """``m x n`` features of the data this posterior was built on (computed once, in ``__init__``,
        and handed over here instead of recomputed; ``O(n m^2)``), then forgotten."""
        phi, self._phi_data = self._phi_data, None
        return phi if phi is not None and phi.shape[1] == len(u) else self.features(u)

    def add(self, u_new: Tensor, v_new: float, w_new: float = 0.0) -> SparseRow:
        """Condition on one more measurement (``u_new``: ``d``; ``v_new``: relative). ``O(m N)``. The SGPR
        bound keeps the fitted noise only: a known noise variance ``w_new`` is not used on inducing points."""
        with torch.no_grad():
            x = u_new.reshape(1, -1)
            phi = self.features(x)[:, 0]
            h = self.a_inv @ phi
            d = math.sqrt(self.noise_rel + float(phi @ h))
            r_new = v_new - float(self._mean(x)[0])
            a_new = (r_new - float(phi @ self.mu_w)) / d
            row = (self.p.T @ h) / d
            self.mean_rel = self.mean_rel + row * a_new
            self.var_rel = (self.var_rel - row**2).clamp_min(0)
            self.mu_w = self.mu_w + h * (a_new / d)
            self.a_inv = self.a_inv - torch.outer(h, h) / d**2
            self.t = self.t + phi * r_new
            excess = max(float(self._kernel(x, x, diag=True).to_dense()[0]) - float(phi @ phi), 0.0)
            self.u = torch.cat([self.u, x])
            return SparseRow(phi, h, d, excess)

    def variance_reduction(self, reference: Tensor, chunk: int | None = None) -> Tensor:
        """As :meth:`CandidatePosterior.variance_reduction`, with
        ``Cov(r, c) = k(r, c) + phi(r)^T (A^-1 - I) phi(c)``."""
        chunk = chunk or chunk_for(len(reference) + self.m, self.points.device)
        with torch.no_grad():
            ref_pts = self.points[reference]
            p_ref = self.p[:, reference]
            e = self.a_inv @ p_ref - p_ref  # (A^-1 - I) phi(R), m x M
            out = []
            for start in range(0, len(self.points), chunk):
                block = self.points[start : start + chunk]
                cross = self._kernel(ref_pts, block).to_dense() + e.T @ self.p[:, start : start + chunk]
                out.append(integrated_variance_reduction(cross, self.var_rel[start : start + chunk], self.noise_rel))
            return torch.cat(out) * self.s**2
