"""A sweep's results scored: identification, "none of these", calibration, the README's table and the plots
(:mod:`abduce.controller.rehearse.sweep` describes the columns)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from abduce.controller.rehearse.sweep_config import OUT_OF_SET

CALIBRATION_BINS = ((0.5, 0.7), (0.7, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.0))
"""Bins of the leader's probability, ``[lo, hi)`` (the last one ``[0.99, 1]``)."""


def _col(frame, name: str):
    """A column, or all-NaN where the frame has none (hand-made or older results)."""
    import pandas as pd

    return frame[name] if name in frame else pd.Series(math.nan, index=frame.index)


def _fraction(values) -> float:
    v = values.dropna()
    return float(v.mean()) if len(v) else math.nan


def _first(frame, name: str) -> str:
    """The column's first non-empty text ("" where the frame has none)."""
    if name not in frame:
        return ""
    text = frame[name].dropna().astype(str)
    text = text[text != ""]
    return str(text.iloc[0]) if len(text) else ""


def campaign_key(frame) -> str:
    return "campaign" if "campaign" in frame else "seed"


def summarize(results, threshold: float = 0.95, quantile: float = 0.95):
    """Per problem (family), set and policy, at the budget (each campaign's last step):

    ``seeds`` (campaigns); ``n95`` (the fewest measurements from which on, to the budget, at least
    ``quantile`` of the campaigns have P(true) >= ``threshold``; NaN if that never happens, or out of
    the set); ``identified_at_budget`` (fraction with P(true) >= ``threshold``); ``wrong_at_09``
    (fraction where a wrong law leads with P >= 0.9; out of the set, any law); ``p_none_median``
    (median P("none of these")); ``none_leads`` (fraction where it is more probable than every law);
    ``flagged`` (fraction the user is told that the set does not explain the data: "none of these"
    leads, or the leading law fails its posterior predictive checks, ``leader_misfit``);
    ``coverage_mean`` / ``coverage_min`` (the true law's 95% band over the points); ``coverage_fair_noise``
    (its mean over the campaigns whose ``noise_z`` is within 2: what the band does when the data are not
    the tail of their own noise; NaN without the column); ``xc_within_2sd``
    (fraction with ``|x_c error| <= 2 sd``) and ``xc_err_over_sd_median`` (median ``|error| / sd``);
    the median final ``error``, ``seconds`` and ``cpu_seconds``; ``median_rmse`` and ``median_max_error``
    (the reconstruction in the channel's unit) with ``error_against`` and ``error_unit`` (what it was
    scored against, :mod:`~abduce.controller.rehearse.reconstruction`; empty where no truth is known).
    """
    import pandas as pd

    out = []
    camp = campaign_key(results)
    for (prob, hset, policy), g in results.groupby(["problem", "hypothesis_set", "policy"], sort=False):
        curve = identification_curve(g, threshold)
        n95 = float(first_staying(curve.to_numpy()[:, None], curve.index.to_numpy(), quantile)[0])
        last = g.sort_values("n").groupby(camp).tail(1)
        truth = str(last["truth"].fillna("").iloc[0]) if "truth" in last else ""  # empty (NaN read back): unknown
        # in the set: a named truth other than "none" (older results without the column: any P(true) at all)
        in_set = truth not in ("", OUT_OF_SET) if "truth" in last else bool(last["p_true"].notna().any())
        xc_err, xc_sd = _col(last, "xc_error"), _col(last, "xc_sd")
        has_xc = xc_err.notna() & xc_sd.notna()
        ratio = (xc_err[has_xc].abs() / xc_sd[has_xc]).replace(np.inf, np.nan)
        p_none, p_leader = _col(last, "p_none"), _col(last, "p_leader")
        misfit = _col(last, "leader_misfit")
        none_leads = p_none > p_leader.fillna(0.0)
        out.append(
            {
                "problem": prob,
                "hypothesis_set": hset,
                "policy": policy,
                "truth": truth,
                "seeds": last[camp].nunique(),
                "n95": int(n95) if in_set and math.isfinite(n95) else math.nan,
                "identified_at_budget": float(curve.iloc[-1]) if in_set and len(curve) else math.nan,
                "wrong_at_09": _fraction(_col(last, "wrong_at_09")),
                "p_none_median": float(p_none.median()) if p_none.notna().any() else math.nan,
                "none_leads": float(none_leads.mean()) if p_none.notna().any() else math.nan,
                "flagged": float((none_leads | (misfit == 1.0)).mean())
                if p_none.notna().any() or misfit.notna().any()
                else math.nan,
                "coverage_mean": float(_col(last, "coverage").mean()),
                "coverage_min": float(_col(last, "coverage").min()),
                "coverage_fair_noise": float(_col(last, "coverage")[_col(last, "noise_z").abs() <= 2.0].mean()),
                "xc_within_2sd": float((ratio <= 2.0).mean()) if has_xc.any() else math.nan,
                "xc_err_over_sd_median": float(ratio.median()) if has_xc.any() else math.nan,
                "median_error": float(_col(last, "error").median()),
                "median_rmse": float(_col(last, "rmse").median()),
                "median_max_error": float(_col(last, "max_error").median()),
                "error_against": _first(last, "error_against"),
                "error_unit": _first(last, "error_unit"),
                "median_seconds": float(_col(last, "seconds").median()),
                "median_cpu_seconds": float(_col(last, "cpu_seconds").median()),
            }
        )
    return pd.DataFrame(out)


