"""Statistical checks of issue 2's bar on the transition-1d simulator.

The fast tier runs one seed per (policy, truth); the slow tier runs the full
bar, 10 seeds each, at least 9 of which must end with the true hypothesis at
posterior probability >= 0.9 and x_c within 0.05.
`python tests/benchmarks/identification.py` prints the same as a table.
"""

import pytest

from abduce.controller.simulated import SimulatedRun

TRUTHS = ("second-order", "first-order", "sigmoid", "linear")


def identify(policy, truth, seed):
    c = SimulatedRun(truth=truth, policy=policy, seed=seed, hypotheses=TRUTHS).run()
    xc = {h["name"]: h for h in c.summary()["hypotheses"]}[truth]["parameters"].get("x_c")
    return c.probabilities()[truth], (None if xc is None else abs(xc["mean"] - 0.6))


@pytest.mark.parametrize("policy", ["epsilon-greedy", "discriminate"])
@pytest.mark.parametrize("truth", TRUTHS)
def test_identifies_the_true_law_one_seed(policy, truth):
    p, xc_err = identify(policy, truth, seed=100)
    assert p >= 0.9
    assert xc_err is None or xc_err <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["epsilon-greedy", "discriminate"])
@pytest.mark.parametrize("truth", TRUTHS)
def test_identifies_the_true_law_in_nine_of_ten_seeds(policy, truth):
    results = [identify(policy, truth, seed) for seed in range(10)]
    assert sum(p >= 0.9 for p, _ in results) >= 9
    assert sum(e is None or e <= 0.05 for _, e in results) >= 9
