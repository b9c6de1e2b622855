"""Abduction in the campaign (controller/core/abduction.py): a two-transition sample, which none of the four
transition laws explains, makes the campaign propose "second-order + second-order", record it on the step,
and weigh it like the others from then on; an in-set truth proposes nothing; proposals are deterministic
for a seed, held for an operator with ``propose = "suggest"``, and journalled so that a rebuild, a resume
after a stop in the middle of the proposal round, and a snapshot all come back to the same proposals and
the same next request.

The campaigns here are small (grid 101, 16-21 measurements, proposal rounds from n = 8 every 4): one
real campaign per fixture, shared by the tests that only read it.
"""

from __future__ import annotations

import dataclasses
import math
from math import comb

import numpy as np
import pytest

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement
from abduce.controller.core.settings import CampaignSettings
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.controller.errors import ConfigError
from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import rebuild, snapshot
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal, JournalError
from abduce.controller.rehearse.simulated import SimulatedRun
from abduce.hypotheses.library import BUILTIN
from abduce.simulators.transition1d import Transition1D

LAWS = ("second-order", "first-order", "sigmoid", "linear")
TWO = "second-order + second-order"
SETTINGS = CampaignSettings(propose="add", propose_after=8, propose_every=4)
TWO_TRANSITIONS = {"law": "two-transitions", "x_c": 0.75, "x_c2": 0.3, "beta": 0.3}
IN_SET = {"law": "second-order", "x_c": 0.6, "beta": 0.3}
# the depth-1 compositions of the four laws (three have a critical point): a background of degree 0-2 on
# each of the three, a sum of two of them (3 multichoose 2 = 6); the complexity prior shares
# composition_cost (1 by default) among them
DEPTH_ONE = 3 * 3 + comb(3 + 1, 2)


def campaign(truth: dict, seed: int, budget: int, settings: CampaignSettings = SETTINGS):
    sim = Transition1D(grid=101, seed=seed, noise_fraction=0.05, **truth)
    c = Campaign(Space.finite(sim.candidates()), [BUILTIN[n] for n in LAWS], "discriminate", None, Budget(budget),
                 seed=seed, settings=settings)  # fmt: skip
    return c, sim


def step(c: Campaign, sim: Transition1D):
    """One ask and tell; returns the request and the step's record."""
    r = c.ask()
    return r, c.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))


def run(truth: dict, seed: int, budget: int, settings: CampaignSettings = SETTINGS):
    c, sim = campaign(truth, seed, budget, settings)
    requests = []
    while not c.done:
        r, _ = step(c, sim)
        requests.append((r.request_id, r.x, r.hypothesis))
    return c, requests


@pytest.fixture(scope="module")
def added():
    """Two transitions, propose = "add", seed 1: proposed at a round from n = 8 on, then more steps."""
    return run(TWO_TRANSITIONS, seed=1, budget=19)


def proposal_step(c: Campaign) -> int:
    return next(r.step for r in c.history if r.proposals)


def test_two_transitions_add_the_sum_of_two_second_order_laws_and_record_it_on_its_step(added):
    c, _ = added
    k = proposal_step(c)
    record = c.history[k]
    (two,) = [p for p in record.proposals if p["name"] == TWO]
    assert two["added"] is True and two["suggested"] is False
    assert two["step"] == k == record.step and two["depth"] == 1
    assert two["tree"] == {"sum": [{"law": "second-order"}, {"law": "second-order"}]}
    assert "x_c_1" in two["formula"] and "x_c_2" in two["formula"]
    assert two["reason"]
    assert two["weight"] == pytest.approx(SETTINGS.composition_cost / DEPTH_ONE)
    assert math.isfinite(two["screen"]) and math.isfinite(two["log_evidence"]) and two["log_evidence_se"] >= 0
    assert 0.0 < two["probability"] < 1.0
    params = two["parameters"]
    assert set(params) == {"A_1", "x_c_1", "beta_1", "A_2", "x_c_2", "beta_2"}
    assert all(len(v) == 2 and v[1] >= 0 for v in params.values())
    assert two["units"]["x_c_1"] == ["x", 0] and two["units"]["A_2"] == ["y", 0] and two["units"]["beta_1"] == ["1", 0]
    assert set(two["units"]) == {f"{q}_{i}" for q in ("A", "x_c", "beta", "delta", "span") for i in (1, 2)}
    assert params["x_c_1"][0] < params["x_c_2"][0]  # the ordered region: the mirror mode counted once
    assert params["x_c_1"][0] == pytest.approx(0.3, abs=0.1) and params["x_c_2"][0] == pytest.approx(0.75, abs=0.1)
    # a proposal is recorded where it is credible: P if added >= propose_admit, or its weighted evidence
    # beats every declared law's
    declared = max(record.log_evidence[n] for n in LAWS if n in record.log_evidence)
    beats = two["log_evidence"] + math.log(two["weight"]) > declared
    assert two["probability"] >= SETTINGS.propose_admit or beats
    assert all(not r.proposals for r in c.history[:k])
    assert c.proposals == [p for r in c.history for p in r.proposals]
    assert set(c.abduction.rounds) <= set(range(SETTINGS.propose_after, c.n + 1, SETTINGS.propose_every))


