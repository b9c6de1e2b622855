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
  transfer (a sample trapped by what the last one said).
"""

from __future__ import annotations

import math

from abduce.controller.rehearse.scoring import rows_markdown


def _split(problem: str) -> tuple[str, int, str] | None:
    """``"FAMILY k start"`` -> ``(FAMILY, k, start)``; None for a problem that is not a chain's."""
    parts = problem.rsplit(" ", 2)
    if len(parts) != 3 or parts[2] not in ("transfer", "cold") or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def transfer_rows(summary, families: set[str]) -> list[dict]:
    """One dict per family of ``families`` and sample from the second on (``summary``: :func:`summarize`'s)."""
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
    return out


def transfer_markdown(rows: list[dict]) -> str:
    """The table as markdown (the README's); NaN as "—" (never identified by 95% of the series)."""

    def cell(c: str, v) -> str:
        if isinstance(v, float):
            return "—" if math.isnan(v) else (f"{v:.0f}" if c.startswith("n95") else f"{v:.2f}")
        return str(v)

    return rows_markdown(rows, cell)
