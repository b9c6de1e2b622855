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
priors included), computed functionally from one ``B x width`` tensor of raw
parameters: every column through its sigmoid interval and its prior at once
(:func:`_terms`), each hypothesis's mean once for all its starts, one
backward pass. No GPyTorch module is called during the optimisation; that
per-module overhead was most of an evaluation at small n. The problems share no parameter, so every batch member
follows the path its one-by-one run would: results agree to rounding
(tests/hypotheses/test_batched.py: log posterior within 1e-6 per point,
parameters within 1e-4 where a start converged). The batch runs until its
slowest member stops, so it pays only while evaluations are cheap: the
campaign batches a step's refits while ``n <= CampaignSettings.batch_fit_below``
(measured in tests/benchmarks/batched_fit.py). Exact inference only.
"""

from __future__ import annotations

import logging
import math
from itertools import groupby

import numpy as np
import torch
from botorch.optim.batched_lbfgs_b import fmin_l_bfgs_b_batched
from botorch.optim.utils import get_parameters_and_bounds
from gpytorch.constraints import Interval
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior, NormalPrior
from torch import Tensor

from abduce.hypotheses.errors import FitError
from abduce.hypotheses.fitting import Fit, FitPlan, FitSettings, fit_planned, one_blas_thread
from abduce.hypotheses.model import DTYPE, LOG_2PI, StructuredGP, relative_mean
from abduce.hypotheses.occam import matern_correlation
from abduce.hypotheses.transfer import GPyTorchMixture

_log = logging.getLogger("abduce.fitting")


def _matern(s: Tensor, batch: _Rows) -> Tensor:
    """GPyTorch's Matern correlation for each member's ``nu`` (``batch.nu``, ``B``), squared distances
    ``B x n x n`` (> 0). The distinct values come from the layouts (Python floats), so the objective's hot
    path asks the device for none of them."""
    out = None
    for value in sorted({layout.nu for layout in batch.layouts}):
        k = matern_correlation(s, value)
        out = k if out is None else torch.where((batch.nu == value).view(-1, 1, 1), k, out)
    return out


class _Unbatchable(ValueError):
    """A model the batched objective cannot compute: its plans are fitted one by one instead."""


def _one_by_one(plan: FitPlan, settings: FitSettings) -> Fit | FitError:
    try:
        return fit_planned(plan, settings)
    except FitError as exc:
        return exc


class _Layout:
    """How one plan's raw parameters sit in a row of the batched optimiser's ``x`` (its width is
    ``d + 2 + free``: lengthscales, outputscale, noise, then the hypothesis's free parameters), and
    the constants that apply the plan's constraints and priors to many rows at once (:func:`_terms`).

    One model per plan serves all its starts: rows are loaded into it only to report an optimised
    start. Evaluations never touch it (see :func:`_objective`)."""

    def __init__(self, model: StructuredGP) -> None:
        self.model = model
        self.hypothesis, self.frame = model.hypothesis, model.frame
        kern, lik, mean = model.covar_module, model.likelihood.noise_covar, model.mean_module
        self.nu = float(kern.base_kernel.nu)
        self._params = [kern.base_kernel.raw_lengthscale, kern.raw_outputscale, lik.raw_noise]
        self._params += [getattr(mean, f"raw_{p.name}") for p in self.hypothesis.free]
        self._constraints = [
            kern.base_kernel.raw_lengthscale_constraint,
            kern.raw_outputscale_constraint,
            lik.raw_noise_constraint,
        ]
        self._constraints += [getattr(mean, f"raw_{p.name}_constraint") for p in self.hypothesis.free]
        self._priors = [kern.base_kernel.lengthscale_prior, kern.outputscale_prior, lik.noise_prior]
        self._priors += [getattr(mean, f"{p.name}_prior", None) for p in self.hypothesis.free]
        # a prior without a closed form in _terms (a transferred mixture, hypotheses/transfer.py): its column
        # and its density, added to the rows of this layout in _objective
        self.densities = [
            (at, prior.mixture)
            for at, prior in enumerate(self._priors[3:], start=self._params[0].numel() + 2)
            if isinstance(prior, GPyTorchMixture)
        ]
        names = {id(p): name for name, p in model.named_parameters()}
        self._keys = [names[id(p)] for p in self._params]  # the parameters' keys in a state dict
        self.d = self._params[0].numel()
        self.width = self.d + 2 + len(self.hypothesis.free)
        # everything the exact marginal likelihood optimises and every prior it adds, or refuse
        named, bounds = get_parameters_and_bounds(ExactMarginalLogLikelihood(model.likelihood, model))
        optimised = {id(p) for p in named.values() if p.requires_grad}
        if optimised != {id(p) for p in self._params}:
            raise _Unbatchable(f"{self.hypothesis.name}: batched fitting does not know every parameter of this model")
        if sum(1 for _ in model.named_priors()) != sum(p is not None for p in self._priors):
            raise _Unbatchable(f"{self.hypothesis.name}: batched fitting does not know every prior of this model")
        # GPyTorch's interval constraints are enforced by transforms, so the raw parameters are
        # unbounded; padding columns (zero gradient) then stay where they start
        if any(
            b is not None and math.isfinite(b)
            for pair in bounds.values()
            for t in pair
            if t is not None
            for b in torch.as_tensor(t).reshape(-1).tolist()
        ):
            raise _Unbatchable("batched fitting needs unbounded raw parameters")
        self.constants = self._constants()

    def pack_state(self, state: dict[str, Tensor]) -> Tensor:
        """A state dict's raw parameters as one row (``width``), without loading it."""
        return torch.cat([state[k].detach().reshape(-1) for k in self._keys])

    def load(self, row: np.ndarray | Tensor) -> None:
        """Set the model's raw parameters from a row."""
        row = torch.as_tensor(row[: self.width], dtype=DTYPE, device=self._params[0].device)
        with torch.no_grad():
            at = 0
            for p in self._params:
                p.copy_(row[at : at + p.numel()].reshape(p.shape))
                at += p.numel()

    def _constants(self) -> Tensor:
        """Per column of a row: the interval's lower bound and width, the prior's kind (0 none,
        1 normal, 2 log-normal), its mean, variance and log standard deviation; ``6 x width``, float64.
        Each is the value GPyTorch computes with in its own dtype (its constraint and prior tensors may
        be float32), so :func:`_terms` reproduces ``Interval.transform`` and ``log_prob`` to rounding."""
        out = []
        for param, c, prior in zip(self._params, self._constraints, self._priors):
            if not (isinstance(c, Interval) and c.enforced and c._transform is torch.sigmoid):
                raise _Unbatchable(f"{self.hypothesis.name}: batched fitting needs sigmoid interval constraints")
            if isinstance(prior, GPyTorchMixture):
                prior = None  # its density is added apart (densities)
            if prior is not None and not isinstance(prior, (NormalPrior, LogNormalPrior)):
                raise _Unbatchable(
                    f"{self.hypothesis.name}: batched fitting knows normal, log-normal and transferred priors only"
                )
            lo = c.lower_bound.expand(param.shape).reshape(-1)
            width = (c.upper_bound - c.lower_bound).expand(param.shape).reshape(-1)
            for j in range(param.numel()):
                if prior is None:
                    kind, mu, var, log_sigma = 0, 0.0, 1.0, 0.0
                else:
                    base = prior.base_dist if isinstance(prior, LogNormalPrior) else prior
                    kind = 2 if isinstance(prior, LogNormalPrior) else 1
                    mu, var, log_sigma = base.loc, base.scale**2, torch.log(base.scale)
                out.append([float(t) for t in (lo[j], width[j], kind, mu, var, log_sigma)])
        return torch.tensor(out, dtype=DTYPE).T.contiguous()


def _terms(raw: Tensor, consts: Tensor) -> tuple[Tensor, Tensor]:
    """Values ``S x W`` and log priors ``S`` of raw rows ``S x W`` (``consts``: ``6 x S x W``, columns of
    :meth:`_Layout._constants`, padding ``(0, 1, 0, 0, 1, 0)``): GPyTorch's sigmoid ``Interval``
    transform and its normal and log-normal densities in closed form (without ``torch.distributions``'
    per-call overhead, most of a small-n evaluation)::

        value = lo + width sigmoid(raw)
        log p = -(z - mu)^2 / (2 var) - log sigma - log sqrt(2 pi) [- z],   z = value or log value
    """
    lo, width, kind, mu, var, log_sigma = consts
    value = torch.sigmoid(raw) * width + lo
    lognormal = kind == 2
    z = torch.where(lognormal, torch.log(torch.where(lognormal, value, torch.ones_like(value))), value)
    density = (
        -((z - mu) ** 2) / (2 * var) - log_sigma - math.log(math.sqrt(2 * math.pi)) - torch.where(lognormal, z, 0.0)
    )
    return value, torch.where(kind == 0, 0.0, density).sum(-1)


class _Rows:
    """What the rows of a batch are: the layout of each row (rows of one layout consecutive), their
    per-column constants ``6 x B x width`` (:meth:`_Layout._constants`, padded with
    ``(0, 1, 0, 0, 1, 0)``) and their Matern smoothness ``B``."""

    def __init__(
        self, layouts: list[_Layout], width: int, device, consts: Tensor | None = None, nu: Tensor | None = None
    ) -> None:
        self.layouts = layouts
        self.runs = [(layout, sum(1 for _ in run)) for layout, run in groupby(layouts)]
        if consts is None:
            pad = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0], dtype=DTYPE).view(6, 1, 1)
            consts = pad.expand(6, len(layouts), width).clone()
            for b, layout in enumerate(layouts):
                consts[:, b, : layout.width] = layout.constants
            consts = consts.to(device)
        self.consts = consts
        self.nu = nu if nu is not None else torch.tensor([layout.nu for layout in layouts], dtype=DTYPE, device=device)

    def take(self, idx: list[int]) -> _Rows:
        """The rows ``idx`` (in that order)."""
        return _Rows([self.layouts[i] for i in idx], 0, None, self.consts[:, idx], self.nu[idx])


