"""The abduction sweep (deploy/sweeps/abduction.toml): its config checks, one small campaign of its families,
and its table's columns computed from real rows."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from abduce.controller.errors import ConfigError
from abduce.controller.rehearse.abduction_table import abduction_markdown, abduction_rows
from abduce.controller.rehearse.sweep import check_composed, run_cell
from abduce.controller.rehearse.sweep_config import load_sweep

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "sweeps" / "abduction.toml"


def cell(family: str, index: int = 0, budget: int | None = None) -> dict:
    c = next(c for c in load_sweep(CONFIG).cells() if c["problem"]["name"] == family and c["campaign"] == index)
    return dict(c, budget=budget or c["budget"])


def test_the_committed_config_names_laws_the_grammar_builds_and_their_critical_points():
    config = load_sweep(CONFIG)
    check_composed(config.cells())  # raises on a typo
    baseline = [c for c in config.cells() if c["problem"]["name"] == "second-order baseline"]
    paired = [c for c in config.cells() if c["problem"]["name"] == "second-order"]
    assert [c["seed"] for c in baseline] == [c["seed"] for c in paired]  # the same campaigns, without proposals
    assert [c["problem"]["options"] for c in baseline] == [c["problem"]["options"] for c in paired]
    assert {c["propose"] for c in baseline} == {"off"} and {c["propose"] for c in paired} == {"add"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"composed": "second-order + second-ordr"}, "not one the grammar builds"),
        ({"critical": {"x_c_3": "x_c"}}, "has no parameter 'x_c_3'"),
        ({"critical": {"x_c_1": "x_c3"}}, "no attribute 'x_c3'"),
    ],
)
def test_a_typo_in_a_familys_composed_law_or_critical_points_is_refused_before_any_campaign(change, message):
    c = cell("two-transitions")
    c["problem"] = dict(c["problem"], **change)
    with pytest.raises(ConfigError, match=message):
        check_composed([c])


def test_two_transitions_in_a_short_campaign_find_their_sum_and_the_table_says_so():
    rows = run_cell(cell("two-transitions", 1, budget=30))  # noise 3.6% of the range: found at n = 30
    end = rows[-1]
    assert "second-order + second-order" in end["proposals"].split(";")
    table = abduction_rows(pd.DataFrame(rows), {"laws": {"second-order", "first-order", "sigmoid", "linear"}})
    (row,) = table
    assert row["family"] == "two-transitions" and row["campaigns"] == 1
    assert row["proposal made"] == 1.0 and row["right proposed"] == 1.0
    reached = max(r["p_composed"] for r in rows) >= 0.9
    assert row["right at p >= 0.9"] == float(reached)
    if reached:
        first = next(r["n"] for r in rows if r["p_composed"] >= 0.9)
        assert row["n90 median"] == first
        assert row["critical within 2 sd"] == end["critical_within_2sd"]
        # a calibrated posterior holds about 0.954^2 of its mass within 2 sd of both transitions
        assert row["if calibrated"] == end["critical_calibrated"] and 0.8 < end["critical_calibrated"] <= 1.0
    assert "| two-transitions (72) |" in abduction_markdown(table, {"two-transitions": 72})


def test_a_peak_the_grammar_cannot_express_leaves_none_of_these_leading():
    rows = run_cell(cell("peak", 0, budget=25))
    end = rows[-1]
    assert max(r["p_proposed"] for r in rows) < 0.9
    assert end["p_none"] > end["p_leader"]
    (row,) = abduction_rows(pd.DataFrame(rows), {"laws": {"second-order", "first-order", "sigmoid", "linear"}})
    assert row["any proposal at p >= 0.9"] == 0.0 and row["none leads at end"] == 1.0
    assert math.isnan(row["right proposed"])


def test_the_complexity_prior_and_the_admission_reach_every_campaign_of_a_sweep():
    """The what-if configs (deploy/sweeps/abduction-cost0.1.toml, abduction-credible.toml) set composition_cost
    and propose_admit for their sweeps: each cell carries them and the campaign a cell builds uses them; the
    committed benchmark states the defaults, and the recipe, the sweep and the campaign's settings share one
    default of each."""
    from abduce.controller.core.settings import CampaignSettings
    from abduce.controller.recipe.recipe import Recipe
    from abduce.controller.rehearse.rehearsal import Rehearsal
    from abduce.controller.rehearse.sweep_config import SweepSection

    for name, settings in (("abduction-cost0.1.toml", (0.1, 1.0)), ("abduction-credible.toml", (1.0, 0.05))):
        what_if = load_sweep(CONFIG.with_name(name))
        check_composed(what_if.cells())
        assert {(c["composition_cost"], c["propose_admit"]) for c in what_if.cells()} == {settings}
    default = CampaignSettings()
    assert {(c["composition_cost"], c["propose_admit"]) for c in load_sweep(CONFIG).cells()} == {
        (default.composition_cost, default.propose_admit)
    }
    for key in ("composition_cost", "propose_admit"):
        assert Recipe.model_fields[key].default == getattr(SweepSection(), key) == getattr(default, key)
    c = cell("two-transitions")
    recipe = Rehearsal(
        source=c["problem"]["source"], hypotheses=("second-order",), composition_cost=0.1, propose_admit=0.05
    )
    assert (recipe.settings().composition_cost, recipe.settings().propose_admit) == (0.1, 0.05)
    with pytest.raises(ValueError, match="composition_cost"):
        Rehearsal(source=c["problem"]["source"], hypotheses=("second-order",), composition_cost=0.0)
    with pytest.raises(ValueError, match="propose_admit"):
        Rehearsal(source=c["problem"]["source"], hypotheses=("second-order",), propose_admit=1.5)
