"""Fitting several hypotheses at once: every start of every hypothesis in one batched L-BFGS-B.

One-by-one, each start of each hypothesis is its own SciPy L-BFGS-B run, and
at small n a likelihood evaluation is mostly Python and GPyTorch overhead.
Here the B = (starts x hypotheses) problems run in BoTorch's batched L-BFGS-B
(``fmin_l_bfgs_b_batched``: B independent L-BFGS-B states — each with its own
curvature pairs, line search and stopping — driven by one batched function),
and each evaluation computes all B negative log posteriors together:

    K_b = sigma_f,b^2 Matern_nu_b(|u - u'| / l_b) + sigma_n,b^2 I     (B x n x n, one batched Cholesky)
    -log p_b = [ 1/2 r_b^T K_b^-1 r_b + 1/2 log det K_b + n/2 log 2 pi - log prior_b ] / n,
    r_b = v - m_b(u)                                                     (means: one call per hypothesis)

the objective of GPyTorch's ``ExactMarginalLogLikelihood`` (per point, MAP
priors included). The problems share no parameter, so every batch member
follows the path its one-by-one run would: results agree to rounding
(tests/hypotheses/test_batched.py: log posterior within 1e-6 per point,
parameters within 1e-4 where a start converged). The batch runs until its
slowest member stops, so it pays only while evaluations are cheap: the
campaign batches a step's refits while ``n <= CampaignSettings.batch_fit_below``
(measured in tests/benchmarks/batched_fit.py). Exact inference only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from botorch.optim.batched_lbfgs_b import fmin_l_bfgs_b_batched
from botorch.optim.utils import get_parameters_and_bounds
from torch import Tensor

from abduce.controller.errors import FitError
from abduce.hypotheses.fitting import Fit, FitPlan, FitSettings
from abduce.hypotheses.model import StructuredGP

_LOG_2PI = math.log(2 * math.pi)


def _matern(r: Tensor, nu: Tensor) -> Tensor:
    """GPyTorch's Matern correlation for per-member ``nu`` (``B``), distances ``B x n x n``."""
    nu = nu.view(-1, 1, 1)
    root = torch.sqrt(2 * nu)
    poly = torch.where(nu == 0.5, torch.ones_like(r),
                       torch.where(nu == 1.5, 1 + math.sqrt(3) * r, 1 + math.sqrt(5) * r + 5.0 / 3.0 * r**2))
    return poly * torch.exp(-root * r)


def negative_log_posteriors(models: list[StructuredGP], u: Tensor, v: Tensor) -> Tensor:
    """``B`` values of ``-ExactMarginalLogLikelihood`` (per point, priors included), computed together."""
    n = len(u)
    ls = torch.stack([m.covar_module.base_kernel.lengthscale.reshape(-1) for m in models])  # B x d
    scale = torch.stack([m.covar_module.outputscale.reshape(()) for m in models])
    noise = torch.stack([m.likelihood.noise.reshape(()) for m in models])
    nu = torch.tensor([m.covar_module.base_kernel.nu for m in models], dtype=u.dtype, device=u.device)
    x = (u - u.mean(0)).unsqueeze(0) / ls.unsqueeze(1)  # B x n x d
    r = (x.unsqueeze(2) - x.unsqueeze(1)).pow(2).sum(-1).clamp_min(1e-30).sqrt()
    k = scale.view(-1, 1, 1) * _matern(r, nu) + noise.view(-1, 1, 1) * torch.eye(n, dtype=u.dtype, device=u.device)
    chol = torch.linalg.cholesky(k)
    resid = v.unsqueeze(0) - torch.stack([m.mean_module(u) for m in models])
    w = torch.linalg.solve_triangular(chol, resid.unsqueeze(-1), upper=False)[..., 0]
    loglik = -0.5 * (w**2).sum(-1) - torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) - 0.5 * n * _LOG_2PI
    priors = torch.stack([sum(prior.log_prob(closure(module)).sum() for _, module, prior, closure, _ in m.named_priors())
                          for m in models])
    return -(loglik + priors) / n


