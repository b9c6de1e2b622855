import math

import numpy as np
import pytest

from abduce.controller.decide.policies import POLICIES, Discriminate, EpsilonGreedy, PolicyView
from abduce.controller.errors import ConfigError, UnknownNameError


def view(times, rewards, probs=None):
    k = len(times)
    return PolicyView(probabilities=tuple(probs or [1 / k] * k), times_chosen=tuple(times), mean_reward=tuple(rewards))


def test_warm_up_tries_each_hypothesis_in_order():
    p = EpsilonGreedy(epsilon=0.0, warmup=1)
    rng = np.random.default_rng(0)
    assert p.choose(view([1, 0, 0], [1.0, math.nan, math.nan]), rng) == (1, "warm-up")


def test_exploit_takes_the_best_average_reward_ties_to_probability():
    p = EpsilonGreedy(epsilon=0.0)
    rng = np.random.default_rng(0)
    assert p.choose(view([2, 2, 2], [0.5, 1.0, 0.2]), rng) == (1, "exploit")
    assert p.choose(view([2, 2], [1.0, 1.0], probs=[0.2, 0.8]), rng) == (1, "exploit")


def test_epsilon_one_explores_every_hypothesis():
    p = EpsilonGreedy(epsilon=1.0)
    rng = np.random.default_rng(0)
    picks = {p.choose(view([1, 1, 1], [1.0, 0.0, 0.0]), rng)[0] for _ in range(100)}
    assert picks == {0, 1, 2}


def test_refit_sets():
    assert EpsilonGreedy().refit(2, 4) == (2,)
    assert Discriminate().refit(None, 3) == (0, 1, 2)


def test_registry_and_validation():
    assert set(POLICIES.names()) == {"epsilon-greedy", "discriminate", "random", "grid", "plain-gp"}
    with pytest.raises(UnknownNameError, match="epsilon-greedy"):
        POLICIES["greedy"]
    with pytest.raises(ConfigError):
        EpsilonGreedy(epsilon=1.5)
