"""A fitted hypothesis's posterior at a fixed set of points, updated rank-1.

With the hyperparameters frozen, adding one measurement changes every
candidate's posterior by a rank-1 term, so a decision between refits costs
``O(n N)`` instead of ``O(n^2 N)``. Notation (relative frame, ``n`` data,
``N`` candidates ``C``):

    K + sigma_n^2 I + W = L L^T        (n x n, lower Cholesky factor; W = diag(w), the
                                        readings' known noise, 0 where none was told)
    V = L^-1 K(X, C)                   (n x N, the cached factor)
    a = L^-1 (v - m(X))                (n, whitened residuals)
    mean(C) = m(C) + V^T a
    var(C)  = k(c, c) - sum_i V_ic^2   (latent f, no noise)

Adding ``(x*, v*)``: ``l = L^-1 k(X, x*)``, ``d = sqrt(k(x*, x*) + sigma_n^2 + w* - l.l)``,
``V_new_row = (k(x*, C) - l^T V) / d``, ``a_new = (v* - m(x*) - l.a) / d``;
``L`` gains the row ``[l^T, d]``; the mean gains ``V_new_row * a_new`` and the
variance loses ``V_new_row^2``.

Everything is returned in *physical* units (``y = s v``), so hypotheses fitted
with different data scales can be compared point by point.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import Tensor

from abduce.hypotheses.model import StructuredGP, noise_matrix


def chunk_for(rows: int, device: torch.device, budget: float = 0.02) -> int:
    """Columns per block for an ``rows x block`` float64 temporary: ``budget`` of the device's free
    memory (CUDA: ``mem_get_info``; CPU: available RAM), between 256 and 65,536.

    Every candidate-set computation (factors, scores of all K hypotheses,
    integrated-variance cross covariances) runs in blocks of this size, so the
    peak stays bounded however many candidates there are.
    """
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 2**31
    return int(min(65_536, max(256, budget * free / (8 * max(rows, 1)))))


class RowBuffer:
    """A ``rows x cols`` tensor that grows by appending rows, with amortised doubling.

    Appending one row to an ``n x N`` factor with ``torch.cat`` copies all of
    it (40 MB at n = 500, N = 10^4); here a row costs ``O(N)``.
    """

    def __init__(self, initial: Tensor) -> None:
        self._buf = initial.new_empty((max(2 * len(initial), 16), *initial.shape[1:]))
        self._buf[: len(initial)] = initial
        self._n = len(initial)

    def append(self, row: Tensor) -> None:
        if self._n == len(self._buf):
            bigger = self._buf.new_empty((2 * len(self._buf), *self._buf.shape[1:]))
            bigger[: self._n] = self._buf[: self._n]
            self._buf = bigger
        self._buf[self._n] = row
        self._n += 1

    @property
    def value(self) -> Tensor:
        """The filled rows (a view)."""
        return self._buf[: self._n]


class CholeskyRow(NamedTuple):
    """The row ``[l^T, d]`` a new point appends to the Cholesky factor ``L``."""

    l: Tensor
    d: float


def integrated_variance_reduction(cross_cov: Tensor, var: Tensor, noise: float) -> Tensor:
    """How much the mean posterior variance over M reference points drops by measuring each candidate.

    ``IVR(c) = (1/M) sum_j Cov(r_j, c)^2 / (var(c) + sigma_n^2)``

    Args:
        cross_cov: ``M x b`` posterior covariances between references and candidates.
        var: ``b`` latent posterior variances of the candidates.
        noise: the noise variance (same units).

    Returns:
        ``b`` reductions (same units as ``var``).
    """
    return (cross_cov**2).mean(0) / (var + noise)


class PosteriorAtPoints:
    """What every posterior at ``N`` fixed points offers (exact: :class:`CandidatePosterior`;
    inducing points: :class:`~abduce.hypotheses.sparse.SparseCandidatePosterior`).

    Subclasses set ``s`` (data scale), ``points`` (``N x d``), ``noise_rel``,
    ``mean_rel`` and ``var_rel`` (``N``, relative frame) and implement ``add``
    and ``variance_reduction``.
    """

    s: float
    points: Tensor
    noise_rel: float
    mean_rel: Tensor
    var_rel: Tensor

    def _take(self, model: StructuredGP, points: Tensor) -> None:
        """What every subclass reads off the model: scale, kernel, mean, noise (relative frame)."""
        self.s = model.frame.s
        self._kernel = model.covar_module
        self._mean = model.mean_module
        self.points = points
        self.noise_rel = float(model.likelihood.noise.detach())
        self.outputscale_rel = float(model.covar_module.outputscale.detach())

    def loo_residuals(self) -> Tensor | None:
        """``n`` standardised leave-one-out residuals, or None where this posterior cannot give them.

        With the hyperparameters and the physical parameters held at the fit, the
        prediction of ``v_i`` from the other points is ``N(v_i - alpha_i / q_i, 1 / q_i)``,
        ``alpha = K^-1 (v - m)`` and ``q_i = [K^-1]_ii`` (Rasmussen & Williams 2006, eq.
        5.12), so ``z_i = alpha_i / sqrt(q_i)`` is N(0, 1) for every point if the model
        is right. ``K = K_f + sigma_n^2 I`` on the measured points.
        """
        return None

    @property
    def mean(self) -> Tensor:
        """``N`` posterior means, physical units."""
        return self.mean_rel * self.s

    @property
    def var(self) -> Tensor:
        """``N`` latent posterior variances, physical units squared."""
        return self.var_rel * self.s**2

    @property
    def noise(self) -> float:
        """Noise variance, physical units squared."""
        return self.noise_rel * self.s**2

    def integrated_variance(self) -> float:
        """Mean latent posterior variance over the points (physical units squared)."""
        return float(self.var.mean())


class CandidatePosterior(PosteriorAtPoints):
    """Posterior mean and variance of one hypothesis at ``N`` fixed points.

    Args:
        model: the hypothesis's ``StructuredGP`` (hyperparameters used as they are).
        u: ``n x d`` relative inputs it was conditioned on; v: ``n`` relative outputs.
        points: ``N x d`` relative coordinates of the candidates / reference points.
        chunk: candidates per block when building ``V`` (bounds peak memory; default :func:`chunk_for`).
    """

    def __init__(self, model: StructuredGP, u: Tensor, v: Tensor, points: Tensor, chunk: int | None = None) -> None:
        chunk = chunk or chunk_for(len(u), points.device)
        self._take(model, points)
        with torch.no_grad():
            k = self._k(u, u) + (
                self.noise_rel * torch.eye(len(u), dtype=u.dtype, device=u.device)
                if model.likelihood.known is None
                else noise_matrix(model, len(u), u.device)
            )
            self.chol = torch.linalg.cholesky(k)
            self.u = u
            self.a = torch.linalg.solve_triangular(self.chol, (v - self._mean(u)).unsqueeze(-1), upper=False)[:, 0]
            blocks = []
            for start in range(0, len(points), chunk):
                block = points[start : start + chunk]
                blocks.append(torch.linalg.solve_triangular(self.chol, self._k(u, block), upper=False))
            self._v = RowBuffer(torch.cat(blocks, dim=1))
            self.prior_var = self._kernel(points, points, diag=True).to_dense()
            self.mean_rel = self._mean(points) + self.v_factor.T @ self.a
            self.var_rel = (self.prior_var - (self.v_factor**2).sum(0)).clamp_min(0)

    @property
    def v_factor(self) -> Tensor:
        """``V = L^-1 K(X, C)``, ``n x N``."""
        return self._v.value

    def _k(self, a: Tensor, b: Tensor) -> Tensor:
        return self._kernel(a, b).to_dense()

    @property
    def n(self) -> int:
        return len(self.u)

    def loo_residuals(self) -> Tensor:
        """``n`` standardised leave-one-out residuals (:meth:`PosteriorAtPoints.loo_residuals`):
        from ``L`` (``K = L L^T``) and ``a = L^-1 (v - m)``, ``alpha = L^-T a`` and
        ``q_i = ||L^-1 e_i||^2``; ``O(n^3)``."""
        with torch.no_grad():
            eye = torch.eye(self.n, dtype=self.chol.dtype, device=self.chol.device)
            linv = torch.linalg.solve_triangular(self.chol, eye, upper=False)
            return (linv.T @ self.a) / (linv**2).sum(0).sqrt()

    def row_for(self, u_new: Tensor, w_new: float = 0.0) -> CholeskyRow:
        """The Cholesky row that one more measurement at ``u_new`` (``d``, relative; ``w_new``: its known noise
        variance, relative) would append, ``l = L^-1 k(U, x)`` and ``d = sqrt(k(x, x) + sigma_n^2 + w - l.l)``;
        nothing changes."""
        with torch.no_grad():
            x = u_new.reshape(1, -1)
            l_vec = torch.linalg.solve_triangular(self.chol, self._k(self.u, x), upper=False)[:, 0]
            d2 = float(self._k(x, x)[0, 0]) + self.noise_rel - float(l_vec @ l_vec)
            if w_new:
                d2 += w_new
            return CholeskyRow(l_vec, max(d2, 1e-12 * self.noise_rel) ** 0.5)

    def add(self, u_new: Tensor, v_new: float, w_new: float = 0.0) -> CholeskyRow:
        """Condition on one more measurement (``u_new``: ``d``, relative; ``v_new``: relative; ``w_new``: its
        known noise variance, relative, 0 when none was told).

        Returns the new Cholesky row, for others that track the same factor
        (:class:`~abduce.hypotheses.evidence.EvidenceTracker`).
        """
        with torch.no_grad():
            x = u_new.reshape(1, -1)
            l_vec, d = self.row_for(u_new, w_new)
            n = self.n
            chol = torch.zeros(n + 1, n + 1, dtype=self.chol.dtype, device=self.chol.device)
            chol[:n, :n] = self.chol
            chol[n, :n] = l_vec
            chol[n, n] = d
            row = (self._k(x, self.points)[0] - l_vec @ self.v_factor) / d
            a_new = (v_new - float(self._mean(x)[0]) - float(l_vec @ self.a)) / d
            self.chol = chol
            self.u = torch.cat([self.u, x])
            self.a = torch.cat([self.a, self.a.new_tensor([a_new])])
            self._v.append(row)
            self.mean_rel = self.mean_rel + row * a_new
            self.var_rel = (self.var_rel - row**2).clamp_min(0)
            return CholeskyRow(l_vec, d)

    def variance_reduction(self, reference: Tensor, chunk: int | None = None) -> Tensor:
        """Integrated-variance reduction for every point, over the reference subset (indices).

        Returns:
            ``N`` reductions of the mean variance over ``points[reference]`` (physical units squared).
        """
        chunk = chunk or chunk_for(len(reference) + self.n, self.points.device)
        with torch.no_grad():
            ref_pts = self.points[reference]
            ref_v = self.v_factor[:, reference]
            out = []
            for start in range(0, len(self.points), chunk):
                block = self.points[start : start + chunk]
                cross = self._k(ref_pts, block) - ref_v.T @ self.v_factor[:, start : start + chunk]
                out.append(integrated_variance_reduction(cross, self.var_rel[start : start + chunk], self.noise_rel))
            return torch.cat(out) * self.s**2