def identified(group, threshold: float = 0.95):
    """Whether each campaign (column) has P(true) >= threshold after n measurements (index, sorted).

    A campaign that stopped early keeps its last probability for the larger n."""
    wide = group.pivot_table(index="n", columns=campaign_key(group), values="p_true", dropna=False)
    return wide.sort_index().ffill() >= threshold


def identification_curve(group, threshold: float = 0.95):
    """Fraction of campaigns with P(true) >= threshold after n measurements, indexed by n (:func:`identified`)."""
    return identified(group, threshold).mean(axis=1)


def first_staying(curves: np.ndarray, n: np.ndarray, quantile: float) -> np.ndarray:
    """Per column of ``curves`` (``len(n) x B``: a fraction of campaigns identified by each ``n``), the fewest
    ``n`` from which on, to the last, it stays >= ``quantile``: the n95 (NaN: never)."""
    if len(n) == 0:
        return np.full(curves.shape[1:], np.nan)
    below = curves < quantile - 1e-12
    last = np.where(below.any(axis=0), len(n) - 1 - np.argmax(below[::-1], axis=0), -1)
    first = last + 1
    return np.where(first < len(n), n[np.minimum(first, len(n) - 1)].astype(float), np.nan)


def none_curve(group):
    """Fraction of campaigns in which "none of these" is more probable than every law, by n."""
    g = group.assign(_none_leads=(group["p_none"] > group["p_leader"].fillna(0.0)).astype(float))
    wide = g.pivot_table(index="n", columns=campaign_key(group), values="_none_leads", dropna=False)
    return wide.sort_index().ffill().mean(axis=1)


def calibration(results, bins: Sequence[tuple[float, float]] = CALIBRATION_BINS):
    """Reliability of the leader's probability over every (campaign, step) of in-set campaigns.

    A case is one step of a campaign whose truth is in its set, with a leader (no unfitted law) of
    probability >= the first bin's lower edge. Per policy and pooled (``policy = "all"``), per bin
    ``[lo, hi)`` (the last closed): ``count``, ``confidence`` (mean P(leader)), ``accuracy`` (fraction
    in which the leader is the truth); and per group ``ece`` = sum over bins of
    ``count / cases |accuracy - confidence|`` (``cases`` = the group's cases in any bin).

    Returns:
        DataFrame with columns policy, bin, lo, hi, count, confidence, accuracy, cases, ece.
    """
    import pandas as pd

    truth = results["truth"].fillna("").astype(str)
    leader = results["leader"].fillna("").astype(str)
    # P(true) is NaN out of the set, for a truth missing from the set, and while the truth is unfitted (no leader then)
    cases = results[
        (truth != "")
        & (truth != OUT_OF_SET)
        & results["p_true"].notna()
        & (leader != "")
        & (results["p_leader"] >= bins[0][0])
    ]
    edges = np.array([lo for lo, _ in bins])
    rows = []
    groups = [(pol, g) for pol, g in cases.groupby("policy", sort=False)] + [("all", cases)]
    for policy, g in groups:
        which = np.searchsorted(edges, g["p_leader"].to_numpy(), side="right") - 1
        correct = (g["leader"] == g["truth"]).to_numpy(dtype=float)
        conf = g["p_leader"].to_numpy(dtype=float)
        part = []
        for b, (lo, hi) in enumerate(bins):
            m = which == b
            label = f">{lo:g}" if b == len(bins) - 1 else f"{lo:g}-{hi:g}"
            part.append(
                {
                    "policy": policy,
                    "bin": label,
                    "lo": lo,
                    "hi": hi,
                    "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else math.nan,
                    "accuracy": float(correct[m].mean()) if m.any() else math.nan,
                }
            )
        total = sum(r["count"] for r in part)
        ece = (
            sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in part if r["count"])
            if total
            else math.nan
        )
        rows.extend({**r, "cases": total, "ece": ece} for r in part)
    return pd.DataFrame(rows, columns=["policy", "bin", "lo", "hi", "count", "confidence", "accuracy", "cases", "ece"])