def _objective(batch: _Rows, rows: Tensor, u: Tensor, v: Tensor, known: Tensor | None = None) -> Tensor:
    """The negative log posteriors per point of raw ``rows`` (``B x width``, described by ``batch``):
    every column of every row transformed, and its prior added, at once; each hypothesis's mean once
    for its rows; one batched Cholesky of ``K_b + sigma_n,b^2 I + diag(known)`` (``known``: the ``n``
    readings' known noise variances, relative frame; None: none)."""
    n = len(u)
    d = batch.layouts[0].d
    values, log_prior = _terms(rows, batch.consts)
    ls, scale, noise = values[:, :d], values[:, d], values[:, d + 1]
    means, extra, at = [], [], 0
    for layout, count in batch.runs:
        part = values[at : at + count, d + 2 :]
        relative = {p.name: part[:, j : j + 1] for j, p in enumerate(layout.hypothesis.free)}
        means.append(relative_mean(layout.hypothesis, layout.frame, u, relative).expand(count, n))
        density = torch.zeros(count, dtype=values.dtype, device=values.device)
        for column, prior in layout.densities:
            density = density + prior.log_prob(values[at : at + count, column], prior.lo, prior.hi)
        extra.append(density)
        at += count
    mean = torch.cat(means)
    log_prior = log_prior + torch.cat(extra)
    x = (u - u.mean(0)).unsqueeze(0) / ls.unsqueeze(1)  # B x n x d
    s = (x.unsqueeze(2) - x.unsqueeze(1)).pow(2).sum(-1).clamp_min(1e-30)
    k = scale.view(-1, 1, 1) * _matern(s, batch) + noise.view(-1, 1, 1) * torch.eye(n, dtype=u.dtype, device=u.device)
    if known is not None:
        k = k + torch.diag(known)
    chol = torch.linalg.cholesky(k)
    w = torch.linalg.solve_triangular(chol, (v.unsqueeze(0) - mean).unsqueeze(-1), upper=False)[..., 0]
    loglik = -0.5 * (w**2).sum(-1) - torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) - 0.5 * n * LOG_2PI
    return -(loglik + log_prior) / n


