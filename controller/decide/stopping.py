"""Stopping rules that compose with ``&`` and ``|``.

A rule looks at a :class:`CampaignView` after each ``tell`` and says whether
the campaign is done::

    rule = Budget(200) | (ProbabilityAbove(0.99) & IntegratedVarianceBelow(1e-4))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class CampaignView:
    """What a stopping rule may look at.

    Attributes:
        n: measurements told so far.
        probabilities: posterior probability of each hypothesis (empty before the first fit).
        integrated_variance: the leading hypothesis's mean posterior variance
            over the space, physical units squared (``inf`` before the first fit).
        unfitted: hypotheses never fitted yet (no probability: ``probabilities``
            are over the others), so no leader can be declared.
        none_probability: the probability of "none of these" (0 when not weighed).
        probability_floor: the leader's probability with the Monte Carlo error of the evidences
            against it (2 standard errors each way); None where unknown (then the probability itself).
        cost: what the readings so far cost (one per reading unless the campaign models channels with
            costs, :mod:`abduce.controller.core.channels`).
    """

    n: int
    probabilities: tuple[float, ...]
    integrated_variance: float
    unfitted: int = 0
    none_probability: float = 0.0
    probability_floor: float | None = None
    cost: float | None = None


class StoppingRule(ABC):
    @abstractmethod
    def __call__(self, view: CampaignView) -> bool: ...

    @abstractmethod
    def describe(self) -> str: ...

    def remaining(self, n: int) -> int | None:
        """How many more measurements, at ``n``, before this rule must fire whatever they show; None when
        it does not depend on a count (a batch, ``Campaign.ask(q=...)``, is cut to it)."""
        return None

    def __and__(self, other: StoppingRule) -> StoppingRule:
        return AllOf((self, other))

    def __or__(self, other: StoppingRule) -> StoppingRule:
        return AnyOf((self, other))


@dataclass(frozen=True)
class Budget(StoppingRule):
    """Stop after ``n`` measurements."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"budget must be >= 1, got {self.n}")

    def __call__(self, view: CampaignView) -> bool:
        return view.n >= self.n

    def remaining(self, n: int) -> int | None:
        return max(0, self.n - n)

    def describe(self) -> str:
        return f"budget of {self.n} measurements"


@dataclass(frozen=True)
class CostBudget(StoppingRule):
    """Stop once the readings have cost ``total`` (a campaign over channels with costs: seconds, a dose).
    The reading that crosses it is the last: a campaign spends at most one reading's cost past ``total``."""

    total: float
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.total > 0:
            raise ValueError(f"a cost budget must be > 0, got {self.total}")

    def __call__(self, view: CampaignView) -> bool:
        return (view.cost if view.cost is not None else view.n) >= self.total

    def describe(self) -> str:
        return f"cost budget of {self.total:g}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class ProbabilityAbove(StoppingRule):
    """Stop when the leading hypothesis's posterior probability reaches ``p`` even with the evidence
    estimator's noise against it (``CampaignView.probability_floor``) -- never while a hypothesis has not
    been fitted (its probability is unknown, not 0), nor while "none of these" is more probable."""

    p: float

    def __call__(self, view: CampaignView) -> bool:
        if not view.probabilities or view.unfitted:
            return False
        best = max(view.probabilities)
        floor = best if view.probability_floor is None else min(best, view.probability_floor)
        return floor >= self.p and best > view.none_probability

    def describe(self) -> str:
        return f"leading hypothesis at probability >= {self.p}"


@dataclass(frozen=True)
class IntegratedVarianceBelow(StoppingRule):
    """Stop when the leader's integrated posterior variance falls below ``threshold`` (y units squared)."""

    threshold: float

    def __call__(self, view: CampaignView) -> bool:
        return view.integrated_variance < self.threshold

    def describe(self) -> str:
        return f"integrated variance < {self.threshold:g}"


@dataclass(frozen=True)
class AllOf(StoppingRule):
    rules: tuple[StoppingRule, ...]

    def __call__(self, view: CampaignView) -> bool:
        return all(r(view) for r in self.rules)

    def remaining(self, n: int) -> int | None:
        """Fires for sure once every rule does: the largest count, if all have one."""
        counts = [r.remaining(n) for r in self.rules]
        return None if any(c is None for c in counts) else max(counts)  # type: ignore[type-var]

    def describe(self) -> str:
        return " and ".join(f"({r.describe()})" for r in self.rules)


@dataclass(frozen=True)
class AnyOf(StoppingRule):
    rules: tuple[StoppingRule, ...]

    def __call__(self, view: CampaignView) -> bool:
        return any(r(view) for r in self.rules)

    def remaining(self, n: int) -> int | None:
        """Fires for sure once any rule does: the smallest count any rule has."""
        counts = [c for c in (r.remaining(n) for r in self.rules) if c is not None]
        return min(counts) if counts else None

    def describe(self) -> str:
        return " or ".join(f"({r.describe()})" for r in self.rules)
