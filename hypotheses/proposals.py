"""A cheap screen of composed hypotheses on the data so far: which few deserve a full fit.

For each candidate ``h``, with the kernel and noise at their prior medians (shared by every candidate,
so one Cholesky factor ``L`` of ``K + sigma_n^2 I`` serves all) and ``S`` scrambled-Sobol draws
``theta_s`` from its prior::

    screen(h) = log (1/S) sum_s exp(-0.5 |L^-1 (v - m(u; theta_s))|^2)  +  log pi(h)

the prior-draw Monte Carlo estimate of its evidence at that kernel (up to the constant
``-0.5 log det - n/2 log 2 pi``, the same for every candidate), plus its complexity prior
(:func:`abduce.hypotheses.grammar.prior_weight`). The estimate is biased low (a posterior narrower
than the prior is hit by few draws; more parameters, fewer hits), so it only ranks; the best few get a
MAP fit and the full evidence (:class:`abduce.hypotheses.belief.Belief`). Cost: one triangular solve of
``n x S`` per candidate, ``O(n^2 S)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from abduce.hypotheses.declaration import Frame, Hypothesis, KernelPriors
from abduce.hypotheses.fitting import data_scale, prior_draws
from abduce.hypotheses.model import StructuredGP, known_noise, noise_matrix, relative_mean


def screen(
    candidates: Sequence[Hypothesis],
    u: Tensor,
    y: Tensor,
    lo: tuple[float, ...],
    span: tuple[float, ...],
    priors: KernelPriors,
    draws: int = 1024,
    seed: int = 0,
    y_sd: Tensor | None = None,
) -> list[float]:
    """The screening score of each candidate (see the module docstring), without its complexity prior.

    Args:
        u: ``n x d`` unit coordinates; y: ``n`` physical values; y_sd: their known sds (NaN: none) or None.
        priors: the kernel priors whose medians the screen holds the kernel at.
    """
    if not candidates:
        return []
    frame = Frame(lo=lo, span=span, s=data_scale(y))
    v = y / frame.s
    with torch.no_grad():
        base = StructuredGP(candidates[0], frame, u, v.unsqueeze(-1), priors, known_noise(y_sd, frame.s))
        chol = torch.linalg.cholesky(base.covar_module(u).to_dense() + noise_matrix(base, len(u), u.device))
        out = []
        for h in candidates:
            theta = prior_draws(h.in_frame(frame), draws, seed, u.device)
            means = relative_mean(h, frame, u, theta)  # S x n
            w = torch.linalg.solve_triangular(chol, (v.unsqueeze(0) - means).T, upper=False)
            loglik = -0.5 * (w**2).sum(0)
            loglik = torch.where(torch.isfinite(loglik), loglik, torch.full_like(loglik, -math.inf))
            out.append(float(torch.logsumexp(loglik, 0)) - math.log(draws))
        return out