def _fmt(v, spec: str = ".2f", missing: str = "—") -> str:
    return missing if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(summary, calib=None, budgets: Mapping[str, int] | None = None) -> str:
    """The README's table: one row per family (problem) and policy, and the calibration below it."""
    head = (
        "| family | policy | campaigns | identified (P ≥ 0.95) | wrong (P ≥ 0.9) | n95 | P(none) median "
        "| none leads | flagged | band coverage mean (min) | x_c within 2 sd | median \\|err\\|/sd |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in summary.itertuples(index=False):
        budget = f" ({budgets[r.problem]})" if budgets and r.problem in budgets else ""
        n95 = (
            _fmt(r.n95, ".0f")
            if not (isinstance(r.identified_at_budget, float) and math.isnan(r.identified_at_budget))
            else "n/a"
        )
        cov = "n/a" if math.isnan(r.coverage_mean) else f"{r.coverage_mean:.2f} ({r.coverage_min:.2f})"
        fair = getattr(r, "coverage_fair_noise", math.nan)
        if cov != "n/a" and not math.isnan(fair):
            cov += f"; {fair:.2f} fair noise"
        lines.append(
            f"| {r.problem}{budget} | {r.policy} | {r.seeds} | {_fmt(r.identified_at_budget, missing='n/a')} "
            f"| {_fmt(r.wrong_at_09)} | {n95} | {_fmt(r.p_none_median, '.3f')} | {_fmt(r.none_leads)} "
            f"| {_fmt(getattr(r, 'flagged', math.nan))} "
            f"| {cov} | {_fmt(r.xc_within_2sd, missing='n/a')} "
            f"| {_fmt(r.xc_err_over_sd_median, '.3g', missing='n/a')} |"
        )
    if calib is not None and len(calib):
        labels = list(dict.fromkeys(calib["bin"]))
        lines += [
            "",
            "| policy | " + " | ".join(f"P(leader) {b}" for b in labels) + " | ECE |",
            "|---|" + "---|" * (len(labels) + 1),
        ]
        for policy, g in calib.groupby("policy", sort=False):
            cells = [f"{_fmt(r.accuracy)} ({r.count})" for r in g.itertuples(index=False)]
            lines.append(f"| {policy} | " + " | ".join(cells) + f" | {_fmt(g['ece'].iloc[0], '.3f')} |")
    return "\n".join(lines) + "\n"


def plot(results, path: Path, threshold: float = 0.95) -> None:
    """One panel per (problem, hypothesis set): fraction identified vs n, a line per policy
    (out of the set: the fraction in which "none of these" leads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results.groupby(["problem", "hypothesis_set"], sort=False))
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, ((prob, hset), g) in zip(axes.flat, panels):
        out_of_set = "truth" in g and (g["truth"] == OUT_OF_SET).all()
        for policy, gp in g.groupby("policy", sort=False):
            curve = none_curve(gp) if out_of_set else identification_curve(gp, threshold)
            ax.plot(curve.index, curve.values, label=policy)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{prob} ({hset})", fontsize=9)
        ax.set_xlabel("measurements")
        ax.set_ylabel('fraction with "none" leading' if out_of_set else f"fraction with P(true) ≥ {threshold}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(calib, path: Path) -> None:
    """Accuracy against mean confidence per bin, a line per policy and the pooled one, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", lw=0.8, ls="--")
    for policy, g in calib.groupby("policy", sort=False):
        g = g[g["count"] > 0]
        pooled = policy == "all"
        ax.plot(
            g["confidence"],
            g["accuracy"],
            marker="o",
            lw=2.2 if pooled else 1.0,
            color="black" if pooled else None,
            label=f"{policy} (ECE {_fmt(g['ece'].iloc[0] if len(g) else math.nan, '.3f')})",
        )
        axc.plot(g["confidence"], g["count"], marker=".", lw=2.2 if pooled else 0.8, color="black" if pooled else None)
    ax.set_ylabel("fraction: leader is the truth")
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7)
    if calib["count"].sum():
        axc.set_yscale("log")
    else:
        ax.set_title("no in-set step with a leader of P >= 0.5", fontsize=9)
    axc.set_xlabel("P(leader), mean in bin")
    axc.set_ylabel("steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rows_markdown(rows: list[dict], cell) -> str:
    """A markdown table of ``rows`` (dicts, one column per key of the first), each value written by
    ``cell(column, value) -> str``."""
    cols = list(rows[0]) if rows else []
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = ["| " + " | ".join(cell(c, row[c]) for c in cols) + " |" for row in rows]
    return head + "\n".join(lines) + "\n"
