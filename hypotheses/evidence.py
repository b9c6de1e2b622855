"""Evidence for each hypothesis, and posterior probabilities over the set.

The evidence of hypothesis H is its marginal likelihood with the physical
parameters integrated out against their (normalised, truncated) priors and the
kernel/noise hyperparameters held at their MAP values:

    Z_H = integral p(y | theta, psi_MAP, H) p(theta | H) d theta,
    p(y | theta, psi) = N(y; m(X; theta), K_psi + sigma_n^2 I).

A campaign multiplies it by the hyperparameters' own Laplace factor
(:mod:`abduce.hypotheses.occam`, ``EvidenceTracker.log_occam``), so that a
residual pressed to its bounds costs what it should.

Why not BIC, Laplace or leave-one-out:

* LOO predictive likelihood barely penalises extra parameters, so a
  second-order law with ``beta = 1`` ties with the straight line it contains.
* BIC charges ``0.5 log n`` per parameter whatever the prior, 1.8 nats at
  ``n = 40``: too little to tell nested laws apart with confidence.
* Laplace needs a Hessian at the MAP; for a jump (``first-order``) the
  likelihood is flat in ``x_c`` between two measurements, and for a boundary
  optimum (a line inside a ``beta = 1`` power law has ``x_c`` at the edge) the
  Hessian is singular.

The integral makes extra parameters pay by exactly the prior volume they do
not use: a sigmoid only reproduces a jump with ``w`` below the spacing of the
points around ``x_c``, where its prior holds little mass, and a power law only
reproduces a line with ``beta ~ 1`` and ``x_c`` at the edge. Nested laws are
thus separated by prior mass, not by fit.

The integral is estimated by annealed adaptive importance sampling
(population Monte Carlo) with a defensive mixture proposal, drawn from
scrambled Sobol points so that it is deterministic for a seed. Stage 0 draws
from ``0.2 prior + 0.8/3 sum_c N(theta_MAP, (c width)^2)`` for ``c`` in 0.1, 0.01
and 0.001 (with one width, 0.1, a jump between two measurements 0.002 apart
got 3 of 512 draws in the gap that holds its posterior, an effective sample
size of 3 and a log Z ~10 nats low); each later stage from
``0.1 prior + 0.9 N(mu, 2.25 Sigma)``, with ``mu, Sigma`` the moments of the
previous stage's weights tempered (``w^lambda``, largest ``lambda`` keeping
S/5 effective draws) so that a proposal far too wide or narrow shrinks or
grows step by step instead of collapsing onto one draw. It stops at the first
stage past 0 whose untempered effective sample size is at least S/10 (at most
``max_stages``, 16: a posterior a thousand times narrower than the first
proposal needs about seven) and keeps the stage past 0 with the largest
effective sample size: where none reaches S/10, the last stage is not always
the best, and one with a handful of effective draws would report a parameter
sd near 0 and a noisy log evidence (its standard error says how noisy). The
posterior of a power law near its kink is far from Gaussian, which is why a
Laplace proposal (tried first) failed there. The prior
component bounds the weights. With the kernel fixed, every draw costs one
triangular solve against a shared Cholesky factor (``O(n^2 S)``).

Probabilities over hypotheses use a uniform prior over the set:
``P(H | y) = Z_H / sum_H' Z_H'``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from abduce.hypotheses.fitting import canonical, log_prior
from abduce.hypotheses.model import DTYPE, LOG_2PI, StructuredGP, noise_matrix, relative_mean
from abduce.hypotheses.posterior import CandidatePosterior, CholeskyRow, RowBuffer, chunk_for
from abduce.hypotheses.sparse import SparseCandidatePosterior, SparseRow, titsias_terms
from abduce.hypotheses.transfer import joint_from_unit

STAGE0_SCALES = (0.1, 0.01, 0.001)  # the first proposal's widths about the fit, in units of each parameter's bounds


@dataclass(frozen=True)
class Evidence:
    """Evidence of one hypothesis on one data set.

    Attributes:
        log_z: log marginal likelihood of ``y`` in physical units (nats).
        mean, sd: posterior mean and sd of each free parameter, physical units.
        ess: effective sample size of the final stage (of ``samples``).
        log_z_se: Monte Carlo standard error of ``log_z``: with ``S`` draws of normalised weights
            ``w_s``, ``se(Z) / Z = sqrt((S sum w_s^2 - 1) / (S - 1)) = sqrt((S / ess - 1) / (S - 1))``
            (the i.i.d. formula; the scrambled Sobol draws do no worse).
        log_occam: the part of ``log_z`` that integrates the kernel and noise hyperparameters out
            (:func:`abduce.hypotheses.occam.log_occam`, set on the tracker at a refit; 0 where not).
    """

    log_z: float
    mean: dict[str, float]
    sd: dict[str, float]
    ess: float
    log_z_se: float = 0.0
    log_occam: float = 0.0


def _gaussian_draws(mu: Tensor, cov: Tensor, unit: Tensor) -> Tensor:
    """Normal draws ``S x k`` from uniforms ``S x k`` by the inverse CDF (Sobol-friendly)."""
    z = torch.distributions.Normal(0.0, 1.0).icdf(unit.clamp(1e-12, 1 - 1e-12))
    return mu + z @ torch.linalg.cholesky(cov).T


def _gaussian_logpdf(phi: Tensor, mu: Tensor, cov: Tensor) -> Tensor:
    return torch.distributions.MultivariateNormal(mu, covariance_matrix=cov).log_prob(phi)


class EvidenceTracker:
    """The final importance-sampling stage of one hypothesis, kept while its hyperparameters are frozen.

    Between refits the draws ``theta_s`` and their weights' prior/proposal
    part stay fixed; each new point appends one row to every draw's whitened
    residuals, ``w_new = (r_new - l . W) / d`` with the Cholesky row
    ``(l, d)`` (:class:`~abduce.hypotheses.posterior.CholeskyRow`), so the
    evidence follows the data at ``O(n S)`` a step instead of ``O(n^2 S)``.
    The proposal was adapted to the posterior at the last refit; the effective
    sample size (reported) shows when it has drifted, and the next refit
    adapts it again.

    Args:
        model: the fitted model (frame, hypothesis).
        u, v: ``n x d`` relative inputs and ``n`` relative outputs.
        chol: ``n x n`` Cholesky factor of ``K + sigma_n^2 I``.
        phi: ``S x k`` draws of the free relative parameters.
        log_pq: ``S`` values of ``log p(theta_s) - log q(theta_s)`` (``-inf`` outside the bounds).
    """

    def __init__(self, model: StructuredGP, u: Tensor, v: Tensor, chol: Tensor, phi: Tensor, log_pq: Tensor) -> None:
        self._common(model, u, phi, log_pq)
        self.logdet = float(2 * chol.diagonal().log().sum())
        self._w = RowBuffer(torch.linalg.solve_triangular(chol, self._residuals(u, v), upper=False))

    def _common(self, model: StructuredGP, u: Tensor, phi: Tensor, log_pq: Tensor) -> None:
        self.hypothesis, self.frame = model.hypothesis, model.frame
        self.phi, self.log_pq = phi, log_pq
        self.inside = torch.isfinite(log_pq)
        self.n = len(u)
        self.log_s_total = self.n * math.log(self.frame.s)
        self.log_occam = 0.0  # the hyperparameters' Laplace factor, when the caller computes it (held between refits)

    def _residuals(self, u: Tensor, v: Tensor) -> Tensor:
        """``v - m(u; theta_s)`` for the draws inside the bounds, ``n x S_inside``."""
        means = relative_mean(self.hypothesis, self.frame, u, self._draws(self.inside))
        return (v.unsqueeze(0) - torch.broadcast_to(means, (int(self.inside.sum()), len(u)))).T

    @property
    def w(self) -> Tensor:
        """Whitened residuals of the draws inside the bounds, ``n x S_inside``."""
        return self._w.value

    def _draws(self, mask: Tensor) -> dict[str, Tensor]:
        return {p.name: self.phi[mask, i : i + 1] for i, p in enumerate(self.hypothesis.free)}

    def _whitened(self, row: CholeskyRow, u_new: Tensor, v_new: float) -> Tensor:
        """The whitened residual of one more point for every draw inside the bounds, ``S_inside``."""
        with torch.no_grad():
            m_new = relative_mean(self.hypothesis, self.frame, u_new.reshape(1, -1), self._draws(self.inside))
            return (v_new - m_new.reshape(-1) - row.l @ self.w) / row.d

    def add(self, row: CholeskyRow, u_new: Tensor, v_new: float) -> None:
        """Follow one more point (``u_new``: ``d`` relative, ``v_new``: relative, in this tracker's frame)."""
        with torch.no_grad():
            w_new = self._whitened(row, u_new, v_new)
            self._w.append(w_new)
            self.logdet += 2 * math.log(row.d)
            self.n += 1
            self.log_s_total += math.log(self.frame.s)

    def _loglik(self) -> Tensor:
        """Log likelihood of the draws inside the bounds, ``S_inside``."""
        return -0.5 * (self.w**2).sum(0) - 0.5 * self.logdet - 0.5 * self.n * LOG_2PI

    def _log_z(self, loglik: Tensor, log_s_total: float) -> tuple[float, Tensor]:
        """log Z (physical units) from the draws' log likelihoods, and the ``S`` log weights."""
        log_w = torch.full_like(self.log_pq, -math.inf)
        log_w[self.inside] = loglik + self.log_pq[self.inside]
        count = len(self.log_pq)
        return float(torch.logsumexp(log_w, 0)) - math.log(count) - log_s_total + self.log_occam, log_w

    def with_point(self, row: CholeskyRow, u_new: Tensor, v_new: float) -> tuple[float, float]:
        """``evidence().log_z`` and ``evidence().ess`` after :meth:`add` of one more point, without adding it
        (``O(n S)``)."""
        w_new = self._whitened(row, u_new, v_new)
        loglik = self._loglik() - 0.5 * w_new**2 - math.log(row.d) - 0.5 * LOG_2PI
        log_z, log_w = self._log_z(loglik, self.log_s_total + math.log(self.frame.s))
        return log_z, _ess(log_w)

    def evidence(self) -> Evidence:
        """The current estimate: log Z in physical units, posterior moments, ESS."""
        log_z, log_w = self._log_z(self._loglik(), self.log_s_total)
        count = len(self.log_pq)
        if not self.hypothesis.free:
            return Evidence(log_z=log_z, mean={}, sd={}, ess=float(count), log_occam=self.log_occam)
        w = torch.softmax(log_w, 0)
        ess = float(1.0 / (w**2).sum())
        se = math.sqrt(max(0.0, (count / ess - 1.0) / (count - 1))) if count > 1 else 0.0
        physical = {p.name: self.frame.to_physical(p, self.phi[:, i]) for i, p in enumerate(self.hypothesis.free)}
        mean = {name: float((w * t).sum()) for name, t in physical.items()}
        sd = {name: float((w * (t - mean[name]) ** 2).sum().clamp_min(0).sqrt()) for name, t in physical.items()}
        return Evidence(log_z=log_z, mean=mean, sd=sd, ess=ess, log_z_se=se, log_occam=self.log_occam)

    def weights(self) -> Tensor:
        """Normalised importance weights of the draws inside the bounds, ``S_inside`` (the posterior
        over the physical parameters that :meth:`evidence` summarises)."""
        log_w = self._loglik() + self.log_pq[self.inside]
        return torch.softmax(log_w, 0)

    def physical_draws(self) -> tuple[Tensor, dict[str, Tensor]]:
        """The posterior :meth:`evidence` summarises, as weighted draws: the normalised weights (``S_inside``)
        and each free parameter's values at the draws inside the bounds (``S_inside``, physical units)."""
        inside = self.phi[self.inside]
        return self.weights(), {
            p.name: self.frame.to_physical(p, inside[:, i]) for i, p in enumerate(self.hypothesis.free)
        }

    def band(
        self, posterior: CandidatePosterior, mass: float = 1.0 - 1e-9, chunk: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Posterior mean and latent variance at ``posterior.points`` (physical units) with the physical
        parameters integrated over their posterior instead of plugged in at the fit.

        Each draw ``theta_s`` of this tracker gives the GP posterior of the same kernel about its own mean
        (``L``, ``V`` shared with ``posterior``, which must be the exact posterior built with this tracker):

            mu_s(C) = m(C; theta_s) + V^T a_s,        a_s = L^-1 (v - m(X; theta_s))   (the tracker's ``w``)
            mean(C) = sum_s w_s mu_s(C),              var(C) = var_f(C) + sum_s w_s (mu_s(C) - mean(C))^2

        with ``var_f`` the latent variance of the kernel (the same for every draw). The kernel and noise
        hyperparameters stay at their fitted values. Draws are taken in order of weight until they hold
        ``mass`` of it. ``O(N n S)`` in blocks of ``chunk`` points.
        """
        with torch.no_grad():
            w = self.weights()
            order = torch.argsort(w, descending=True)
            cum = torch.cumsum(w[order], 0)
            keep = order[: int(torch.searchsorted(cum, torch.tensor(mass, dtype=w.dtype, device=w.device))) + 1]
            wk = w[keep] / w[keep].sum()
            draws = {name: t[keep] for name, t in self._draws(self.inside).items()}
            a = self.w[:, keep]  # n x S
            points = posterior.points
            chunk = chunk or chunk_for(len(keep) + len(a), points.device)
            means, spread = [], []
            for start in range(0, len(points), chunk):
                block = points[start : start + chunk]
                mu = relative_mean(self.hypothesis, self.frame, block, draws)  # S x b
                mu = (
                    torch.broadcast_to(mu, (len(keep), len(block))) + a.T @ posterior.v_factor[:, start : start + chunk]
                )
                mean = wk @ mu
                means.append(mean)
                spread.append(wk @ (mu - mean) ** 2)
            s = self.frame.s
            return torch.cat(means) * s, (posterior.var_rel + torch.cat(spread)) * s**2


class SparseEvidenceTracker(EvidenceTracker):
    """:class:`EvidenceTracker` on inducing features (:mod:`abduce.hypotheses.sparse`): the
    likelihood of each draw is the collapsed SGPR bound, followed point by point as
    Bayesian linear regression on the features, ``O(m S)`` a step:

        w_new = (r_new - h^T T_s / sigma^2) / d,   quad_s += w_new^2,   T_s += phi r_new,

    with ``T_s = Phi r_s`` and ``(phi, h, d)`` the :class:`~abduce.hypotheses.sparse.SparseRow`.

    Args:
        model, u, v, phi, log_pq: as :class:`EvidenceTracker`.
        posterior: the hypothesis's :class:`~abduce.hypotheses.sparse.SparseCandidatePosterior`
            built from the same model and data (its features and noise are used).
    """

    def __init__(
        self,
        model: StructuredGP,
        u: Tensor,
        v: Tensor,
        posterior,
        phi: Tensor,
        log_pq: Tensor,
        feats: Tensor | None = None,
    ) -> None:
        self._common(model, u, phi, log_pq)
        self.noise = posterior.noise_rel
        with torch.no_grad():
            feats = posterior.features(u) if feats is None else feats
            r = self._residuals(u, v)
            noise = torch.tensor(self.noise, dtype=DTYPE, device=u.device)
            quad, logdet, trace = titsias_terms(feats, r, noise, model.covar_module(u, diag=True).to_dense())
            self.quad, self.logdet, self.trace = quad, float(logdet), float(trace)
            self.t = feats @ r  # m x S_inside

    def add(self, row: SparseRow, u_new: Tensor, v_new: float) -> None:  # type: ignore[override]
        with torch.no_grad():
            m_new = relative_mean(self.hypothesis, self.frame, u_new.reshape(1, -1), self._draws(self.inside))
            r = v_new - m_new.reshape(-1)
            w_new = (r - row.h @ self.t / self.noise) / row.d
            self.quad = self.quad + w_new**2
            self.t = self.t + torch.outer(row.phi, r)
            self.logdet += 2 * math.log(row.d)
            self.trace += row.excess / self.noise
            self.n += 1
            self.log_s_total += math.log(self.frame.s)

    def _loglik(self) -> Tensor:
        return -0.5 * self.quad - 0.5 * (self.logdet + self.trace) - 0.5 * self.n * LOG_2PI


def _ess(log_w: Tensor) -> float:
    w = torch.softmax(log_w, 0)
    return float(1.0 / (w**2).sum()) if torch.isfinite(log_w).any() else 0.0


def _temper(log_w: Tensor, target: float) -> float:
    """The largest lambda in (0, 1] with ESS(lambda log w) >= target (bisection)."""
    if _ess(log_w) >= target:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _ess(mid * log_w) >= target else (lo, mid)
    return max(lo, 1e-6)


def log_evidence(
    model: StructuredGP,
    u: Tensor,
    y: Tensor,
    samples: int = 512,
    seed: int = 0,
    max_stages: int = 16,
    chol: Tensor | None = None,
    sparse: SparseCandidatePosterior | None = None,
) -> EvidenceTracker:
    """Estimate the evidence of the model's hypothesis on ``(u, y)`` by adaptive importance sampling.

    Args:
        model: a fitted ``StructuredGP`` (its frame and hyperparameters are used;
            its physical parameters give the MAP centre).
        u: ``n x d`` relative inputs; y: ``n`` physical outputs.
        samples: draws per stage.
        seed: seeds the scrambled Sobol draws.
        max_stages: most adaptation stages.
        chol: the Cholesky factor of ``K + sigma_n^2 I + diag(w)`` (``w``: the readings' known noise,
            :func:`~abduce.hypotheses.model.noise_matrix`) when the caller already
            has it (a :class:`CandidatePosterior` built from the same model).
        sparse: past the exact-inference size, the hypothesis's
            :class:`~abduce.hypotheses.sparse.SparseCandidatePosterior`: the likelihood
            is then the collapsed SGPR bound on its features, ``O(n m S)`` per stage,
            and a :class:`SparseEvidenceTracker` is returned.

    Returns:
        A tracker holding the final stage; ``.evidence()`` gives the estimate
        and ``.add`` follows further points while the hyperparameters stay frozen.
    """
    hyp, frame = model.hypothesis, model.frame
    free = hyp.free
    n = len(u)
    v = y / frame.s
    with torch.no_grad():
        if sparse is not None:
            feats = sparse.pop_data_features(u)
            noise = torch.tensor(sparse.noise_rel, dtype=DTYPE, device=u.device)
            prior_diag = model.covar_module(u, diag=True).to_dense()

            def tracker(phi: Tensor, log_pq: Tensor) -> EvidenceTracker:
                return SparseEvidenceTracker(model, u, v, sparse, phi, log_pq, feats=feats)

            def loglik(rel: dict[str, Tensor]) -> Tensor:
                r = (v.unsqueeze(0) - relative_mean(hyp, frame, u, rel).expand(-1, n)).T
                quad, logdet, trace = titsias_terms(feats, r, noise, prior_diag)
                return -0.5 * quad - 0.5 * (logdet + trace) - 0.5 * n * LOG_2PI
        else:
            if chol is None:
                k = model.covar_module(u).to_dense() + noise_matrix(model, n, u.device)
                chol = torch.linalg.cholesky(k)
            logdet = 2 * chol.diagonal().log().sum()

            def tracker(phi: Tensor, log_pq: Tensor) -> EvidenceTracker:
                return EvidenceTracker(model, u, v, chol, phi, log_pq)

            def loglik(rel: dict[str, Tensor]) -> Tensor:
                r = (v.unsqueeze(0) - relative_mean(hyp, frame, u, rel).expand(-1, n)).T
                w = torch.linalg.solve_triangular(chol, r, upper=False)
                return -0.5 * (w**2).sum(0) - 0.5 * logdet - 0.5 * n * LOG_2PI

        if not free:
            return tracker(
                torch.zeros(1, 0, dtype=DTYPE, device=u.device), torch.zeros(1, dtype=DTYPE, device=u.device)
            )

        lo = torch.tensor([p.bounds[0] for p in free], dtype=DTYPE, device=u.device)
        hi = torch.tensor([p.bounds[1] for p in free], dtype=DTYPE, device=u.device)
        width = hi - lo
        k_dim = len(free)

        def as_dict(phi: Tensor) -> dict[str, Tensor]:
            return {p.name: phi[:, i : i + 1] for i, p in enumerate(free)}

        def stage(
            components: list[tuple[Tensor, Tensor]], alpha: float, stage_seed: int
        ) -> tuple[Tensor, Tensor, Tensor]:
            """Draws from ``alpha prior + (1 - alpha)/C sum_c N(mu_c, cov_c)``, their ``log p - log q``
            and ``log w``."""
            sobol = torch.quasirandom.SobolEngine(k_dim, scramble=True, seed=stage_seed)
            unit = sobol.draw(samples, dtype=DTYPE).to(u.device)
            n_prior = int(round(alpha * samples))
            from_prior = joint_from_unit(free, unit[:n_prior])
            cuts = torch.linspace(n_prior, samples, len(components) + 1).round().long().tolist()
            phi = torch.cat(
                [from_prior]
                + [_gaussian_draws(mu, cov, unit[a:b]) for (mu, cov), a, b in zip(components, cuts[:-1], cuts[1:])]
            )
            lp = log_prior(hyp, as_dict(phi)).squeeze(-1)
            # the prior component draws from the unordered prior (the same density where no part is interchangeable)
            lq = log_prior(hyp, as_dict(phi), ordered=False).squeeze(-1) if hyp.symmetries else lp
            log_share = math.log((1 - alpha) / len(components))
            log_q = torch.logsumexp(
                torch.stack(
                    [math.log(alpha) + lq if alpha > 0 else torch.full_like(lp, -math.inf)]
                    + [log_share + _gaussian_logpdf(phi, mu, cov) for mu, cov in components]
                ),
                0,
            )
            log_pq = lp - log_q
            inside = torch.isfinite(lp)
            log_w = torch.full_like(lp, -math.inf)
            if inside.any():
                log_w[inside] = loglik(as_dict(phi[inside])) + log_pq[inside]
            return phi, log_pq, log_w

        fitted = canonical(hyp, {p.name: model.physics.value(p.name).detach() for p in free})
        centre = torch.stack([fitted[p.name] for p in free])  # interchangeable parts in the ordered region
        # stage 0: the fit's point at three widths, so that a posterior 10 or 1000 times narrower than
        # the first guess (a jump between two close measurements pins x_c to their gap) has draws in it
        components = [(centre, torch.diag((scale * width) ** 2)) for scale in STAGE0_SCALES]
        floor = torch.diag((1e-7 * width) ** 2)
        best: tuple[float, Tensor, Tensor] | None = None
        for t in range(max_stages):
            phi, log_pq, log_w = stage(components, 0.2 if t == 0 else 0.1, seed + t)
            ess = _ess(log_w)
            if t > 0 and (best is None or ess > best[0]):
                best = (ess, phi, log_pq)
            if t > 0 and ess >= samples / 10:
                break
            # Anneal: moments of the posterior tempered to keep S/5 effective draws.
            lam = _temper(log_w, samples / 5)
            w = torch.softmax(lam * log_w, 0)
            mu = (w.unsqueeze(-1) * phi).sum(0)
            d = phi - mu
            components = [(mu, (w.unsqueeze(-1) * d).T @ d * 2.25 + floor)]
        if best is None:  # max_stages == 1
            best = (ess, phi, log_pq)
        return tracker(best[1], best[2])


def probabilities(log_z: list[float], prior: list[float] | None = None) -> list[float]:
    """Posterior probabilities from log evidences: ``P_i = pi_i Z_i / sum_j pi_j Z_j``.

    ``prior``: the prior probabilities ``pi`` (uniform when None)."""
    t = torch.tensor(log_z, dtype=DTYPE)
    if prior is not None:
        t = t + torch.log(torch.tensor(prior, dtype=DTYPE))
    return torch.softmax(t, 0).tolist()