def test_from_the_proposal_on_the_policy_and_the_acquisition_weigh_it_like_the_others(added):
    c, requests = added
    k = proposal_step(c)
    assert TWO in c.hypothesis_names and c.hypothesis_names[: len(LAWS)] == LAWS
    assert TWO in c.history[k].refit  # fitted on all the data when added
    for record in c.history[k:]:
        assert TWO in record.probabilities and TWO in record.log_evidence and TWO in record.integrated_variance
        assert TWO in record.refit  # discriminate refits every law each step below n = 100: the new one too
        assert sum(record.probabilities.values()) + (record.none or {}).get("probability", 0.0) == pytest.approx(1.0)
    assert all(TWO not in r.probabilities for r in c.history[:k])
    summary = {h["name"]: h for h in c.summary()["hypotheses"]}
    # discriminate drives with every law at once (no single driver): the count is kept for the new law too
    assert summary[TWO]["times_chosen"] == sum(1 for _, _, h in requests if h == TWO)
    assert c.hypothesis_names.index(TWO) in c.belief.usable()  # the acquisition scores with its posterior
    assert c.posterior(TWO) is not None
    assert c.leader() == TWO and c.probabilities()[TWO] > 0.9


def test_an_epsilon_greedy_policy_chooses_the_added_law_to_drive_and_counts_it():
    """A policy with one driver a step: after the proposal the new law drives requests like any other."""
    sim = Transition1D(grid=101, seed=1, noise_fraction=0.05, **TWO_TRANSITIONS)
    c = Campaign(Space.finite(sim.candidates()), [BUILTIN[n] for n in LAWS], "epsilon-greedy", None, Budget(18),
                 seed=1, settings=SETTINGS)  # fmt: skip
    drivers = []
    while not c.done:
        r, _ = step(c, sim)
        drivers.append(r.hypothesis)
    k = proposal_step(c)
    assert any(p["name"] == TWO and p["added"] for p in c.history[k].proposals)
    assert TWO not in drivers[: k + 1] and TWO in drivers[k + 1 :]
    summary = {h["name"]: h for h in c.summary()["hypotheses"]}
    assert summary[TWO]["times_chosen"] == drivers.count(TWO) > 0
    assert sum(h["times_chosen"] for h in summary.values()) == sum(d is not None for d in drivers)


def test_the_same_seed_makes_the_same_proposals_and_the_same_requests(added):
    c, requests = added
    again, requests_again = run(TWO_TRANSITIONS, seed=1, budget=19)
    assert again.proposals == c.proposals and requests_again == requests
    assert again.history == c.history


def test_an_in_set_truth_proposes_nothing():
    c, _ = run(IN_SET, seed=0, budget=16)
    assert c.abduction.rounds  # rounds ran (audits), and none found a law that beats second-order
    assert c.proposals == [] and c.hypothesis_names == LAWS
    assert c.leader() == "second-order"


def test_suggest_holds_the_proposal_until_an_operator_accepts_it():
    settings = dataclasses.replace(SETTINGS, propose="suggest")
    c, sim = campaign(TWO_TRANSITIONS, seed=1, budget=18, settings=settings)
    while not any(r.proposals for r in c.history):
        step(c, sim)
    record = c.history[-1]
    suggested = [p for p in record.proposals if p["name"] == TWO]
    assert suggested and suggested[0]["suggested"] is True and suggested[0]["added"] is False
    assert c.hypothesis_names == LAWS and TWO not in record.probabilities
    with pytest.raises(ConfigError, match="second-order \\+ second-order") as refused:
        c.accept("third-order + nothing")
    assert "third-order + nothing" in str(refused.value)
    accepted = c.accept(TWO)
    assert accepted["added"] is True and accepted["suggested"] is False and accepted["name"] == TWO
    assert TWO in c.hypothesis_names
    with pytest.raises(ConfigError):
        c.accept(TWO)  # accepted once; nothing of that name waits any more
    _, after = step(c, sim)
    (recorded,) = [p for p in after.proposals if p["name"] == TWO]
    assert recorded == accepted and recorded["reason"] == "accepted by the operator"
    assert TWO in after.probabilities and TWO in after.refit


