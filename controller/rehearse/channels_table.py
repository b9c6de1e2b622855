"""The channels benchmark's table (README, "Two channels: a cheap one beside the costly one"), from a sweep's results.

A family with ``cheap_channels`` models a cheap channel beside the explained one; with ``draws`` naming a
family that reads the explained channel alone, both run on the same truths and seeds (a paired
comparison). Per such pair and policy:

* ``campaigns``, and ``identified`` (the share at P(true law) >= the threshold at the end) for each;
* ``cost95``: the least cost from which on, to the end, 95% of the campaigns stay identified (each
  campaign's *settled cost* is the cost of its reading after its last one below the threshold; cost95 is
  the ``ceil(0.95 N)``-th smallest of them; NaN: fewer campaigns ever settle), and ``ratio``;
* ``median cost``: the median settled cost (NaN where half never settle) and its ratio;
* ``cheap readings``: the median number of readings of the cheaper channels per campaign (those that cost
  less than an explained one); ``end cost``: the median cost spent by the end.

The explained-channel-only family's cost is its readings times the pair's explained ``cost``.
"""

from __future__ import annotations

import math

import numpy as np

from abduce.controller.rehearse.scoring import campaign_key, rows_markdown


def settled_costs(frame, threshold: float, scale: float = 1.0) -> list[float]:
    """Each campaign's settled cost (inf: not identified at its end), from its rows (``cost``, ``p_true``)."""
    out = []
    for _, g in frame.sort_values("n").groupby(campaign_key(frame)):
        ok = (g["p_true"] >= threshold).to_numpy()
        cost = g["cost"].to_numpy(dtype=float) * scale
        if not ok[-1]:
            out.append(math.inf)
            continue
        below = np.flatnonzero(~ok)
        out.append(float(cost[below[-1] + 1] if len(below) else cost[0]))
    return out


def _quantile(costs: list[float], q: float) -> float:
    if not costs:
        return math.nan
    k = math.ceil(q * len(costs))
    value = sorted(costs)[k - 1]
    return value if math.isfinite(value) else math.nan


def channel_rows(results, pairs: dict[str, tuple[str, float]], threshold: float = 0.95) -> list[dict]:
    """One dict per paired family and policy (``pairs``: family -> (its explained-only family, cost))."""
    out = []
    for family, (baseline, scale) in pairs.items():
        for policy in sorted(set(results.loc[results["problem"] == family, "policy"])):
            mine = results[(results["problem"] == family) & (results["policy"] == policy)]
            base = results[(results["problem"] == baseline) & (results["policy"] == policy)]
            if mine.empty or base.empty:
                continue
            own, alone = settled_costs(mine, threshold), settled_costs(base, threshold, scale)
            last = mine.sort_values("n").groupby(campaign_key(mine)).tail(1)
            cheap_reads = [
                int((np.diff(g["cost"].to_numpy(dtype=float), prepend=0.0) < scale - 1e-9).sum())
                for _, g in mine.sort_values("n").groupby(campaign_key(mine))
            ]
            c95, b95 = _quantile(own, 0.95), _quantile(alone, 0.95)
            cm, bm = _quantile(own, 0.5), _quantile(alone, 0.5)
            out.append(
                {
                    "family": family,
                    "policy": policy,
                    "campaigns": len(own),
                    "identified alone": float(np.mean([math.isfinite(c) for c in alone])),
                    "identified with cheap": float(np.mean([math.isfinite(c) for c in own])),
                    "cost95 alone": b95,
                    "cost95 with cheap": c95,
                    "ratio": c95 / b95 if b95 > 0 else math.nan,
                    "median cost alone": bm,
                    "median cost with cheap": cm,
                    "median ratio": cm / bm if bm > 0 else math.nan,
                    "cheap readings": float(np.median(cheap_reads)) if len(cheap_reads) else math.nan,
                    "end cost": float(last["cost"].median()),
                }
            )
    return out


def channel_markdown(rows: list[dict]) -> str:
    """The table as markdown (the README's); NaN as "—"."""

    def cell(c: str, v) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "—"
            return f"{v:.0f}" if c == "cheap readings" else f"{v:.2f}"
        return str(v)

    return rows_markdown(rows, cell)