def negative_log_posteriors(models: list[StructuredGP], u: Tensor, v: Tensor) -> Tensor:
    """``B`` values of ``-ExactMarginalLogLikelihood`` (per point, priors included) at the models'
    current parameters, computed together as the batched optimiser computes them."""
    layouts = [_Layout(m) for m in models]
    width = max(layout.width for layout in layouts)
    rows = torch.stack(
        [
            torch.nn.functional.pad(layout.pack_state(layout.model.state_dict()), (0, width - layout.width))
            for layout in layouts
        ]
    )
    return _objective(_Rows(layouts, width, u.device), rows, u, v, models[0].likelihood.known)


class _Members:
    """The B = sum of starts members: which plan each belongs to, and their padded rows."""

    def __init__(self, plans: list[FitPlan]) -> None:
        self.layouts: list[_Layout] = []
        self.owner: list[int] = []
        rows: list[Tensor] = []
        for i, plan in enumerate(plans):
            model = plan.model if plan.model is not None else plan.start_model(plan.starts[0])
            model.train()
            layout = _Layout(model)
            self.layouts.append(layout)
            for state in plan.starts:
                rows.append(layout.pack_state(state))
                self.owner.append(i)
        self.width = max(layout.width for layout in self.layouts)
        self.rows = _Rows([self.layouts[i] for i in self.owner], self.width, plans[0].u.device)
        self.x0 = np.zeros((len(rows), self.width))  # the starts, padded
        for b, row in enumerate(rows):
            self.x0[b, : len(row)] = row.cpu().numpy()