# ------------------------------------------------------------------------------------------ the journal

RUN = SimulatedRun(truth="two-transitions", x_c=0.75, beta=0.3, grid=101, seed=1, propose="add", budget=21)


@pytest.fixture(scope="module")
def journalled(tmp_path_factory):
    """``abduce run``'s campaign (rounds from n = 10 every 5), journalled: proposes at n = 20, then one step."""
    path = tmp_path_factory.mktemp("abduction") / "j.sqlite"
    with Journal.create(path, {"mode": "in-process", **RUN.model_dump(mode="json")}) as journal:
        live = RUN.run(journal=journal)
    k = next(r.step for r in live.history if r.proposals)
    assert k + 1 < live.n  # a step after the proposal: its request is the live "next request"
    return path, live, k


def sent(live: Campaign, n: int) -> tuple:
    """The request the live campaign sent after ``n`` measurements (its id, point and driver)."""
    record = live.history[n]
    return record.request_id, record.x, record.hypothesis


def until(live: Campaign, k: int) -> list[dict]:
    """The proposals the live campaign had made by step ``k`` (a later round may add more)."""
    return [p for p in live.proposals if p["step"] <= k]


def asked(c: Campaign) -> tuple:
    r = c.ask()
    return r.request_id, r.x, r.hypothesis


def test_a_rebuilt_campaign_makes_the_same_proposals_and_the_same_next_request(journalled):
    path, live, k = journalled
    assert any(p["name"] == TWO and p["added"] for p in live.history[k].proposals)
    with Journal.open(path, readonly=True) as journal:
        decisions = [e.body for e in read(journal) if e.kind == "decision"]
        _, rebuilt = rebuild(journal)
        _, partial = rebuild(journal, upto=k + 1)
    assert [p for d in decisions for p in d.proposals] == live.proposals  # journalled with the step's decision
    assert rebuilt.proposals == live.proposals and rebuilt.hypothesis_names == live.hypothesis_names
    assert rebuilt.history == live.history
    assert partial.proposals == until(live, k) and partial.history == live.history[: k + 1]
    assert asked(partial) == sent(live, k + 1)


def test_a_stop_during_the_proposal_round_resumes_to_the_same_proposals_and_next_request(tmp_path, journalled):
    """Killed while the round ran: the step's measurement is journalled, its decision (with the proposal and
    the added law's fit) is not. The resume re-tells it, runs the round again from the same seeds (no fit
    to restore), and hands the step back as undecided."""
    path, live, k = journalled
    cut = tmp_path / "killed.sqlite"
    with Journal.open(path, readonly=True) as full:
        events = list(full.events())
        config = full.config()
    with Journal.create(cut, config) as journal:
        measured = 0
        for e in events[1:]:
            if e.kind == "decision" and measured == k + 1:
                break  # the kill: the proposal step's decision never reached the journal
            journal.append(e.kind, e.body, request_id=e.request_id, key_id=e.key_id)
            measured += e.kind == "measurement"
    assert measured == k + 1
    with Journal.open(cut, readonly=True) as journal:
        resumed = retell(RUN.build()[0], journal)
    (undecided,) = resumed.undecided
    assert undecided.step == k and undecided.proposals == live.history[k].proposals
    assert resumed.in_flight == ()
    campaign = resumed.campaign
    assert campaign.proposals == until(live, k)
    later = sum(p["added"] for p in live.proposals if p["step"] > k)  # added by rounds after step k
    assert campaign.hypothesis_names == live.hypothesis_names[: len(live.hypothesis_names) - later]
    assert campaign.history == live.history[: k + 1]
    assert asked(campaign) == sent(live, k + 1)


def test_a_snapshot_lists_the_added_law_and_answers_its_posterior(journalled):
    path, live, _ = journalled
    with Journal.open(path, readonly=True) as journal:
        _, snap = snapshot(journal)
    assert snap.hypothesis_names == live.hypothesis_names and TWO in snap.hypothesis_names
    assert snap.proposals == live.proposals and snap.probabilities() == live.probabilities()
    mean, sd = snap.posterior(TWO)
    live_mean, live_sd = live.posterior(TWO)
    np.testing.assert_allclose(mean, live_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sd, live_sd, rtol=1e-4, atol=1e-6)
    assert {h["name"] for h in snap.summary()["hypotheses"]} == set(live.hypothesis_names)


