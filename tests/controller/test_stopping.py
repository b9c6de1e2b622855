import math

from abduce.controller.stopping import Budget, CampaignView, IntegratedVarianceBelow, ProbabilityAbove


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
