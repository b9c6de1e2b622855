"""Whether the set of hypotheses explains the data: one rule, shared by the live campaign's summary
and ``abduce inspect`` (which imports no torch)."""

from __future__ import annotations


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