class _Members:
    """The B models and the flat, padded parameter vectors the batched optimiser sees."""

    def __init__(self, plans: list[FitPlan]) -> None:
        self.owner: list[int] = []
        self.models: list[StructuredGP] = []
        for i, plan in enumerate(plans):
            for state in plan.starts:
                self.owner.append(i)
                self.models.append(plan.start_model(state))
        self.params: list[list[Tensor]] = []
        self.bounds: list[list[tuple[float | None, float | None]]] = []
        for plan, model in zip((plans[i] for i in self.owner), self.models):
            named, bounds = get_parameters_and_bounds(plan.mll(model))
            chosen = [(name, p) for name, p in named.items() if p.requires_grad]
            self.params.append([p for _, p in chosen])
            self.bounds.append([b for name, p in chosen for b in _expand(bounds.get(name), p.numel())])
        self.width = max(sum(p.numel() for p in ps) for ps in self.params)

    def x0(self) -> np.ndarray:
        out = np.zeros((len(self.models), self.width))
        for b, ps in enumerate(self.params):
            flat = torch.cat([p.detach().reshape(-1) for p in ps]).cpu().numpy()
            out[b, : len(flat)] = flat
        return out

    def check_unbounded(self) -> None:
        """GPyTorch's interval constraints are enforced by transforms, so the raw parameters are
        unbounded; the batched optimiser takes one set of bounds for all members, and padding
        (zero gradient) stays at 0 without one."""
        if any(math.isfinite(b) for bounds in self.bounds for pair in bounds for b in pair if b is not None):
            raise ValueError("batched fitting needs unbounded raw parameters")

    def load(self, b: int, x: np.ndarray) -> None:
        with torch.no_grad():
            at = 0
            for p in self.params[b]:
                k = p.numel()
                p.copy_(torch.as_tensor(x[at : at + k], dtype=p.dtype, device=p.device).reshape(p.shape))
                at += k


def _expand(bound: tuple | None, count: int) -> list[tuple[float | None, float | None]]:
    if bound is None:
        return [(None, None)] * count
    lo, hi = bound
    lo_v = None if lo is None else torch.as_tensor(lo).reshape(-1).tolist()
    hi_v = None if hi is None else torch.as_tensor(hi).reshape(-1).tolist()
    return [(None if lo_v is None else lo_v[i % len(lo_v)], None if hi_v is None else hi_v[i % len(hi_v)])
            for i in range(count)]


def fit_hypotheses_batched(plans: list[FitPlan], settings: FitSettings) -> list[Fit | FitError]:
    """Run every start of every plan in one batched L-BFGS-B; each plan's best start as a :class:`Fit`
    (or the :class:`FitError` of a plan whose every start failed), in the order of ``plans``."""
    if any(p.z is not None for p in plans):
        raise ValueError("batched fitting is exact inference only")
    u, v = plans[0].u, plans[0].v
    if any(p.u is not u or not torch.equal(p.v, v) for p in plans):
        raise ValueError("batched fitting needs every plan on the same data")
    members = _Members(plans)
    failed: dict[int, str] = {}

    def evaluate(models: list[StructuredGP]) -> Tensor:
        for m in models:
            m.zero_grad()
        with torch.enable_grad():
            values = negative_log_posteriors(models, u, v)
            values.sum().backward()
        return values.detach()

    def func(x: np.ndarray, batch_indices) -> tuple[np.ndarray, np.ndarray]:
        idx = [int(i) for i in batch_indices]
        for row, b in enumerate(idx):
            members.load(b, x[row])
        f = np.full(len(idx), np.inf)
        g = np.zeros((len(idx), members.width))
        live = [b for b in idx if b not in failed]
        try:
            values = dict(zip(live, evaluate([members.models[b] for b in live]).tolist()))
        except (RuntimeError, ValueError):  # a Cholesky failure: find whose, one by one
            values = {}
            for b in live:
                try:
                    values[b] = float(evaluate([members.models[b]])[0])
                except (RuntimeError, ValueError) as exc:
                    failed[b] = f"{type(exc).__name__}: {exc}"
        for row, b in enumerate(idx):
            if b not in values:
                continue
            grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in members.params[b]]
            flat = torch.cat(grads).detach().cpu().numpy()
            f[row] = values[b]
            g[row, : len(flat)] = flat
        return f, g

    members.check_unbounded()
    xs, _, results = fmin_l_bfgs_b_batched(func, members.x0(), maxiter=settings.maxiter, pass_batch_indices=True)
    outcomes: list[list] = [[] for _ in plans]
    for b, model in enumerate(members.models):
        plan = plans[members.owner[b]]
        if b in failed:
            outcomes[members.owner[b]].append(failed[b])
            continue
        members.load(b, xs[b])
        try:
            outcomes[members.owner[b]].append(plan.outcome(model, plan.mll(model), results[b].get("warnflag") == 1))
        except (RuntimeError, ValueError) as exc:
            outcomes[members.owner[b]].append(f"{type(exc).__name__}: {exc}")
    fits: list[Fit | FitError] = []
    for plan, outs in zip(plans, outcomes):
        try:
            fits.append(plan.best(outs))
        except FitError as exc:
            fits.append(exc)
    return fits
