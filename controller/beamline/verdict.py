"""The verdict a campaign reached, as bluesky-adaptive's "best point": the leading law, and the measurements
that decided it.

A measurement's *gain* is how much the leader's log odds against its rivals rose when it was told::

    lo_i = log Z_leader - log sum_{h != leader} Z_h        (after measurement i)
    g_i  = lo_i - lo_{i-1},        lo_{-1} = -log(K - 1)    (equal prior odds)

over the hypotheses weighed at step ``i`` (their log evidences ``log Z``, and "none of these" where it is
weighed), from the campaign's step records. Steps before the first weighing (the initial design) have no
gain of their own: the first weighing's gain carries the whole design's evidence. The gains telescope:
``sum_i g_i = lo_last + log(K - 1)``, the leader's final log odds against equal prior odds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from abduce.controller.beamline.ids import ID_KEY, point_id
from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.errors import CampaignStateError

DECISIVE = 5  # how many decisive measurements a verdict names


def best_point(campaign: Campaign, channel: str) -> tuple[str, dict[str, float], dict[str, Any]]:
    """``(_id, point, outcomes)`` of the measurement that decided the leader most (largest gain):

    * ``_id``, ``point``: its ``_id`` (:func:`~abduce.controller.beamline.ids.point_id`) and ``{axis: value}``
      (where ``navigate_to_best`` moves);
    * ``outcomes``: ``{channel: its reading, "hypothesis": the leader, "probability": its posterior
      probability, "parameters": {P: {"mean", "sd"}} (the fitted law, physical units), "decided_by":
      [{"_id", axis: value, channel: y, "log_odds": gain}, ...]}``, the (at most :data:`DECISIVE`)
      measurements of largest positive gain, most decisive first.

    Raises:
        CampaignStateError: no leader yet (before the first fit, or while a hypothesis was never fitted).
    """
    leader = campaign.leader()
    if leader is None:
        raise CampaignStateError(f"no leading hypothesis yet after {campaign.n} measurements (not every law fitted)")
    names = campaign.space.names
    ranked = sorted(gains(campaign.history, leader), key=lambda g: -g[1])
    decided_by = [
        {ID_KEY: point_id(r.request_id, r.index), **dict(zip(names, r.x)), channel: r.y, "log_odds": g}
        for r, g in ranked[:DECISIVE]
        if g > 0
    ]
    best = ranked[0][0] if ranked else campaign.history[-1]
    law = next(h for h in campaign.summary()["hypotheses"] if h["name"] == leader)
    outcomes = {
        channel: best.y,
        "hypothesis": leader,
        "probability": law["probability"],
        "parameters": law["parameters"],
        "decided_by": decided_by,
    }
    return point_id(best.request_id, best.index), dict(zip(names, best.x)), outcomes


def gains(history: Sequence[StepRecord], leader: str) -> list[tuple[StepRecord, float]]:
    """``[(step record, g_i)]`` for every step at which ``leader`` and a rival were weighed (module docstring)."""
    out: list[tuple[StepRecord, float]] = []
    previous = None
    for record in history:
        lz = log_evidences(record)
        if leader not in lz or len(lz) < 2:
            continue
        lo = log_odds(lz, leader)
        out.append((record, lo - (-math.log(len(lz) - 1) if previous is None else previous)))
        previous = lo
    return out


def log_evidences(record: StepRecord) -> dict[str | None, float]:
    """The finite log evidences weighed at a step, by hypothesis (None: "none of these")."""
    lz: dict[str | None, float] = {k: v for k, v in record.log_evidence.items() if v is not None and math.isfinite(v)}
    none = (record.none or {}).get("log_evidence")
    if none is not None and math.isfinite(none):
        lz[None] = none
    return lz


def log_odds(lz: dict[str | None, float], leader: str) -> float:
    """``log Z_leader - log sum_{h != leader} Z_h`` (a stable log-sum-exp)."""
    rivals = np.array([v for k, v in lz.items() if k != leader])
    top = rivals.max()
    return float(lz[leader] - (top + np.log(np.exp(rivals - top).sum())))
