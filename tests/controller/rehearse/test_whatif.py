"""Rebuilding campaigns from journals, and what-if replays with other settings."""

import json

import pytest

from abduce.controller.cli.campaigns import run_in_process
from abduce.controller.errors import ConfigError
from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.spec import spec_of
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.controller.rehearse.simulated import SimulatedRun
from abduce.controller.rehearse.whatif import rows, what_if


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    opts = SimulatedRun(
        truth="second-order",
        hypotheses=("second-order", "linear"),
        policy="epsilon-greedy",
        budget=10,
        grid=101,
        n_init=4,
        seed=2,
    )
    summary = run_in_process(opts, out, progress=False)
    return out, opts, summary


def test_rebuild_gives_the_campaign_as_it_stood_after_n_steps(recorded):
    out, opts, summary = recorded
    with Journal.open(out / "journal.sqlite", readonly=True) as j:
        spec, full = rebuild(j)
        _, partial = rebuild(j, upto=6)
    assert spec.source == "simulated:transition-1d" and spec.truth == "second-order"
    assert full.summary() == summary
    reference, _ = opts.build()
    direct = opts.run()
    assert full.data == direct.data
    assert partial.n == 6 and partial.data[0] == direct.data[0][:6]
    assert partial.probabilities() == direct.history[5].probabilities


def test_what_if_runs_the_changed_settings_on_the_same_simulator_and_reports_both(recorded, tmp_path):
    out, opts, summary = recorded
    result = what_if(out, policy="discriminate", out=tmp_path / "whatif")
    assert result["target"] == "second-order" and result["target_is_truth"]
    assert result["recorded"]["probabilities"] == summary_probabilities(summary)
    direct = Rehearsal(
        "simulated:transition-1d",
        ("second-order", "linear"),
        {"truth": "second-order", "grid": 101, "x_c": 0.6, "beta": 0.5, "noise": None},
        policy="discriminate",
        budget=10,
        n_init=4,
        seed=2,
    ).run()
    assert result["what_if"]["probabilities"] == direct.probabilities()
    assert result["what_if"]["policy"] == "discriminate" and result["recorded"]["policy"] == "epsilon-greedy"
    assert 0 <= result["what_if"]["error"] < 0.2 and 0 <= result["recorded"]["error"] < 0.2
    table = dict((r[0], r[1:]) for r in rows(result))
    assert table["policy"] == ("epsilon-greedy", "discriminate")
    # the what-if run left its own run directory, itself rebuildable
    with Journal.open(tmp_path / "whatif" / "journal.sqlite", readonly=True) as j:
        assert spec_of(j.config()).mode == "rehearsal"
        assert rebuild(j)[1].data == direct.data


def summary_probabilities(summary):
    return {h["name"]: h["probability"] for h in summary["hypotheses"]}


def test_a_run_against_a_real_instrument_needs_against(tmp_path):
    config = {
        "mode": "listen",
        "hypotheses": ["linear"],
        "policy": "discriminate",
        "acquisition": None,
        "budget": 5,
        "seed": 0,
        "n_init": 3,
        "epsilon": 0.1,
        "capabilities": {"axes": [{"name": "x", "min": 0.0, "max": 1.0}], "channels": [{"name": "y"}]},
    }
    Journal.create(tmp_path / "journal.sqlite", config).close()
    with pytest.raises(ConfigError, match="--against"):
        what_if(tmp_path)
    assert json.dumps(config)  # nothing written to the journal


@pytest.fixture(scope="module")
def recorded_grid(tmp_path_factory):
    """The recorded run's simulator measured once on its whole grid (101 points; one pixel missed), in pm/V."""
    import numpy as np

    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(law="second-order", grid=101, seed=7)
    points = sim.candidates()
    values = sim.measure(points)
    values[10] = np.nan
    path = tmp_path_factory.mktemp("grid") / "grid.npz"
    RecordedDataset(points=points, axis_names=("x",), values={"y": values}, units={"x": "at.%", "y": "pm/V"}).save(path)
    return path


def test_against_a_recorded_grid_the_reconstruction_is_scored_on_every_recorded_point(recorded, recorded_grid):
    import numpy as np

    from abduce.instruments.drivers.recorded import RecordedDataset

    out, opts, summary = recorded
    result = what_if(out, against=f"recorded:{recorded_grid}")
    direct = Rehearsal(
        f"recorded:{recorded_grid}",
        ("second-order", "linear"),
        {},
        policy="epsilon-greedy",
        budget=10,
        n_init=4,
        seed=2,
    ).run()
    # independently: the posterior mean at each campaign point against the value the file holds there
    data = RecordedDataset.load(recorded_grid)
    points = direct.points()
    nearest = np.abs(points[:, None, 0] - data.points[None, :, 0]).argmin(axis=1)
    assert np.allclose(data.points[nearest, 0], points[:, 0])
    truth = data.values["y"][nearest]
    ok = np.isfinite(truth)
    diff = direct.posterior_mean()[ok] - truth[ok]
    got = result["what_if"]["reconstruction"]
    assert got["source"] == "recorded grid" and got["unit"] == "pm/V" and got["leader"] == direct.leader()
    assert (got["points"], got["missing"]) == (100, 1)
    assert got["rmse"] == pytest.approx(float(np.sqrt(np.mean(diff**2))), rel=1e-9)
    assert got["max"] == pytest.approx(float(np.abs(diff).max()), rel=1e-9)
    assert result["what_if"]["error"] == pytest.approx(got["rmse"] / float(np.ptp(truth[ok])), rel=1e-9)
    # the recorded run measured the same grid's points: it is scored against the same values
    assert result["recorded"]["reconstruction"]["points"] == 100
    table = dict((r[0], r[1:]) for r in rows(result))
    assert table["reconstruction against"] == ("recorded grid, 100 points (1 NaN left out)",) * 2
    assert table["RMSE (pm/V)"][1] == f"{got['rmse']:.3g}" and table["max error (pm/V)"][1] == f"{got['max']:.3g}"


def test_the_reconstruction_figures_follow_their_formulas():
    import numpy as np

    from abduce.controller.rehearse.reconstruction import Truth, score

    class Fitted:  # a campaign's two read-outs that score uses, at 5 points
        def posterior_mean(self):
            return np.array([0.1, 1.1, 2.1, 2.8, 9.0])

        def leader(self):
            return "linear"

    truth = Truth(np.array([0.0, 1.0, 2.0, 3.0, np.nan]), "recorded grid", "nA")
    got = score(Fitted(), truth)
    # differences over the 4 finite points: 0.1, 0.1, 0.1, -0.2
    assert got["rmse"] == pytest.approx(np.sqrt((3 * 0.01 + 0.04) / 4))
    assert got["max"] == pytest.approx(0.2) and got["relative"] == pytest.approx(got["rmse"] / 3.0)
    assert (got["points"], got["missing"], got["unit"], got["leader"]) == (4, 1, "nA", "linear")
    assert score(Fitted(), None) is None
