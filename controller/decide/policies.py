"""Hypothesis-selection policies: which hypothesis drives the next measurement and which get refit.

=================== ==========================================================
``epsilon-greedy``  the hypothesis-learning paper's bandit (Ziatdinov et al.,
                    arXiv 2112.06649): after a warm-up that tries each
                    hypothesis, pick a random one with probability epsilon,
                    else the one with the highest average reward; refit only
                    it; reward 1 when its integrated posterior variance went
                    down after the measurement, else 0.
``discriminate``    refit every hypothesis every step and measure where they
                    disagree most relative to their uncertainty, weighted by
                    their posterior probabilities (Box-Hill; see
                    :mod:`abduce.controller.decide.acquisition`).
=================== ==========================================================

Baselines, for sweeps (they choose points without looking at the
hypotheses; every hypothesis is still fitted and scored on the data they
gather, so their identification can be compared):

=================== ==========================================================
``random``          a uniformly random unmeasured candidate (a random point
                    of the box) each step.
``grid``            a uniform grid refined step by step: the unscrambled
                    Sobol sequence (in 1D the dyadic grid 1/2, 1/4, 3/4,
                    1/8, ...), snapped to the nearest unmeasured candidate.
``plain-gp``        one plain GP (constant mean, Matern-5/2, no physics),
                    refitted each step, measured where its posterior
                    variance is largest.
=================== ==========================================================
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from abduce.controller.errors import ConfigError
from abduce.controller.registry import Registry


@dataclass(frozen=True)
class PolicyView:
    """What a policy may look at when it chooses.

    Attributes:
        probabilities: posterior probability of each hypothesis.
        times_chosen: how often each hypothesis drove a measurement.
        mean_reward: average reward of each (NaN where never rewarded).
    """

    probabilities: tuple[float, ...]
    times_chosen: tuple[int, ...]
    mean_reward: tuple[float, ...]


@dataclass(frozen=True)
class SelectionContext:
    """What a baseline policy sees when it picks a point itself.

    Attributes:
        points: ``N x d`` candidates in unit coordinates (finite space), or the
            Sobol reference points of a box.
        finite: whether ``points`` are the candidates (else pick any unit point).
        measured: indices of measured candidates (finite spaces).
        u: ``n x d`` measured points, unit coordinates; ``y``: ``n`` values.
        step: the step being asked for; ``rng``: seeded for this step.
    """

    points: Tensor
    finite: bool
    measured: tuple[int, ...]
    u: Tensor
    y: Tensor
    step: int
    rng: np.random.Generator


class Policy(ABC):
    """Chooses the driving hypothesis (or None: all of them) and the ones to refit.

    A baseline policy also overrides :meth:`select` to pick the point itself.
    """

    name: ClassVar[str]
    default_acquisition: ClassVar[str]
    rewarded: ClassVar[bool] = False

    @abstractmethod
    def choose(self, view: PolicyView, rng: np.random.Generator) -> tuple[int | None, str]:
        """Returns ``(driver index or None, reason)``."""

    @abstractmethod
    def refit(self, driver: int | None, k: int) -> tuple[int, ...]:
        """Indices of the hypotheses to refit after the driver's measurement arrives."""

    def select(self, ctx: SelectionContext) -> int | Tensor | None:
        """A candidate index (finite space) or a ``d`` unit point (box); None = use the acquisition."""
        return None


POLICIES: Registry[type[Policy]] = Registry("policy")


@POLICIES.register("epsilon-greedy")
@dataclass
class EpsilonGreedy(Policy):
    """Epsilon-greedy over average rewards, with a warm-up of ``warmup`` turns per hypothesis.

    Ties in average reward go to the hypothesis with the higher posterior probability.
    """

    epsilon: float = 0.1
    warmup: int = 1
    name: ClassVar[str] = "epsilon-greedy"
    default_acquisition: ClassVar[str] = "variance"
    rewarded: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}")

    def choose(self, view: PolicyView, rng: np.random.Generator) -> tuple[int | None, str]:
        for i, count in enumerate(view.times_chosen):
            if count < self.warmup:
                return i, "warm-up"
        k = len(view.times_chosen)
        if rng.random() < self.epsilon:
            return int(rng.integers(k)), "explore"
        rewards = [r if not math.isnan(r) else -math.inf for r in view.mean_reward]
        best = max(range(k), key=lambda i: (rewards[i], view.probabilities[i], -i))
        return best, "exploit"

    def refit(self, driver: int | None, k: int) -> tuple[int, ...]:
        return (driver,) if driver is not None else tuple(range(k))


