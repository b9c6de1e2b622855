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
                    :mod:`abduce.controller.acquisition`).
=================== ==========================================================
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

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


class Policy(ABC):
    """Chooses the driving hypothesis (or None: all of them) and the ones to refit."""

    name: ClassVar[str]
    default_acquisition: ClassVar[str]
    rewarded: ClassVar[bool] = False

    @abstractmethod
    def choose(self, view: PolicyView, rng: np.random.Generator) -> tuple[int | None, str]:
        """Returns ``(driver index or None, reason)``."""

    @abstractmethod
    def refit(self, driver: int | None, k: int) -> tuple[int, ...]:
        """Indices of the hypotheses to refit after the driver's measurement arrives."""


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
