"""The suite's run of tests/killtest.py: 8 kill -9s of the daemon, each in a journal state chosen in
advance by a seeded schedule (2 at start-up, 2 with a request in flight, 2 mid-fit, 2 between steps);
nothing lost, nothing doubled. The counts come from the schedule, not from how fast the machine is."""

import sys
from collections import Counter

import pytest

from tests.killtest import KINDS, run, schedule

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP and the journal's lock probe are Linux's")

KILLS, BUDGET, SEED = 8, 30, 1


def test_kills_in_chosen_journal_states_lose_nothing_and_measure_nothing_twice(tmp_path):
    planned = Counter(t.kind for t in schedule(KILLS, SEED))
    assert planned == {kind: 2 for kind in KINDS}
    result = run(kills=KILLS, budget=BUDGET, seed=SEED, workdir=tmp_path, log=lambda *a: None)
    # every scheduled kill happened, each in the state it targeted (read back from the journal after it)
    assert result["kills"] == KILLS and result["starts"] == KILLS + 1 and result["failures"] == []
    assert result["kills_by_kind"] == planned and result["mid_campaign_kills"] == 6
    assert result["not_as_targeted"] == []
    # nothing lost, nothing measured twice, the same data as an uninterrupted run
    assert result["measurements"] == result["unique_ids"] == BUDGET
    assert result["measured_twice"] == [] and result["instrument_measurements"] == BUDGET
    assert result["undecided"] == []  # a step killed mid-fit gets its decision journalled on resume
    assert result["equals_uninterrupted"]


@pytest.mark.slow
def test_kills_during_proposal_rounds_resume_to_the_same_proposals_and_requests(tmp_path):
    """Abduction on a two-transition sample: kills mid-fit land in the steps whose decision runs a proposal
    round too; every resume makes the same proposals at the same steps as an uninterrupted run, and the same
    measurements."""
    result = run(
        kills=KILLS,
        budget=BUDGET,
        seed=2,
        workdir=tmp_path,
        log=lambda *a: None,
        law="two-transitions",
        propose="add",
    )  # fmt: skip  (seed 2: the uninterrupted run adds second-order + second-order after its last measurement)
    assert result["kills"] == KILLS and result["failures"] == [] and result["undecided"] == []
    assert result["measurements"] == result["unique_ids"] == BUDGET and result["measured_twice"] == []
    assert result["proposals"], "the uninterrupted run proposes: the test must exercise a round"
    assert result["proposals_as_uninterrupted"] and result["equals_uninterrupted"]


def test_kills_of_a_campaign_with_transferred_priors_resume_to_the_same_requests(tmp_path):
    """A daemon whose campaign took its priors from a past run (``prior_from``): every resume rebuilds the same
    priors from its journal, so the measurements equal those of an uninterrupted run from the same past run."""
    from typer.testing import CliRunner

    from abduce.controller.cli import app
    from abduce.controller.journal.store import Journal
    from abduce.controller.recipe.spec import spec_of

    past = tmp_path / "past"
    made = CliRunner().invoke(app, ["run", "--out", str(past), "--budget", "12", "--seed", "5", "--grid", "101",
                                    "--hypotheses", "second-order,linear", "--quiet"])  # fmt: skip
    assert made.exit_code == 0, made.output
    result = run(kills=KILLS, budget=BUDGET, seed=SEED, workdir=tmp_path / "k", log=lambda *a: None, prior_from=past)
    assert result["kills"] == KILLS and result["failures"] == [] and result["undecided"] == []
    assert result["measurements"] == result["unique_ids"] == BUDGET and result["measured_twice"] == []
    assert result["equals_uninterrupted"]
    with Journal.open(tmp_path / "k" / "run" / "journal.sqlite", readonly=True) as journal:
        assert spec_of(journal.config()).transfer is not None


def test_kills_of_a_campaign_over_two_channels_with_transferred_priors_resume_to_the_same_requests(tmp_path):
    """A daemon whose campaign models the instrument's cheap channel beside the explained one, and took its
    priors from a past run: every resume re-tells the readings of both channels (the channel is the point's
    last coordinate in the journal), rebuilds the same priors, and asks for the same point on the same channel
    as an uninterrupted run."""
    from typer.testing import CliRunner

    from abduce.controller.cli import app
    from abduce.controller.journal.store import Journal
    from abduce.controller.recipe.spec import spec_of

    past = tmp_path / "past"
    made = CliRunner().invoke(app, ["run", "--out", str(past), "--budget", "10", "--seed", "5", "--grid", "101",
                                    "--hypotheses", "second-order,linear", "--quiet"])  # fmt: skip
    assert made.exit_code == 0, made.output
    result = run(kills=KILLS, budget=BUDGET, seed=SEED, workdir=tmp_path / "k", log=lambda *a: None,
                 prior_from=past, cheap={"image": 0.05})  # fmt: skip
    assert result["kills"] == KILLS and result["failures"] == [] and result["undecided"] == []
    assert result["measurements"] == result["unique_ids"] == BUDGET and result["measured_twice"] == []
    assert result["equals_uninterrupted"]
    with Journal.open(tmp_path / "k" / "run" / "journal.sqlite", readonly=True) as journal:
        spec = spec_of(journal.config())
        assert spec.cheap_channels == {"image": 0.05} and spec.transfer is not None
