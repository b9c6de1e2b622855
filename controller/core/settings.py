"""A campaign's knobs and its record of one step: plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field

from abduce.controller.errors import ConfigError
from abduce.hypotheses.belief import InferenceSettings

PROPOSE = ("off", "add", "suggest")


@dataclass(frozen=True)
class CampaignSettings(InferenceSettings):
    """Knobs of a campaign (all with defaults that the benchmarks were run with): how its belief is
    computed (:class:`~abduce.hypotheses.belief.InferenceSettings`: fitting effort, evidence samples,
    exact or inducing inference, "none of these", checks) and, here, how it decides.

    Attributes:
        n_init: space-filling measurements before the first fit.
        refit_every_step_below: refit the policy's hypotheses every step up to this n.
        refit_growth: past it, refit once n has grown by this fraction since the last refit.
        reference_size: points the integrated variance (reward, ``nipv``) is averaged over.
        exclude_measured: never ask for a candidate that was already measured.
        restarts, raw_samples: ``optimize_acqf`` effort on a continuous space.
        max_failures: consecutive failed readings (NaN/inf; see ``Campaign.skip``)
            after which the campaign stops with the error instead of asking elsewhere.
        q: points per request (a batch; ``Campaign.ask(q=...)`` overrides it per request).
        propose: abduction (:mod:`abduce.controller.core.abduction`): ``"off"``; ``"add"`` the best
            composed laws to the campaign where they beat every law (``propose_admit``; rounds run when "none of
            these" leads, and as audits every ``propose_every`` measurements); ``"suggest"`` them only (an
            operator accepts one with ``Campaign.accept``).
        propose_depth: composition steps the grammar enumerates (:mod:`abduce.hypotheses.grammar`).
        propose_after: no proposal before this many measurements.
        propose_every: measurements between two proposal rounds.
        propose_rounds: most proposal rounds in a campaign.
        propose_draws: prior draws per candidate in the screen (:mod:`abduce.hypotheses.proposals`).
        propose_fits: candidates fitted in full after the screen.
        propose_keep: most laws added (or suggested) per round.
        propose_admit: a composed law is added (or suggested) when it beats every law, or when its
            posterior probability, were it added, reaches this (1.0, the default: only the first).
        composition_cost: the complexity prior's factor per composition step
            (:func:`abduce.hypotheses.grammar.prior_weight`).

    Where the maths runs is not a setting of the campaign: the edge that builds it chooses the
    device (:func:`abduce.controller.recipe.recipe.resolve_device`) and passes it in.
    """

    n_init: int = 5
    refit_every_step_below: int = 100
    refit_growth: float = 0.1
    reference_size: int = 1024
    exclude_measured: bool = True
    restarts: int = 4
    raw_samples: int = 128
    max_failures: int = 3
    q: int = 1
    propose: str = "off"
    propose_depth: int = 1
    propose_after: int = 10
    propose_every: int = 5
    propose_rounds: int = 12
    propose_draws: int = 1024
    propose_fits: int = 6
    propose_keep: int = 2
    propose_admit: float = 1.0
    composition_cost: float = 1.0

    def __post_init__(self) -> None:
        if self.propose not in PROPOSE:
            raise ConfigError(f"propose must be one of {', '.join(PROPOSE)}, got {self.propose!r}")
        if min(self.propose_depth, self.propose_rounds, self.propose_draws, self.propose_fits, self.propose_keep) < 1:
            raise ConfigError(
                "propose_depth, propose_rounds, propose_draws, propose_fits and propose_keep must be >= 1"
            )
        if self.propose_every < 1 or self.propose_after < 1:
            raise ConfigError("propose_every and propose_after must be >= 1")
        if not 0.0 < self.propose_admit <= 1.0:
            raise ConfigError(f"propose_admit must be in (0, 1], got {self.propose_admit}")
        if not 0.0 < self.composition_cost <= 1.0:
            raise ConfigError(f"composition_cost must be in (0, 1], got {self.composition_cost}")
        if self.n_init < 1:
            raise ConfigError(f"n_init must be >= 1, got {self.n_init}")
        if self.q < 1:
            raise ConfigError(f"q must be >= 1, got {self.q}")
        if self.refit_growth <= 0:
            raise ConfigError(f"refit_growth must be > 0, got {self.refit_growth}")
        super().__post_init__()


@dataclass(frozen=True)
class StepRecord:
    """What happened at one step (one ``tell``), for logs, journals and people.

    Attributes:
        step, request_id, x, y: the measurement (``step``: its 0-based index in the campaign).
        hypothesis, reason: who chose the point and why (see ``MeasureRequest``).
        refit: hypotheses refit after this measurement.
        reward: the driver's reward (epsilon-greedy, on refit steps), else None.
        probabilities, log_evidence, integrated_variance: per hypothesis name.
        parameters: per hypothesis, ``{param: [posterior mean, sd]}`` in physical units.
        fit_failures: per hypothesis whose refit failed, the error message (a hypothesis
            with an earlier good fit keeps it, updated with the new points).
        stopped: whether the stopping rule fired after this step.
        unfitted: hypotheses that have never been fitted (every fit so far failed):
            they have no probability yet, and while any is left no leader is declared.
        none: "none of these" (``{"probability", "log_evidence", "log_evidence_se"}``), None when the
            campaign leaves it out or before its first fit. ``probabilities`` and this sum to 1.
        log_evidence_se: per hypothesis, the Monte Carlo standard error of its log evidence.
        checks: per fitted hypothesis (and "none of these"), its posterior predictive checks
            (:meth:`abduce.hypotheses.criticism.Criticism.to_json`), up to ``CampaignSettings.check_below``
            measurements.
        index: which point of its request (0 for a one-point request; ``Campaign.ask(q=...)``).
        score: the value the policy's acquisition gave this point when ``ask`` chose it (the maximum it
            chose it by; a batch's later points scored against the fantasised readings of the earlier
            ones); None for the initial design, a baseline policy's pick, and journals written before it.
        proposals: the composed laws this step proposed or an operator accepted
            (:class:`abduce.controller.core.abduction.Proposal` as JSON), () on most steps.
    """

    step: int
    request_id: str
    x: tuple[float, ...]
    y: float
    hypothesis: str | None
    reason: str
    refit: tuple[str, ...]
    reward: float | None
    probabilities: dict[str, float]
    log_evidence: dict[str, float]
    integrated_variance: dict[str, float]
    parameters: dict[str, dict[str, list[float]]]
    fit_failures: dict[str, str]
    stopped: bool
    unfitted: tuple[str, ...] = ()
    none: dict[str, float] | None = None
    log_evidence_se: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict] = field(default_factory=dict)
    index: int = 0
    score: float | None = None
    proposals: tuple[dict, ...] = ()
