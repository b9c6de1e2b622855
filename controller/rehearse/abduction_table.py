"""The abduction benchmark's table (README, "Abduction"), from a sweep's ``results.csv`` rows.

Per family, over its campaigns (one row per step; the last row of each campaign carries its end columns):

* ``proposal made``: share of campaigns in which abduction added (or suggested) at least one composed law;
* ``right proposed``: share whose proposals include the family's ``composed`` law;
* ``right at p >= 0.9``: share in which that law reached ``P >= 0.9`` at some step within the budget,
  and ``n90`` the median measurement at which it first did (over those campaigns);
* ``critical within 2 sd``: among the campaigns that reached 0.9, share whose critical points (the
  family's ``critical`` map) all lie within 2 posterior sds of the truth at the end; ``if calibrated``: the
  mean over the same campaigns of what that share would be were each posterior calibrated (the posterior's own
  mass within 2 sd of every critical point, ``critical_calibrated``; NaN in sweeps written before that column);
* ``any proposal at p >= 0.9``: share in which some composed law reached ``P >= 0.9`` at any step
  (``p_proposed``; in sweeps written before that column, from each step's leader: a law at 0.9 leads) --
  the check for truths the grammar cannot express;
* ``none leads at end``: share in which "none of these" was the most probable explanation at the end.
"""

from __future__ import annotations

import math
import statistics

from abduce.controller.rehearse.scoring import campaign_key, rows_markdown


def _share(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def abduction_rows(results, declared: dict[str, set[str]]) -> list[dict]:
    """One dict per family (``declared``: per hypothesis set, the declared laws' names)."""
    out = []
    for (family, _policy), group in results.groupby(["problem", "policy"], sort=True):
        runs = []
        for _, campaign in group.groupby(campaign_key(group), sort=False):
            campaign = campaign.sort_values("n")
            end = campaign.iloc[-1]
            composed = _text(end.get("proposals", ""))
            made = [name for name in composed.split(";") if name]
            target = _composed_name(campaign)
            p_comp = campaign["p_composed"] if "p_composed" in campaign else None
            reached = p_comp is not None and target and bool((p_comp >= 0.9).any())
            n90 = int(campaign.loc[p_comp >= 0.9, "n"].iloc[0]) if reached else None
            laws = declared.get(_text(end.get("hypothesis_set", "")), set())
            p_none = float(end.get("p_none", math.nan))
            p_lead = float(end.get("p_leader", math.nan))
            runs.append(
                {
                    "made": bool(made),
                    "right": bool(target) and target in made,
                    "reached": bool(reached),
                    "n90": n90,
                    "critical": float(end.get("critical_within_2sd", math.nan)) if reached else math.nan,
                    "calibrated": float(end.get("critical_calibrated", math.nan)) if reached else math.nan,
                    "composed_leads": _proposal_reached(campaign, laws),
                    "none_leads": (not math.isnan(p_none)) and p_none > (0.0 if math.isnan(p_lead) else p_lead),
                    "target": target,
                }
            )
        n90s = [r["n90"] for r in runs if r["n90"] is not None]
        crit = [r["critical"] for r in runs if r["reached"]]  # NaN (not weighed at the end): not within
        calibrated = [0.0 if math.isnan(r["calibrated"]) else r["calibrated"] for r in runs if r["reached"]]
        old = any(r["reached"] for r in runs) and all(math.isnan(r["calibrated"]) for r in runs if r["reached"])
        has_target = any(r["target"] for r in runs)
        out.append(
            {
                "family": family,
                "campaigns": len(runs),
                "proposal made": _share(r["made"] for r in runs),
                "right proposed": _share(r["right"] for r in runs) if has_target else math.nan,
                "right at p >= 0.9": _share(r["reached"] for r in runs) if has_target else math.nan,
                "n90 median": statistics.median(n90s) if n90s else math.nan,
                "critical within 2 sd": _share(v >= 1.0 for v in crit) if crit else math.nan,
                "if calibrated": _share(calibrated) if crit and not old else math.nan,
                "any proposal at p >= 0.9": _share(r["composed_leads"] for r in runs),
                "none leads at end": _share(r["none_leads"] for r in runs),
            }
        )
    return out


def abduction_markdown(rows: list[dict], budgets: dict[str, int]) -> str:
    """The table as markdown (the README's)."""

    def cell(c: str, v) -> str:
        if c == "family":
            return f"{v} ({budgets.get(v, '?')})"
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else (f"{v:.0f}" if c == "n90 median" else f"{v:.2f}")
        return str(v)

    return rows_markdown(rows, cell)


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _composed_name(campaign) -> str:
    if "composed" in campaign:
        values = [_text(v) for v in campaign["composed"]]
        return next((v for v in values if v), "")
    return ""


def _proposal_reached(campaign, laws: set[str]) -> bool:
    """Whether a composed law (not one of ``laws``, the declared ones) had ``P >= 0.9`` at some step."""
    if "p_proposed" in campaign and campaign["p_proposed"].notna().any():
        return bool((campaign["p_proposed"] >= 0.9).any())
    leaders = [_text(v) for v in campaign["leader"]]
    return any(name and name not in laws and p >= 0.9 for name, p in zip(leaders, campaign["p_leader"]))
