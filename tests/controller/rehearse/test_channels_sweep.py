"""The channels benchmark (deploy/sweeps/channels.toml): its config, one paired campaign of each family, and the
table's arithmetic against a hand-made set of rows."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from abduce.controller.rehearse.channels_table import channel_markdown, channel_rows, settled_costs
from abduce.controller.rehearse.sweep import run_cell
from abduce.controller.rehearse.sweep_config import Family, load_sweep

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "sweeps" / "channels.toml"


def test_the_committed_config_pairs_the_two_families_on_the_same_truths():
    cells = load_sweep(CONFIG).cells()
    alone = {c["campaign"]: c for c in cells if c["problem"]["name"] == "explained-only"}
    both = {c["campaign"]: c for c in cells if c["problem"]["name"] == "with-image"}
    assert len(alone) == len(both) == 20
    for i, c in both.items():
        assert c["seed"] == alone[i]["seed"] and c["drawn"] == alone[i]["drawn"]
        assert c["problem"]["channels"] == {"cheap_channels": {"image": 0.05}, "cost_budget": 36.0}
    assert alone[0]["problem"]["channels"] == {"acquisition": "model-information"}


@pytest.mark.parametrize("name, cost", [("channels-cost0.01", 0.01), ("channels-cost0.001", 0.001)])
def test_the_what_ifs_run_the_benchmark_s_samples_at_their_own_image_cost(name, cost):
    """The what-ifs the README's channels table quotes beside the benchmark: the same truths and seeds, only the
    image's cost (and, at a thousandth, the count of readings) differs."""
    bench = {(c["problem"]["name"], c["campaign"]): c for c in load_sweep(CONFIG).cells()}
    cells = load_sweep(CONFIG.with_name(f"{name}.toml")).cells()
    assert len(cells) == 40
    for c in cells:
        twin = bench[(c["problem"]["name"], c["campaign"])]
        assert (c["seed"], c["drawn"]) == (twin["seed"], twin["drawn"])
        if c["problem"]["name"] == "with-image":
            assert c["problem"]["channels"] == {"cheap_channels": {"image": cost}, "cost_budget": 36.0}


def test_a_misspelt_acquisition_is_refused_with_the_config():
    family = {"name": "f", "source": "simulated:two-channel", "truth": "second-order", "hypothesis_set": "laws"}
    with pytest.raises(ValidationError, match="model-informaton"):
        Family.model_validate({**family, "acquisition": "model-informaton"})


def test_one_paired_campaign_of_each_family():
    cells = [c for c in load_sweep(CONFIG).cells() if c["campaign"] == 0]
    rows = [r for c in cells for r in run_cell(dict(c, budget=10) if c["problem"]["name"] == "explained-only"
                                                 else dict(c, problem={**c["problem"], "channels": {
                                                     **c["problem"]["channels"], "cost_budget": 4.0}}))]  # fmt: skip
    results = pd.DataFrame(rows)
    alone = results[results["problem"] == "explained-only"]
    both = results[results["problem"] == "with-image"]
    assert (alone["channel"] == "").all() and list(alone["cost"]) == list(range(1, 11))
    assert set(both["channel"]) == {"y", "image"} and both["cost"].iloc[-1] >= 4.0
    steps = both["cost"].diff().fillna(both["cost"].iloc[0]).round(9)
    assert set(steps) == {1.0, 0.05} and ((steps == 0.05) == (both["channel"] == "image")).all()
    table = channel_rows(results, {"with-image": ("explained-only", 1.0)})
    assert len(table) == 1 and table[0]["campaigns"] == 1 and "| with-image |" in channel_markdown(table)


def frame(problem: str, campaign: int, costs: list[float], p: list[float], channels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"problem": problem, "policy": "discriminate", "campaign": campaign,
                         "n": range(1, len(costs) + 1), "cost": costs, "p_true": p, "channel": channels})  # fmt: skip


def test_the_table_s_settled_costs_and_quantiles():
    ok, no = 0.99, 0.5
    alone = [
        frame("a", 0, [1, 2, 3, 4], [no, ok, no, ok], [""] * 4),  # settles at its 4th reading: cost 4
        frame("a", 1, [1, 2, 3, 4], [no, ok, ok, ok], [""] * 4),  # 2
        frame("a", 2, [1, 2, 3, 4], [no, no, no, no], [""] * 4),  # never
    ]
    both = [
        frame("b", 0, [0.1, 1.1, 1.2, 2.2], [no, no, ok, ok], ["i", "y", "i", "y"]),  # 1.2
        frame("b", 1, [0.1, 0.2, 1.2, 1.3], [ok, ok, ok, ok], ["i", "i", "y", "i"]),  # 0.1
        frame("b", 2, [0.1, 1.1, 2.1, 2.2], [no, no, ok, no], ["i", "y", "y", "i"]),  # never (not at its end)
    ]
    results = pd.concat(alone + both)
    assert settled_costs(pd.concat(alone), 0.95) == [4.0, 2.0, math.inf]
    assert settled_costs(pd.concat(alone), 0.95, scale=2.0) == [8.0, 4.0, math.inf]
    (row,) = channel_rows(results, {"b": ("a", 1.0)})
    assert row["identified alone"] == row["identified with cheap"] == pytest.approx(2 / 3)
    assert math.isnan(row["cost95 alone"]) and math.isnan(row["cost95 with cheap"])  # 95% never settle
    assert row["median cost alone"] == 4.0 and row["median cost with cheap"] == 1.2  # the 2nd of 3
    assert row["median ratio"] == pytest.approx(0.3) and row["cheap readings"] == 2  # 2, 3, 2 cheap readings
