"""The transfer benchmark (deploy/sweeps/transfer.toml): its config checks, one short chain of samples, and the
table computed from its real rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from abduce.controller.rehearse.scoring import summarize
from abduce.controller.rehearse.sweep import run_cell
from abduce.controller.rehearse.sweep_config import Family, load_sweep
from abduce.controller.rehearse.transfer_table import transfer_markdown, transfer_rows

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "sweeps" / "transfer.toml"


def test_the_committed_config_runs_chains_of_samples_of_a_series():
    cells = load_sweep(CONFIG).cells()
    assert {c["problem"]["name"] for c in cells} == {"drifting", "changed"}
    drifting = [c for c in cells if c["problem"]["name"] == "drifting"]
    assert len(drifting) == 20 and {c["problem"]["series"] for c in drifting} == {5}
    assert len({c["seed"] for c in drifting}) == 20  # one series each
    changed = next(c for c in cells if c["problem"]["name"] == "changed")
    assert changed["problem"]["options"]["changes"] == [2] and changed["problem"]["series"] == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"source": "simulated:transition-1d"}, "needs source = 'simulated:sample-series'"),
        ({"series": None, "temper": 0.5}, "go with series"),
        ({"series": None, "transfer_carry": 0.5}, "go with series"),
        ({"transfer_carry": 1.0}, "transfer_carry"),
        ({"options": {"sample": 2}}, "set by the chain"),
    ],
)
def test_a_chain_that_cannot_run_is_refused_before_any_campaign(change, message):
    family = {"name": "f", "source": "simulated:sample-series", "series": 3, "truth": "second-order",
              "hypothesis_set": "laws"}  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        Family.model_validate({**family, **change})


def test_a_short_chain_runs_each_later_sample_by_transfer_and_cold_and_the_table_reads_it():
    cell = next(c for c in load_sweep(CONFIG).cells() if c["problem"]["name"] == "changed")
    rows = run_cell(dict(cell, budget=10))
    results = pd.DataFrame(rows)
    ends = results.sort_values("n").groupby("problem").tail(1).set_index("problem")
    assert sorted(ends.index) == [
        "changed 0 cold", "changed 1 cold", "changed 1 transfer", "changed 2 cold", "changed 2 transfer"
    ]  # fmt: skip
    assert (ends["n"] == 10).all()
    assert ends.loc["changed 2 transfer", "truth"] == "first-order" == ends.loc["changed 2 cold", "truth"]
    assert ends.loc["changed 1 transfer", "truth"] == "second-order"
    assert ends.loc["changed 2 transfer", "sample"] == 2 and ends.loc["changed 2 transfer", "start"] == "transfer"
    # the same sample, the same noise and design: what differs is the prior, so the probabilities do
    first = results[results["n"] == 5].set_index("problem")
    assert first.loc["changed 1 transfer", "p_true"] != first.loc["changed 1 cold", "p_true"]
    table = transfer_rows(summarize(results), {"changed"})
    assert [(r["sample"], r["law"]) for r in table] == [(1, "second-order"), (2, "first-order")]
    summary = summarize(results).set_index("problem")
    for r in table:
        assert r["n95 cold"] == pytest.approx(summary.loc[f"changed {r['sample']} cold", "n95"], nan_ok=True)
        assert r["identified transfer"] == summary.loc[f"changed {r['sample']} transfer", "identified_at_budget"]
    assert "| changed | 2 | discriminate | first-order | 1 |" in transfer_markdown(table)


@pytest.mark.parametrize(
    "name, key, value",
    [("transfer-share0.2", "share", 0.2), ("transfer-share0.8", "share", 0.8), ("transfer-carry0.5", "carry", 0.5)],
)
def test_each_what_if_differs_from_the_benchmark_in_one_setting_only(name, key, value):
    """deploy/sweeps/transfer-*.toml: the same series (families named alike draw alike), at another lambda or
    carry (the benchmark runs at the defaults, 0.5 and 0)."""
    base = load_sweep(CONFIG).cells()
    what_if = load_sweep(CONFIG.with_name(f"{name}.toml")).cells()
    assert len(base) == len(what_if)
    for a, b in zip(base, what_if):
        assert a["seed"] == b["seed"] and a["problem"]["options"] == b["problem"]["options"]
        assert a["problem"][key] is None and b["problem"][key] == value
        assert {k: v for k, v in a["problem"].items() if k != key} == {
            k: v for k, v in b["problem"].items() if k != key
        }


def _chain_rows(problem: str, settle: list[int], budget: int = 12) -> list[dict]:
    """Rows of campaigns that reach P(true) 0.99 at their measurement ``settle[i]`` and keep it to ``budget``."""
    return [
        {
            "problem": problem,
            "hypothesis_set": "laws",
            "policy": "discriminate",
            "campaign": i,
            "n": n,
            "p_true": 0.99 if n >= s else 0.2,
            "truth": "second-order",
        }  # fmt: skip
        for i, s in enumerate(settle)
        for n in range(1, budget + 1)
    ]


def test_the_ratios_interval_resamples_the_series_in_pairs_and_counts_never_one_after_the_budget():
    from abduce.controller.rehearse.transfer_table import ratio_interval

    # every series alike: every resample has the same n95, 5 against 10
    same = pd.DataFrame(_chain_rows("f 1 cold", [10] * 20) + _chain_rows("f 1 transfer", [5] * 20))
    assert ratio_interval(same, "f 1 cold", "f 1 transfer", "discriminate") == pytest.approx((0.5, 0.5))
    # one slow transferred series of twenty: n95 (the nineteenth) is 5, or 11 where the draw takes it twice or more
    slow = pd.DataFrame(_chain_rows("f 1 cold", [10] * 20) + _chain_rows("f 1 transfer", [5] * 19 + [11]))
    lo, hi = ratio_interval(slow, "f 1 cold", "f 1 transfer", "discriminate")
    assert (lo, hi) == pytest.approx((0.5, 1.1))
    assert ratio_interval(slow, "f 1 cold", "f 1 transfer", "discriminate") == (lo, hi)  # seeded
    # a cold start that never settles within a budget of 11 counts as settling at 12
    never = pd.DataFrame(_chain_rows("f 1 cold", [99] * 20, 11) + _chain_rows("f 1 transfer", [6] * 20, 11))
    assert ratio_interval(never, "f 1 cold", "f 1 transfer", "discriminate") == pytest.approx((0.5, 0.5))
    rows = transfer_rows(summarize(slow), {"f"}, slow)
    assert rows[0]["ratio"] == pytest.approx(0.5) and rows[0]["ratio 90%"] == "0.50-1.10"