def fit_hypotheses_batched(plans: list[FitPlan], settings: FitSettings) -> list[Fit | FitError]:
    """Run every start of every plan in one batched L-BFGS-B; each plan's best start as a :class:`Fit`
    (or the :class:`FitError` of a plan whose every start failed), in the order of ``plans``."""
    if any(p.z is not None for p in plans):
        raise ValueError("batched fitting is exact inference only")
    u, v = plans[0].u, plans[0].v
    known = plans[0].known
    if any(p.u is not u or not torch.equal(p.v, v) for p in plans):
        raise ValueError("batched fitting needs every plan on the same data")
    if any((p.known is None) != (known is None) for p in plans):
        raise ValueError("batched fitting needs every plan with the same known noise")
    try:
        members = _Members(plans)
    except _Unbatchable as exc:  # a constraint or prior the batched objective does not know
        _log.info("fitting one by one: %s", exc)
        return [_one_by_one(plan, settings) for plan in plans]
    failed: dict[int, str] = {}

    def evaluate(rows: np.ndarray, live: list[int]) -> tuple[np.ndarray, np.ndarray]:
        x = torch.tensor(rows, dtype=u.dtype, device=u.device, requires_grad=True)
        with torch.enable_grad():
            batch = members.rows if len(live) == len(members.owner) else members.rows.take(live)
            values = _objective(batch, x, u, v, known)
            values.sum().backward()
        return values.detach().cpu().numpy(), x.grad.cpu().numpy()  # type: ignore[union-attr]

    def func(x: np.ndarray, batch_indices) -> tuple[np.ndarray, np.ndarray]:
        idx = [int(i) for i in batch_indices]
        f = np.full(len(idx), np.inf)
        g = np.zeros((len(idx), members.width))
        rows = [r for r, b in enumerate(idx) if b not in failed]
        if not rows:  # every member asked about has failed
            return f, g
        try:
            f[rows], g[rows] = evaluate(x[rows], [idx[r] for r in rows])
        except (RuntimeError, ValueError):  # a Cholesky failure: find whose, one by one
            for r in rows:
                try:
                    f[r : r + 1], g[r : r + 1] = evaluate(x[r : r + 1], [idx[r]])
                except (RuntimeError, ValueError) as exc:
                    failed[idx[r]] = f"{type(exc).__name__}: {exc}"
        return f, g

    with one_blas_thread():
        xs, fs, results = fmin_l_bfgs_b_batched(
            func,
            members.x0,
            maxiter=settings.maxiter,
            pass_batch_indices=True,
            factr=settings.ftol / np.finfo(float).eps,
        )
    outcomes: list[list] = [[] for _ in plans]
    for b, owner in enumerate(members.owner):
        plan, layout = plans[owner], members.layouts[owner]
        if b in failed:
            outcomes[owner].append(failed[b])
            continue
        layout.load(xs[b])
        try:
            # the optimiser's last value is the log posterior (the objective equals GPyTorch's to 1e-9)
            value = -float(fs[b]) if math.isfinite(float(fs[b])) else None
            outcomes[owner].append(plan.outcome(layout.model, results[b].get("warnflag") == 1, value=value))
        except (RuntimeError, ValueError) as exc:
            outcomes[owner].append(f"{type(exc).__name__}: {exc}")
    fits: list[Fit | FitError] = []
    for plan, outs, layout in zip(plans, outcomes, members.layouts):
        try:
            fits.append(plan.best(outs, model=layout.model))
        except FitError as exc:
            fits.append(exc)
    return fits
