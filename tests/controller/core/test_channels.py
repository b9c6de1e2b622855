"""Several channels with costs: the product space, the design over channels, the scale, the refusals, and a
campaign against the two-channel simulator through its driver (the path a rehearsal and a sweep take)."""

import math

import numpy as np
import pytest
import torch

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.channels import Channels, Scaling
from abduce.controller.core.settings import CampaignSettings
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget, CampaignView, CostBudget
from abduce.controller.errors import ConfigError
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.hypotheses.library import BUILTIN

LAWS = ("second-order", "first-order", "sigmoid", "linear")


def test_channels_refuse_what_cannot_work():
    for names, costs, why in (
        (("y",), (1.0,), "at least 2"),
        (("y", "y"), (1.0, 1.0), "unique"),
        (("y", "image"), (1.0,), "one cost per channel"),
        (("y", "image"), (1.0, 0.0), "image=0.0"),
        (("y", "image"), (1.0, math.inf), "image=inf"),
    ):
        with pytest.raises(ConfigError, match=why):
            Channels(names, costs)
    with pytest.raises(ConfigError, match="design_explained"):
        Channels(("y", "image"), (1.0, 0.1), design_explained=1)
    with pytest.raises(ConfigError, match="finite candidate set"):
        Channels(("y", "image"), (1.0, 0.1)).augment(Space.box([(0.0, 1.0)]))


def test_the_product_space_and_the_design_over_channels():
    ch = Channels(("y", "image"), (2.0, 0.01), unit="s", design_explained=2)
    space = ch.augment(Space.finite([[0.0], [0.5], [1.0]], names=["x"], units=["K"]))
    assert space.names == ("x", "channel") and space.units == ("K", "1")
    assert space.candidates.tolist() == [[0.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.5, 1.0], [1.0, 0.0], [1.0, 1.0]]
    assert ch.row_costs(space.candidates).tolist() == [2.0, 0.01] * 3
    assert ch.expand([(0.0,), (0.5,)]) == [(0.0, 1.0), (0.5, 1.0)]  # the cheap channel first
    assert ch.name((0.5, 1.0)) == "image" and ch.cost((0.5, 0.0)) == 2.0
    # the explained channel where the cheap one read lowest and highest
    xs, ys = [(0.1, 1.0), (0.4, 1.0), (0.7, 1.0), (0.9, 1.0)], [5.0, -3.0, 9.0, 1.0]
    assert ch.explained_design(xs, ys, 4) == [(0.4, 0.0), (0.7, 0.0)]
    three = Channels(("y", "image"), (2.0, 0.01), design_explained=3)
    assert three.explained_design(xs, ys, 4) == [(0.4, 0.0), (0.1, 0.0), (0.7, 0.0)]


def test_the_scale_recovers_an_affine_map_from_the_pairs_read_on_both():
    # image = 100 - 40 y (a falling channel in other units); y at 3 points, image at those and one more
    y = {0.1: 2.0, 0.5: -1.0, 0.9: 4.0}
    xs = [(x, 1.0) for x in (0.1, 0.5, 0.9, 0.3)] + [(x, 0.0) for x in y]
    ys = [100 - 40 * y.get(x, 7.0) for x, _ in xs[:4]] + list(y.values())
    scaling = Scaling.of_design(xs, ys, Channels(("y", "image"), (1.0, 0.1)))
    for v in y.values():
        assert scaling.value(100 - 40 * v, 1) == pytest.approx(v)  # each pair lands on its explained reading
    assert scaling.sd(2.0, 1) == pytest.approx(2.0 / 40) and scaling.value(3.0, 0) == 3.0
    alone = Scaling.of_design([(0.1, 1.0), (0.5, 1.0), (0.1, 0.0)], [1.0, 2.0, 3.0], Channels(("y", "i"), (1, 1)))
    assert alone.factor == (1.0, 1.0) and alone.shift == (0.0, 0.0)  # fewer than two pairs: left as read


def test_a_campaign_over_channels_refuses_a_box_proposals_and_batches():
    ch = Channels(("y", "image"), (1.0, 0.05))
    laws = [BUILTIN[n] for n in LAWS]
    with pytest.raises(ConfigError, match="finite candidate set"):
        Campaign(Space.box([(0.0, 1.0)]), laws, "discriminate", None, Budget(5), 0, channels=ch)
    grid = Space.finite(np.linspace(0, 1, 11))
    for settings, why in ((CampaignSettings(propose="add"), "propose"), (CampaignSettings(q=2), "q = 1")):
        with pytest.raises(ConfigError, match=why):
            Campaign(grid, laws, "discriminate", None, Budget(5), 0, settings=settings, channels=ch)


