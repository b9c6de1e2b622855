import math

import pytest

from abduce.controller.decide.stopping import Budget, CampaignView, IntegratedVarianceBelow, ProbabilityAbove


def v(n, probs=(), iv=math.inf):
    return CampaignView(n=n, probabilities=tuple(probs), integrated_variance=iv)


def test_rules_and_composition():
    assert Budget(3)(v(3)) and not Budget(3)(v(2))
    assert ProbabilityAbove(0.9)(v(5, (0.95, 0.05))) and not ProbabilityAbove(0.9)(v(5))
    assert IntegratedVarianceBelow(0.1)(v(5, iv=0.01))
    rule = Budget(100) | (ProbabilityAbove(0.9) & IntegratedVarianceBelow(0.1))
    assert rule(v(10, (0.95, 0.05), 0.01))
    assert not rule(v(10, (0.95, 0.05), 0.5))
    assert rule(v(100))
    assert "budget" in rule.describe() and " or " in rule.describe()


def test_a_probability_threshold_is_not_crossed_by_unfitted_laws_none_of_these_or_estimator_noise():
    at = ProbabilityAbove(0.9)
    assert at(CampaignView(n=9, probabilities=(0.95, 0.05), integrated_variance=1.0))
    assert not at(CampaignView(n=9, probabilities=(0.95, 0.05), integrated_variance=1.0, unfitted=1))
    # the laws' probabilities plus none of these sum to 1: a leader at 0.45 under none at 0.5 never stops it
    assert not ProbabilityAbove(0.4)(
        CampaignView(n=9, probabilities=(0.45, 0.05), integrated_variance=1.0, none_probability=0.5)
    )
    # 0.95 by the estimate, 0.85 were its Monte Carlo error against it: not yet
    assert not at(CampaignView(n=9, probabilities=(0.95, 0.05), integrated_variance=1.0, probability_floor=0.85))
    assert at(CampaignView(n=9, probabilities=(0.95, 0.05), integrated_variance=1.0, probability_floor=0.91))


def test_the_probability_floor_puts_two_standard_errors_against_the_leader():
    """By hand: two laws, log Z = (3, 0), se = (0.5, 0.25), no none of these, equal prior:
    floor = e^(3 - 1) / (e^(3 - 1) + e^(0 + 0.5))."""
    from abduce.controller.core.campaign import Campaign, CampaignSettings
    from abduce.controller.core.space import Space
    from abduce.hypotheses.library import BUILTIN

    c = Campaign(
        Space.box([(0.0, 1.0)]),
        [BUILTIN["linear"], BUILTIN["constant"]],
        "discriminate",
        None,
        Budget(5),
        seed=0,
        settings=CampaignSettings(none_prior=0.0),
    )
    floor = c.belief._floor({"linear": 3.0, "constant": 0.0}, {"linear": 0.5, "constant": 0.25}, None)
    assert floor == pytest.approx(math.exp(2.0) / (math.exp(2.0) + math.exp(0.5)), rel=1e-12)
