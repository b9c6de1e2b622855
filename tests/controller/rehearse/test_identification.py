"""Statistical checks of the README's identification bar on the transition-1d simulator.

A campaign *identifies* its truth when it ends (at the README's budget, 40
measurements) with the true hypothesis at posterior probability >= 0.9 *and*,
for a law with a critical point, x_c within 0.05 of the truth: both at once,
counted per campaign. The fast tier runs three seeds per truth for
``discriminate`` (the slow tier for ``epsilon-greedy`` too), and at least 11
of the 12 campaigns must identify (a regression of the science fails CI); the slow tier
runs the full bar, 10 seeds each, at least 9 of which must identify.
`python tests/benchmarks/identification.py` prints the same as a table.
"""

import pytest

from abduce.controller.rehearse.simulated import SimulatedRun

TRUTHS = ("second-order", "first-order", "sigmoid", "linear")


def identify(policy, truth, seed) -> tuple[float, float | None]:
    """(P(truth), |x_c - 0.6| or None for a law without x_c) at the end of one campaign."""
    c = SimulatedRun(truth=truth, policy=policy, seed=seed, hypotheses=TRUTHS).run()
    xc = {h["name"]: h for h in c.summary()["hypotheses"]}[truth]["parameters"].get("x_c")
    return c.probabilities()[truth], (None if xc is None else abs(xc["mean"] - 0.6))


def identified(p: float, xc_err: float | None) -> bool:
    return p >= 0.9 and (xc_err is None or xc_err <= 0.05)


@pytest.mark.parametrize(
    "policy",
    [
        # epsilon-greedy's twelve campaigns took 130 s of the fast tier's ~600 s on 2 cores; the slow tier's ten
        # seeds per truth hold it to the bar, and discriminate (the default policy) stays here
        pytest.param("epsilon-greedy", marks=pytest.mark.slow),
        "discriminate",
    ],
)
def test_identifies_the_true_law_in_eleven_of_twelve_campaigns(policy):
    """Three seeds per truth, 12 campaigns: the README's rate (>= 9 of 10) allows at most one miss."""
    results = {(truth, seed): identify(policy, truth, seed) for truth in TRUTHS for seed in (100, 101, 102)}
    assert sum(identified(*r) for r in results.values()) >= 11, results


NESTED = pytest.mark.xfail(
    reason="a line is nested in a power law with beta near 1: epsilon-greedy's 40 points "
    "left P(linear) at 0.59-0.87 in 3 of 10 seeds (README, 'Does it find the right hypothesis?')",
    strict=False,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "truth"),
    [
        pytest.param(policy, truth, marks=NESTED if (policy, truth) == ("epsilon-greedy", "linear") else ())
        for policy in ("epsilon-greedy", "discriminate")
        for truth in TRUTHS
    ],
)
def test_identifies_the_true_law_in_nine_of_ten_seeds(policy, truth):
    results = [identify(policy, truth, seed) for seed in range(10)]
    assert sum(identified(*r) for r in results) >= 9, results