@POLICIES.register("discriminate")
@dataclass
class Discriminate(Policy):
    """Refit all hypotheses each step; the acquisition looks at all of them."""

    name: ClassVar[str] = "discriminate"
    default_acquisition: ClassVar[str] = "discriminate"

    def choose(self, view: PolicyView, rng: np.random.Generator) -> tuple[int | None, str]:
        return None, "discriminate"

    def refit(self, driver: int | None, k: int) -> tuple[int, ...]:
        return tuple(range(k))


class _Baseline(Policy):
    """Chooses points without the hypotheses; refits them all each step (as ``discriminate``)."""

    default_acquisition: ClassVar[str] = "variance"  # unused: select() always answers

    def choose(self, view: PolicyView, rng: np.random.Generator) -> tuple[int | None, str]:
        return None, self.name

    def refit(self, driver: int | None, k: int) -> tuple[int, ...]:
        return tuple(range(k))

    @staticmethod
    def _nearest_unmeasured(ctx: SelectionContext, target: Tensor) -> int:
        dist = ((ctx.points - target.to(ctx.points)) ** 2).sum(-1)
        if ctx.measured:
            dist[list(ctx.measured)] = math.inf
        return int(torch.argmin(dist))


@POLICIES.register("random")
@dataclass
class RandomSampling(_Baseline):
    """A uniformly random unmeasured candidate (or point of the box)."""

    name: ClassVar[str] = "random"

    def select(self, ctx: SelectionContext) -> int | Tensor:
        if not ctx.finite:
            return torch.as_tensor(ctx.rng.random(ctx.points.shape[-1]))
        free = np.setdiff1d(np.arange(len(ctx.points)), np.asarray(ctx.measured, dtype=int))
        return int(ctx.rng.choice(free))


@POLICIES.register("grid")
@dataclass
class UniformGrid(_Baseline):
    """Point ``step`` of the unscrambled Sobol sequence (a uniform grid refined as it goes)."""

    name: ClassVar[str] = "grid"

    def select(self, ctx: SelectionContext) -> int | Tensor:
        d = ctx.points.shape[-1]
        sobol = torch.quasirandom.SobolEngine(d, scramble=False)
        sobol.fast_forward(ctx.step + 1)  # skip the origin: 1/2 first, then 1/4, 3/4, ...
        target = sobol.draw(1, dtype=torch.float64)[0]
        return self._nearest_unmeasured(ctx, target) if ctx.finite else target


@POLICIES.register("plain-gp")
@dataclass
class PlainGP(_Baseline):
    """Maximum posterior variance of one plain GP (BoTorch's ``SingleTaskGP``, no physical mean)."""

    name: ClassVar[str] = "plain-gp"

    def select(self, ctx: SelectionContext) -> int | Tensor:
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from gpytorch.mlls import ExactMarginalLogLikelihood

        y = ctx.y.unsqueeze(-1)
        model = SingleTaskGP(ctx.u, y)  # standardises y, Matern-5/2 with BoTorch's default priors
        with torch.random.fork_rng():
            torch.manual_seed(int(ctx.rng.integers(2**31 - 1)))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        model.eval()
        var = torch.cat([model.posterior(chunk).variance.squeeze(-1) for chunk in ctx.points.split(4096)])
        if ctx.finite and ctx.measured:
            var[list(ctx.measured)] = -math.inf
        best = int(torch.argmax(var))
        return best if ctx.finite else ctx.points[best]
