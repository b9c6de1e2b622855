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
