"""The summary of ``abduce inspect``: each hypothesis's probability, evidence, parameters and checks, as
``Campaign.summary()`` gives them, computed from a journal's decision records (no torch: see
:mod:`abduce.controller.views.inspection`, whose docstring is the JSON's schema)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from abduce.controller.core.verdict import explained, leader
from abduce.controller.journal.events import DecisionBody, RequestBody

NONE_NAME = "none of these"  # abduce.hypotheses.library.NONE_OF_THESE.name (this module imports no torch)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class ParameterEstimate(_Strict):
    mean: float
    sd: float


class Check(_Strict):
    """A hypothesis's posterior predictive checks (abduce.hypotheses.criticism.Criticism)."""

    n: int
    loo_rms: float
    loo_limit: float
    loo_worst: float
    residual_sd: float
    residual_quantile: float | None
    noise_ratio: float | None
    noise_limit: float | None
    misfit: bool
    reasons: list[str]


class HypothesisSummary(_Strict):
    name: str
    probability: float
    log_evidence: float | None
    log_evidence_se: float | None  # its Monte Carlo standard error
    times_chosen: int
    mean_reward: float | None
    parameters: dict[str, ParameterEstimate]
    check: Check | None = None


class NoneOfThese(_Strict):
    """The flexible alternative to every law of the set (abduce.hypotheses.library.NONE_OF_THESE)."""

    probability: float
    log_evidence: float
    log_evidence_se: float = 0.0
    check: Check | None = None


class Summary(_Strict):
    leader: str | None
    measurements: int
    hypotheses: list[HypothesisSummary]
    unfitted: list[str]
    fit_failures: dict[str, int]
    none: NoneOfThese | None
    explained: bool | None = None


def names_of(configured: tuple[str, ...], records: list[DecisionBody], added=()) -> tuple[str, ...]:
    """The declared hypotheses' names in the campaign's order (``added``: the proposals' contenders, apart).

    Built-ins are named as configured; a dotted path takes the name its
    decision records use (the first name not configured, in order of first
    appearance), else stays a path.
    """
    seen: dict[str, None] = {}
    for r in records:
        for key in (*r.probabilities, *r.fit_failures):
            seen.setdefault(key, None)
    spare = iter([n for n in seen if n not in configured and n not in added])
    return tuple(c if c in seen or ("." not in c and ":" not in c) else next(spare, c) for c in configured)


def summarise(
    names, last: DecisionBody | None, n: int, requests: Iterable[RequestBody], records: list[DecisionBody]
) -> Summary:
    chosen: dict[str, int] = dict.fromkeys(names, 0)
    for r in requests:
        if r.hypothesis is not None:
            chosen[r.hypothesis] = chosen.get(r.hypothesis, 0) + 1
    rewards: dict[str, list[float]] = {name: [] for name in names}
    for r in records:
        if r.reward is not None and r.hypothesis is not None:
            rewards.setdefault(r.hypothesis, []).append(r.reward)
    probs = last.probabilities if last else {}
    checks = last.checks if last else {}
    hyps = []
    for name in names:
        params = last.parameters.get(name, {}) if last else {}
        earned = rewards[name]
        mean = sum(earned) / len(earned) if earned else None
        hyps.append(
            HypothesisSummary(
                name=name,
                probability=probs.get(name, 0.0),
                log_evidence=last.log_evidence.get(name) if last else None,
                log_evidence_se=last.log_evidence_se.get(name) if last else None,
                times_chosen=chosen.get(name, 0),
                mean_reward=None if mean is None or math.isnan(mean) else mean,
                parameters={p: ParameterEstimate(mean=v[0], sd=v[1]) for p, v in params.items()},
                check=checks.get(name),
            )
        )
    unfitted = list(last.unfitted) if last else []
    none = last.none if last else None
    failures = dict.fromkeys(
        (
            *names,
            *([NONE_NAME] if none is not None or any(NONE_NAME in r.fit_failures for r in records) else []),
        ),
        0,
    )
    for r in records:
        for name in r.fit_failures:
            failures[name] = failures.get(name, 0) + 1
    none_of = NoneOfThese(**none, check=checks.get(NONE_NAME)) if none else None
    return Summary(
        leader=leader(probs, last.log_evidence if last else None, unfitted),
        measurements=n,
        hypotheses=hyps,
        unfitted=unfitted,
        fit_failures=failures,
        none=none_of,
        explained=explained([h.model_dump() for h in hyps], none_of.model_dump() if none_of else None),
    )