def test_cost_budget():
    rule = CostBudget(3.0, "s")
    assert not rule(CampaignView(n=10, probabilities=(), integrated_variance=1.0, cost=2.9))
    assert rule(CampaignView(n=1, probabilities=(), integrated_variance=1.0, cost=3.0))
    assert rule(CampaignView(n=3, probabilities=(), integrated_variance=1.0))  # no costs: one per reading
    assert rule.describe() == "cost budget of 3 s"
    with pytest.raises(ValueError, match="> 0"):
        CostBudget(0.0)


def rehearsal(**changes):
    fields = dict(
        source="simulated:two-channel",
        hypotheses=LAWS,
        options={"x_c": 0.45, "beta": 0.3, "grid": 101, "noise_per_point": True, "noise_fraction": 0.05},
        cheap_channels={"image": 0.05},
        budget=200,
        cost_budget=5.0,
        n_init=4,
        seed=3,
    )
    return Rehearsal(**{**fields, **changes})


def test_a_campaign_over_two_channels_reads_cheap_first_spends_by_cost_and_identifies():
    from abduce.controller.drive.loop import run_campaign

    campaign, instrument = rehearsal().build()
    assert campaign.channels.names == ("y", "image") and campaign.acquisition.name == "model-information"
    done = run_campaign(campaign, instrument, [])
    readings = done.readings()
    # the design: the cheap channel at the 4 design points, then the explained one at 2 of them
    assert [c for _, c, _ in readings[:6]] == ["image"] * 4 + ["y"] * 2
    assert {x for x, _, _ in readings[4:6]} <= {x for x, _, _ in readings[:4]}
    cost = sum(1.0 if c == "y" else 0.05 for _, c, _ in readings)
    assert done.cost == pytest.approx(cost) and done.cost >= 5.0 > done.cost - 1.0  # stopped by the cost budget
    assert sum(c == "image" for _, c, _ in readings) > sum(c == "y" for _, c, _ in readings)
    assert done.leader() == "second-order" and done.probabilities()["second-order"] > 0.9
    # the views' questions are about the explained channel: its points, its band, its readings only
    xs, ys = done.data
    assert len(xs) == sum(c == "y" for _, c, _ in readings) and all(len(x) == 1 for x in xs)
    mean, sd = done.posterior("second-order")
    assert done.points().shape == (101, 1) and mean.shape == sd.shape == (101,)
    fitted = next(h for h in done.summary()["hypotheses"] if h["name"] == "second-order")["parameters"]["x_c"]
    assert abs(fitted["mean"] - 0.45) < 3 * fitted["sd"] + 0.01  # the grid's step
    scores, _ = done.acquisition_scores()
    assert scores.shape == (101,)


def test_information_per_unit_cost_chooses_the_channel():
    """With the cheap channel as costly as the explained one and four times as noisy, every reading after the
    design is on the explained channel; at a twentieth of the cost, most are cheap (same truth, same seed)."""
    from abduce.controller.drive.loop import run_campaign

    dear = rehearsal(cheap_channels={"image": 1.0}, cost_budget=None, budget=16,
                     options={**rehearsal().options, "cheap_ratio": 4.0})  # fmt: skip
    done = run_campaign(*dear.build(), [])
    after = [c for _, c, _ in done.readings()[6:]]
    assert after and set(after) == {"y"}
    cheap = run_campaign(*rehearsal(budget=16, cost_budget=None).build(), [])
    assert sum(c == "image" for _, c, _ in cheap.readings()[6:]) > 5


def test_row_noise_weighs_the_cheap_readings_by_their_own_sd():
    campaign, instrument = rehearsal(budget=8, cost_budget=None).build()
    from abduce.controller.drive.loop import run_campaign

    done = run_campaign(campaign, instrument, [])
    noise = done._row_noise()
    sim = instrument.driver.simulator
    k = abs(done._scaling().factor[1])
    assert torch.allclose(noise[1::2], torch.full_like(noise[1::2], (k * sim.reading_sd("image")) ** 2))
    assert float(noise[0::2].abs().max()) == 0.0  # the explained channel reports none: the fitted noise alone


