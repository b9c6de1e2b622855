"""Whether the set of hypotheses explains the data, and which law leads: one rule each, shared by the live
campaign's summary and ``abduce inspect`` (which imports no torch)."""

from __future__ import annotations

import math


def explained(hypotheses: list[dict], none: dict | None) -> bool | None:
    """Whether the set explains the data: the most probable explanation is a law, not "none of
    these", and that law passes its posterior predictive checks (``check["misfit"]`` false,
    :mod:`abduce.hypotheses.criticism`). None before any law has been checked.

    Args:
        hypotheses: ``[{"name", "probability", "check": {...} | None, ...}]`` as in ``Campaign.summary()``.
        none: ``{"probability", ...}`` of "none of these", or None where it is not weighed.
    """
    if not hypotheses:
        return None
    best = max(hypotheses, key=lambda h: h["probability"])
    if none is not None and none["probability"] > best["probability"]:
        return False
    check = best.get("check")
    return None if check is None else not check["misfit"]


def leader(
    probabilities: dict[str, float], log_evidence: dict[str, float | None] | None = None, unfitted=()
) -> str | None:
    """The most probable law: None before the first fit, or while a law has never been fitted (its evidence
    is unknown: the probabilities are over the fitted ones only). Exact ties are broken by the laws' log
    evidences (``log_evidence``, a step record's), then by order: so where every law's probability has
    underflowed to 0 against "none of these", the law named is the one the set's own odds favour
    (as the acquisition weighs them, ``Belief.within_set``; there the law prior of a proposal or a transfer is
    left out, as the step record does not hold it), not the first in dict order. One rule, shared by the live
    campaign (its summary, progress bar, daemon log and stopping rule), a sweep's ``results.csv`` and
    ``abduce inspect``."""
    if unfitted or not probabilities:
        return None
    evidence = log_evidence or {}

    def key(name: str) -> tuple[float, float]:
        z = evidence.get(name)
        return probabilities[name], z if z is not None and math.isfinite(z) else -math.inf

    return max(probabilities, key=key)
