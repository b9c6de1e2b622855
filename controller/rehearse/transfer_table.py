"""The transfer benchmark's table (README, "A series of samples: transfer"), from a sweep's summary.

A family with ``series`` runs chains of samples (:func:`abduce.controller.rehearse.sweep.run_cell`): every
sample from the second on twice, by transfer from the last sample's campaign and from a cold start, on the
same noise. Its summary rows are named ``"FAMILY k transfer"`` and ``"FAMILY k cold"``. Per family, sample
``k >= 1`` and policy:

* ``law``: the sample's true law (a changed sample's differs from sample 0's);
* ``n95 cold``, ``n95 transfer``: the summary's n95 over the family's series (the fewest measurements from
  which on 95% of them have P(true law) >= the threshold to the budget; NaN: never) and ``ratio``, transfer
  over cold;
* ``identified cold``, ``identified transfer``: the share at P(true) >= the threshold at the budget;
* ``wrong at 0.9 (transfer)``: the share in which another law leads with P >= 0.9 at the budget after a
  transfer (a sample trapped by what the last one said);
* ``ratio 90%`` (with the results): how far the ratio moves with the series drawn, the 5th and 95th
  percentiles of the ratio over ``RESAMPLES`` paired bootstrap resamples of the series (the same series for
  both starts; seeded, so the table is the same each time it is written). A start that does not reach n95
  within the budget in a resample counts as reaching it one measurement after the budget (so the bounds
  there are themselves bounds). n95 counts the nineteenth series of twenty, so one slow series moves it: a
  goal "at most 0.6" whose interval spans 0.6 is met or missed by the draw.
"""

from __future__ import annotations

import math

import numpy as np

from abduce.controller.rehearse.scoring import first_staying, identified, rows_markdown

RESAMPLES = 2000


def _split(problem: str) -> tuple[str, int, str] | None:
    """``"FAMILY k start"`` -> ``(FAMILY, k, start)``; None for a problem that is not a chain's."""
    parts = problem.rsplit(" ", 2)
    if len(parts) != 3 or parts[2] not in ("transfer", "cold") or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def _identified(results, problem: str, policy: str, threshold: float) -> tuple[np.ndarray, np.ndarray, list]:
    """``problem``'s campaigns under ``policy`` as an ``n x campaigns`` matrix of P(true) >= ``threshold``
    (:func:`~abduce.controller.rehearse.scoring.identified`), its ``n`` values and its campaigns (sorted)."""
    wide = identified(results[(results["problem"] == problem) & (results["policy"] == policy)], threshold)
    wide = wide.reindex(sorted(wide.columns), axis=1)
    return wide.to_numpy().astype(float), wide.index.to_numpy(), list(wide.columns)


def ratio_interval(
    results, cold: str, warm: str, policy: str, threshold: float = 0.95, quantile: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The 5th and 95th percentiles of n95(``warm``) / n95(``cold``) over paired bootstrap resamples of the
    series (module docstring: a start that never reaches n95 counts one measurement after the budget); NaN
    where the two problems' campaigns differ."""
    a, n_a, camp_a = _identified(results, cold, policy, threshold)
    b, n_b, camp_b = _identified(results, warm, policy, threshold)
    if camp_a != camp_b or not camp_a:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(camp_a), [1.0 / len(camp_a)] * len(camp_a), size=RESAMPLES).T  # campaigns x B
    after = float(max(n_a.max(), n_b.max())) + 1.0  # never within the budget: one measurement after it
    warm_n = np.nan_to_num(first_staying(b @ counts / len(camp_b), n_b, quantile), nan=after)
    cold_n = np.nan_to_num(first_staying(a @ counts / len(camp_a), n_a, quantile), nan=after)
    lo, hi = np.percentile(warm_n / cold_n, [5, 95])
    return float(lo), float(hi)


def transfer_rows(summary, families: set[str], results=None, threshold: float = 0.95) -> list[dict]:
    """One dict per family of ``families`` and sample from the second on (``summary``: :func:`summarize`'s;
    with ``results``, the rows it summarised, each with its ``ratio 90%``)."""
    runs: dict[tuple[str, int, str], dict[str, dict]] = {}
    for _, row in summary.iterrows():
        key = _split(str(row["problem"]))
        if key is None or key[0] not in families:
            continue
        runs.setdefault((key[0], key[1], str(row["policy"])), {})[key[2]] = row
    out = []
    for (family, k, policy), both in sorted(runs.items()):
        if "transfer" not in both or "cold" not in both:
            continue
        cold, warm = both["cold"], both["transfer"]
        n_cold, n_warm = float(cold["n95"]), float(warm["n95"])
        out.append(
            {
                "family": family,
                "sample": k,
                "policy": policy,
                "law": str(warm["truth"]),
                "series": int(warm["seeds"]),
                "n95 cold": n_cold,
                "n95 transfer": n_warm,
                "ratio": n_warm / n_cold if n_cold > 0 else math.nan,
                "identified cold": float(cold["identified_at_budget"]),
                "identified transfer": float(warm["identified_at_budget"]),
                "wrong at 0.9 (transfer)": float(warm["wrong_at_09"]),
            }
        )
        if results is not None:
            lo, hi = ratio_interval(results, str(cold["problem"]), str(warm["problem"]), policy, threshold)
            out[-1]["ratio 90%"] = "—" if math.isnan(lo) else f"{lo:.2f}-{hi:.2f}"
    return out


def transfer_markdown(rows: list[dict]) -> str:
    """The table as markdown (the README's); NaN as "—" (never identified by 95% of the series)."""

    def cell(c: str, v) -> str:
        if isinstance(v, float):
            return "—" if math.isnan(v) else (f"{v:.0f}" if c.startswith("n95") else f"{v:.2f}")
        return str(v)

    return rows_markdown(rows, cell)