def test_model_information_scores_each_laws_band_with_its_parameters_integrated():
    """Gardner et al. integrate each model's parameters in the predictive; plugged in at the fit, a law read
    at two points on the explained channel predicted as if its parameters were known there."""
    from abduce.controller.decide.acquisition import at_points, model_information
    from abduce.controller.drive.loop import run_campaign

    done = run_campaign(*rehearsal(budget=10, cost_budget=None).build(), [])
    usable = done.belief.usable()
    names = [done.belief.slots[i].hypothesis.name for i in usable]
    bands = [done._band(i) for i in usable]
    plugged = [done.belief.slots[i].posterior for i in usable]
    for band, post in zip(bands, plugged):
        assert bool((band.var >= post.var - 1e-12).all()) and float((band.var - post.var).max()) > 0
    weights = done._weights()[usable]
    scores, _ = done._scores(None)
    expected = model_information(*at_points(bands, done._row_noise()), weights) / done._row_costs
    plug_in = model_information(*at_points(plugged, done._row_noise()), weights) / done._row_costs
    free = torch.isfinite(scores)
    assert int(free.sum()) == len(scores) - 10 and names
    torch.testing.assert_close(scores[free], expected[free])
    assert not torch.allclose(scores[free], plug_in[free])


def test_a_failed_design_reading_is_retried_on_its_own_channel_and_the_scale_still_has_two_pairs():
    """A cheap design reading that fails is asked again nearby on the cheap channel (not on the costly one); an
    explained design reading that fails is moved to a neighbour, and the scale pairs it with the cheap reading
    nearest to it, so the cheap readings still land on the explained channel's scale."""
    campaign, instrument = rehearsal(budget=12, cost_budget=None).build()
    first = campaign.ask()
    campaign.skip(first.request_id)
    again = campaign.ask()
    assert again.reason == "initial-design-retry" and again.x[-1] == 1.0 and again.x[:-1] != first.x[:-1]
    while campaign.n < 4:  # the rest of the cheap design
        r = campaign.ask()
        campaign.tell(instrument(r))
    explained = campaign.ask()
    assert explained.x[-1] == 0.0 and explained.reason == "initial-design"
    campaign.skip(explained.request_id)  # the explained channel failed there: a neighbour instead
    while campaign.n < 6:
        campaign.tell(instrument(campaign.ask()))
    scaling = campaign._scaling()
    assert len({x[:-1] for x in campaign._x if x[-1] == 0.0} & {x[:-1] for x in campaign._x if x[-1] == 1.0}) == 1
    sim = instrument.driver.simulator
    assert scaling.factor[1] == pytest.approx(1 / sim.gain, rel=0.5)  # not the identity: the scale was found
    record = campaign.tell(instrument(campaign.ask()))  # the first step after the design: every law fitted
    assert campaign.n == 7 and set(record.probabilities) == set(LAWS)


def test_a_campaign_over_channels_refuses_a_baseline_policy_and_a_one_point_design():
    from abduce.controller.recipe.recipe import Recipe

    ch, grid = Channels(("y", "image"), (1.0, 0.05)), Space.finite(np.linspace(0, 1, 11))
    laws = [BUILTIN[n] for n in LAWS]
    with pytest.raises(ConfigError, match="picks points without an acquisition"):
        Campaign(grid, laws, "random", None, Budget(5), 0, channels=ch)
    with pytest.raises(ConfigError, match="n_init >= 2"):
        Campaign(grid, laws, "discriminate", None, Budget(5), 0, settings=CampaignSettings(n_init=1), channels=ch)
    # the recipe refuses both with its config, before any instrument registers
    for change, why in (({"policy": "random"}, "picks points without the channels' costs"), ({"n_init": 1}, "n_init")):
        with pytest.raises(ConfigError, match=why):
            Recipe.of(hypotheses=LAWS, cheap_channels={"image": 0.05}, **change)


def test_a_past_campaign_over_channels_transfers_to_one_with_or_without_them():
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.recipe.transfer import Transfer

    past = run_campaign(*rehearsal(budget=12, cost_budget=None).build(), [])
    transfer = Transfer.of(past, "past")
    assert transfer.axes == ("",) and {p.name for p in transfer.laws}  # the space's own axes, no channel axis
    for changes in ({}, {"cheap_channels": {}}):
        campaign, _ = rehearsal(transfer=transfer, **changes).build()
        assert campaign.belief.names == past.belief.names
