"""Acquisitions: where to measure next, given the fitted hypotheses.

Each acquisition works two ways over the same maths:

* on a *finite candidate set* it scores every candidate at once from the
  rank-1-updated :class:`~abduce.hypotheses.posterior.CandidatePosterior`
  (``O(n N)`` a step), and
* on a *continuous box* it hands BoTorch an ``AcquisitionFunction`` for
  ``optimize_acqf``: BoTorch's own where one fits (``PosteriorStandardDeviation``,
  ``UpperConfidenceBound``), or the closed forms below.

Registered by name:

=============== ======================================================================
``variance``    posterior variance of one hypothesis (the paper's uncertainty exploration)
``ucb``         ``mean + 2 sd`` of one hypothesis (looks for maxima)
``nipv``        reduction of the posterior variance integrated over the space
``discriminate`` Box-Hill divergence between all hypotheses + weighted information gain
``model-information`` the expected information of the next reading about *which* hypothesis is true
=============== ======================================================================
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from botorch.acquisition import AcquisitionFunction, PosteriorStandardDeviation, UpperConfidenceBound
from botorch.models.model_list_gp_regression import ModelListGP
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from abduce.controller.registry import Registry
from abduce.hypotheses.model import StructuredGP
from abduce.hypotheses.posterior import PosteriorAtPoints, integrated_variance_reduction

UCB_BETA = 4.0  # mean + sqrt(4) sd


def per_point(noise: Tensor) -> Tensor:
    """Noise variances ``K`` (one per hypothesis) or ``K x b`` (per point too) as ``K x b``-broadcastable."""
    return noise if noise.dim() == 2 else noise.unsqueeze(-1)


def discrimination_score(mean: Tensor, var: Tensor, noise: Tensor, weights: Tensor) -> Tensor:
    """Probability-weighted Box-Hill divergence plus the weighted information gain.

    With ``s_i^2 = var_i + noise_i`` the predictive variance of hypothesis i,
    the symmetric Kullback-Leibler divergence of two predictive normals is

        J_ij = 1/2 [ (s_i^2 - s_j^2)^2 / (s_i^2 s_j^2) + (mu_i - mu_j)^2 (1/s_i^2 + 1/s_j^2) ]

    and the score (nats) is ``sum_{i<j} p_i p_j J_ij + sum_i p_i 1/2 log(1 + var_i / noise_i)``.
    The first term (Box & Hill 1967) measures where the hypotheses disagree
    relative to their uncertainty; it fades as one hypothesis takes all the
    probability, and the second, the expected information about the function
    under each hypothesis, then pins the leader's parameters.

    Args:
        mean, var: ``K x b`` predictive means and latent variances (one unit system).
        noise: ``K`` noise variances, or ``K x b`` (a reading's noise differing from point to point: another
            channel's).
        weights: ``K`` posterior probabilities.

    Returns:
        ``b`` scores.
    """
    noise = per_point(noise)
    s2 = var + noise
    score = (weights.unsqueeze(-1) * 0.5 * torch.log1p(var / noise)).sum(0)
    for i, j in itertools.combinations(range(len(weights)), 2):
        j_ij = 0.5 * ((s2[i] - s2[j]) ** 2 / (s2[i] * s2[j]) + (mean[i] - mean[j]) ** 2 * (1 / s2[i] + 1 / s2[j]))
        score = score + weights[i] * weights[j] * j_ij
    return score


GAUSS_HERMITE_NODES = 32  # per hypothesis: ~1e-5 relative for mixtures of normals of widths 1:5 (tested); ample to rank


def model_information(
    mean: Tensor, var: Tensor, noise: Tensor, weights: Tensor, nodes: int = GAUSS_HERMITE_NODES
) -> Tensor:
    """The mutual information (nats) between the next reading ``y`` at each point and the hypothesis index.

    Each hypothesis predicts ``y ~ N(mu_i, s_i^2)``, ``s_i^2 = var_i + noise_i``; with probabilities
    ``p_i`` the reading follows the mixture ``q(y) = sum_i p_i N(y; mu_i, s_i^2)``, and

        I(y; H) = H[q] - sum_i p_i H[N(mu_i, s_i^2)]
                = sum_i p_i E_{y ~ N_i}[ log N_i(y) - log q(y) ]

    (Bayesian active model selection, Gardner et al., NeurIPS 2015). Each expectation is a
    Gauss-Hermite quadrature over its own normal, ``nodes`` points. It is 0 where the hypotheses
    predict alike or one holds all the probability, and at most the entropy of ``p``.

    Args:
        mean, var: ``K x b`` predictive means and latent variances (one unit system).
        noise: ``K`` noise variances, or ``K x b``.
        weights: ``K`` probabilities (renormalised here).

    Returns:
        ``b`` values in nats.
    """
    import numpy as np

    t, w = np.polynomial.hermite.hermgauss(nodes)
    t = torch.as_tensor(t, dtype=mean.dtype, device=mean.device)
    w = torch.as_tensor(w, dtype=mean.dtype, device=mean.device) / math.sqrt(math.pi)
    p = (weights / weights.sum()).to(mean)
    s2 = var + per_point(noise)  # K x b
    y = mean.unsqueeze(-1) + (2 * s2).sqrt().unsqueeze(-1) * t  # K x b x Q: nodes of each normal
    # log N_j(y) for every component j at every node of every component i: K_j x K_i x b x Q
    log_n = -0.5 * (
        (y.unsqueeze(0) - mean[:, None, :, None]) ** 2 / s2[:, None, :, None]
        + torch.log(2 * math.pi * s2[:, None, :, None])
    )
    log_q = torch.logsumexp(torch.log(p.clamp_min(1e-300))[:, None, None, None] + log_n, dim=0)  # K_i x b x Q
    own = log_n.diagonal(dim1=0, dim2=1).permute(2, 0, 1)  # K_i x b x Q: log N_i at its own nodes
    return torch.einsum("i,ibq,q->b", p, own - log_q, w).clamp_min(0)


def predictive(models: list[StructuredGP], X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``K x b`` means and latent variances and ``K`` noise variances of K models at ``X`` (``b x 1 x d``),
    physical units (each model in its own relative frame)."""
    means, variances, noises = [], [], []
    for m in models:
        post = m.posterior(X)
        s = m.frame.s
        means.append(post.mean[..., 0, 0] * s)
        variances.append(post.variance[..., 0, 0] * s**2)
        noises.append(m.likelihood.noise.reshape(()) * s**2)
    return torch.stack(means), torch.stack(variances), torch.stack(noises)


def at_points(posteriors: list[PosteriorAtPoints], known: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The same from posteriors kept at a finite candidate set: ``K x N``, ``K x N``, ``K`` (``K x N`` with
    ``known``: ``N`` known noise variances of a reading at each point, physical units, added to each
    hypothesis's fitted noise)."""
    mean = torch.stack([p.mean for p in posteriors])
    var = torch.stack([p.var for p in posteriors])
    noise = torch.tensor([p.noise for p in posteriors], dtype=mean.dtype, device=mean.device)
    if known is not None:
        noise = noise.unsqueeze(-1) + known.to(noise)
    return mean, var, noise


class ModelDiscrimination(AcquisitionFunction):
    """:func:`discrimination_score` as a BoTorch acquisition over K structured GPs (``q = 1``).

    Args:
        models: the K fitted ``StructuredGP``s (each in its own relative frame).
        weights: ``K`` posterior probabilities.

    Example:
        >>> acq = ModelDiscrimination([gp_a, gp_b], torch.tensor([0.5, 0.5]))
        >>> acq(torch.rand(10, 1, 1, dtype=torch.float64)).shape
        torch.Size([10])
    """

    def __init__(self, models: list[StructuredGP], weights: Tensor) -> None:
        super().__init__(model=ModelListGP(*models))
        self.models = models
        self.register_buffer("weights", weights)

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: Tensor) -> Tensor:
        """``X``: ``b x 1 x d`` relative inputs -> ``b`` scores."""
        return discrimination_score(*predictive(self.models, X), self.weights)


class IntegratedVarianceReduction(AcquisitionFunction):
    """Closed-form ``qNegIntegratedPosteriorVariance`` for ``q = 1`` from one cached Cholesky factor.

    Returns the same value as BoTorch's ``qNegIntegratedPosteriorVariance``
    with ``mc_points = reference``: the negative mean latent posterior variance
    over the reference points after measuring ``x``, which for a GP does not
    depend on the value measured:

        NIPV(x) = -(1/M) sum_j [ var(r_j) - Cov(r_j, x)^2 / (var(x) + sigma_n^2) ]

    ``O(n^2 b + n M b)`` per batch, with no fantasy model and no sampling.

    Args:
        model: a fitted ``StructuredGP``.
        reference: ``M x d`` points the variance is integrated over.
    """

    def __init__(self, model: StructuredGP, reference: Tensor) -> None:
        super().__init__(model=model)
        train = model.train_inputs[0]
        self.kernel = model.covar_module
        self.noise = model.likelihood.noise.reshape(()).detach()
        with torch.no_grad():
            k = self.kernel(train).to_dense() + self.noise * torch.eye(
                len(train), dtype=train.dtype, device=train.device
            )
            self.chol = torch.linalg.cholesky(k)
            self.train = train
            self.reference = reference
            self.v_ref = torch.linalg.solve_triangular(self.chol, self.kernel(train, reference).to_dense(), upper=False)
            var_ref = self.kernel(reference, reference, diag=True).to_dense() - (self.v_ref**2).sum(0)
            self.iv_now = var_ref.clamp_min(0).mean()

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: Tensor) -> Tensor:
        """``X``: ``b x 1 x d`` -> ``b`` values of NIPV (higher is better)."""
        x = X[..., 0, :]
        v_x = torch.linalg.solve_triangular(self.chol, self.kernel(self.train, x).to_dense(), upper=False)
        var_x = (self.kernel(x, x, diag=True).to_dense() - (v_x**2).sum(0)).clamp_min(0)
        cross = self.kernel(self.reference, x).to_dense() - self.v_ref.T @ v_x
        return -(self.iv_now - integrated_variance_reduction(cross, var_x, self.noise))


@dataclass(frozen=True)
class Band:
    """A law's predictive at the candidates with its physical parameters integrated over their posterior
    (:meth:`abduce.hypotheses.belief.Belief.band`), in the shape :func:`at_points` reads: ``N`` means and
    latent variances, physical units, and the fitted noise variance."""

    mean: Tensor
    var: Tensor
    noise: float


class Acquisition(ABC):
    """Chooses the next point from the fitted hypotheses.

    ``driver`` is the index of the hypothesis the policy picked (the leader
    when the policy picked none); ``weights`` are the posterior probabilities.
    ``integrated``: on a finite space the campaign hands :meth:`score` each law's :class:`Band` (its physical
    parameters integrated over their posterior) instead of its posterior at the fitted parameters.
    """

    name: ClassVar[str]
    integrated: ClassVar[bool] = False

    @abstractmethod
    def score(
        self,
        posteriors: list[PosteriorAtPoints],
        driver: int,
        weights: Tensor,
        reference: Tensor,
        known: Tensor | None = None,
    ) -> Tensor:
        """``N`` scores over a finite candidate set (higher is better). ``known``: ``N`` known noise variances of
        a reading at each candidate (another channel's, :mod:`abduce.controller.core.channels`), physical
        units; None: the fitted noise alone. The acquisitions that weigh readings by their noise use it."""

    @abstractmethod
    def botorch(
        self, models: list[StructuredGP], driver: int, weights: Tensor, reference: Tensor
    ) -> AcquisitionFunction:
        """The same criterion as a BoTorch acquisition for ``optimize_acqf`` on a box."""


ACQUISITIONS: Registry[type[Acquisition]] = Registry("acquisition")


@ACQUISITIONS.register("variance")
class Variance(Acquisition):
    """Posterior variance of the driving hypothesis (uncertainty exploration, as in the paper)."""

    name = "variance"

    def score(self, posteriors, driver, weights, reference, known=None):
        return posteriors[driver].var

    def botorch(self, models, driver, weights, reference):
        return PosteriorStandardDeviation(models[driver])


@ACQUISITIONS.register("ucb")
class UCB(Acquisition):
    """Upper confidence bound ``mean + 2 sd`` of the driving hypothesis."""

    name = "ucb"

    def score(self, posteriors, driver, weights, reference, known=None):
        p = posteriors[driver]
        return p.mean + UCB_BETA**0.5 * p.var.sqrt()

    def botorch(self, models, driver, weights, reference):
        return UpperConfidenceBound(models[driver], beta=UCB_BETA)


@ACQUISITIONS.register("nipv")
class NIPV(Acquisition):
    """Reduction of the driving hypothesis's posterior variance integrated over the space."""

    name = "nipv"

    def score(self, posteriors, driver, weights, reference, known=None):
        return posteriors[driver].variance_reduction(reference)

    def botorch(self, models, driver, weights, reference):
        return IntegratedVarianceReduction(models[driver], reference)


@ACQUISITIONS.register("discriminate")
class Discriminate(Acquisition):
    """Where the hypotheses disagree most relative to their uncertainty (:func:`discrimination_score`)."""

    name = "discriminate"

    def score(self, posteriors, driver, weights, reference, known=None):
        mean, var, noise = at_points(posteriors, known)
        return discrimination_score(mean, var, noise, weights.to(mean))

    def botorch(self, models, driver, weights, reference):
        return ModelDiscrimination(models, weights)


class ModelInformationAcquisition(AcquisitionFunction):
    """:func:`model_information` as a BoTorch acquisition over K structured GPs (``q = 1``)."""

    def __init__(self, models: list[StructuredGP], weights: Tensor) -> None:
        super().__init__(model=ModelListGP(*models))
        self.models = models
        self.register_buffer("weights", weights)

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: Tensor) -> Tensor:
        """``X``: ``b x 1 x d`` relative inputs -> ``b`` values (nats)."""
        return model_information(*predictive(self.models, X), self.weights)


@ACQUISITIONS.register("model-information")
class ModelInformation(Acquisition):
    """Where the next reading says most about which hypothesis is true (:func:`model_information`), each law
    predicting with its physical parameters integrated over their posterior (a :class:`Band`), as Gardner et
    al. integrate each model's hyperparameters. Plugged in at the fit, a law with few readings on the
    explained channel predicted as if its parameters were known: the laws' predictions there looked far
    apart, and one reading was expected to settle the question alone (README, "Asking the question that
    decides"). On a box the BoTorch form plugs the fit in, and so do a batch's later points, scored on the
    laws fantasised at their fits (:mod:`abduce.controller.core.batch`)."""

    name = "model-information"
    integrated = True

    def score(self, posteriors, driver, weights, reference, known=None):
        mean, var, noise = at_points(posteriors, known)
        return model_information(mean, var, noise, weights.to(mean))

    def botorch(self, models, driver, weights, reference):
        return ModelInformationAcquisition(models, weights)