def _copy(path, to, proposals=lambda ps: ps):
    """The journal at ``path`` copied to ``to``, each decision's proposals passed through ``proposals``."""
    with Journal.open(path, readonly=True) as full:
        events = list(full.events())
        config = full.config()
    with Journal.create(to, config) as journal:
        for e in events[1:]:
            body = e.body
            if e.kind == "decision" and body.get("proposals"):
                body = {**body, "proposals": proposals([dict(p) for p in body["proposals"]])}
            journal.append(e.kind, body, request_id=e.request_id, key_id=e.key_id)
    return to


def test_a_rebuild_replays_the_journalled_round_without_screening_or_fitting_a_candidate(journalled, monkeypatch):
    """The round's winners come from the journal (their trees, weights and fits), so a machine whose floats
    differ cannot make other proposals: with the screen made to fail, the rebuild still equals the live run."""
    from abduce.controller.core import abduction

    path, live, k = journalled

    def no_screen(*args, **kwargs):
        raise AssertionError("a replayed round screened the candidates again")

    monkeypatch.setattr(abduction, "screen", no_screen)
    with Journal.open(path, readonly=True) as journal:
        _, rebuilt = rebuild(journal)
        _, partial = rebuild(journal, upto=k + 1)
    assert rebuilt.history == live.history and rebuilt.hypothesis_names == live.hypothesis_names
    assert all(p["fit_index"] is not None for p in live.proposals)
    # the winners were not the round's first fits: the replay seeds each by its own fit_index
    winners = [p["fit_index"] for p in live.history[k].proposals if p["added"]]
    assert winners != list(range(len(winners)))
    assert asked(partial) == sent(live, k + 1)


def test_a_journal_without_fit_indices_runs_the_round_again_to_the_same_proposals(tmp_path, journalled):
    """A journal written before rounds were replayed (its proposals carry no ``fit_index``): the round runs
    again from the same seeds, as it did then."""
    path, live, k = journalled

    def older(proposals):
        return [{key: v for key, v in p.items() if key != "fit_index"} for p in proposals]

    with Journal.open(_copy(path, tmp_path / "older.sqlite", older), readonly=True) as journal:
        _, rebuilt = rebuild(journal)
    assert rebuilt.proposals == live.proposals  # recomputed, fit_index included
    assert rebuilt.history == live.history


def test_a_journalled_proposal_the_grammar_cannot_build_is_named(tmp_path, journalled):
    path, _, k = journalled

    def broken(proposals):
        return [{**p, "tree": {"sum": [{"law": "third-order"}, {"law": "second-order"}]}} for p in proposals]

    with Journal.open(_copy(path, tmp_path / "broken.sqlite", broken), readonly=True) as journal:
        with pytest.raises(JournalError, match=f"broken.sqlite.*journalled at step {k} cannot be rebuilt.*third-order"):
            rebuild(journal)


def test_a_snapshot_at_the_proposal_step_conditions_the_added_law_with_the_rounds_draws(journalled):
    """Right after its round, an added law's only fit is the round's, whose evidence drew the round's seeds
    (``fit_index``): the snapshot draws the same, so its probabilities are the live step's."""
    path, live, k = journalled
    with Journal.open(path, readonly=True) as journal:
        _, snap = snapshot(journal, upto=k + 1)
    added = [p["name"] for p in live.history[k].proposals if p["added"]]
    assert added and all(name in snap.hypothesis_names for name in added)
    weighed = snap.belief.weigh()  # from the conditioned fits, not the step's record
    assert weighed.log_z == pytest.approx(live.history[k].log_evidence, rel=1e-9, abs=1e-9)
    # the probabilities (which also weigh "none of these") within rounding, as rebuild.snapshot promises
    assert weighed.probabilities == pytest.approx(live.history[k].probabilities, rel=1e-4, abs=1e-6)


def test_a_credible_law_is_put_to_the_test_before_it_leads(journalled):
    """With ``propose_admit`` 0.05 a composed law is admitted once it is credible (P if added >= 0.05): here the
    two-transition sum at P = 0.36, behind the declared laws, five measurements before the default (1.0: once it
    beats every law) admits it. Both end with it leading."""
    _, strict, k = journalled
    credible = RUN.model_copy(update={"propose_admit": 0.05}).run()
    first = next(r.step for r in credible.history if r.proposals)
    (two,) = [p for p in credible.history[first].proposals if p["name"] == TWO]
    declared = max(v for n, v in credible.history[first].log_evidence.items() if n in LAWS)
    assert two["added"] and 0.05 <= two["probability"] < 0.5
    assert two["log_evidence"] + math.log(two["weight"]) < declared  # credible, not leading
    (late,) = [p for p in strict.history[k].proposals if p["name"] == TWO]
    assert first < k and late["log_evidence"] + math.log(late["weight"]) > max(
        v for n, v in strict.history[k].log_evidence.items() if n in LAWS
    )
    assert credible.leader() == strict.leader() == TWO
