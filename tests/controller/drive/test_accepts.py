"""An operator's accept of a suggested composed law through the pure objects: the campaign suggests, the accept
is journalled before it is applied, and a campaign re-told its journal accepts it at the same place and asks
for the same next point; the refusals say why; the daemon's queue and control lane answer an accept when the
campaign thread has applied it, and keep answering status meanwhile."""

import threading
from concurrent.futures import Future

import numpy as np
import pytest

from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement
from abduce.controller.core.settings import CampaignSettings
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.accepts import AcceptQueue, accept, suggested
from abduce.controller.drive.control import ControlError, ControlServer, request
from abduce.controller.drive.loop import steps
from abduce.controller.errors import AbduceError, ConfigError
from abduce.controller.journal.events import AcceptBody, append, read
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal, JournalError
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.simulators.transition1d import Transition1D
from tests.controller.journal.test_journal_mutants import hand_built
from tests.instruments.conftest import LOOPBACK

# cheap fits; a round may run from the first fit on (n = 9), every measurement
SUGGEST = CampaignSettings(
    propose="suggest",
    n_init=9,
    propose_after=9,
    propose_every=1,
    propose_draws=256,
    propose_fits=2,
    fit=FitSettings(screen=64, maxiter=60),
    evidence_samples=128,
    reference_size=256,
    check_below=0,
)


def two_transitions(settings: CampaignSettings = SUGGEST):
    """A sample with two transitions (x_c 0.75 and 0.3) that the one declared law, second-order, cannot explain;
    the campaign over it and its instrument."""
    sim = Transition1D(law="two-transitions", x_c=0.75, x_c2=0.3, beta=0.3, grid=101, noise_fraction=0.01, seed=1)
    campaign = Campaign(
        Space.finite(sim.candidates()), [BUILTIN["second-order"]], "discriminate", None, Budget(14), seed=1,
        settings=settings,
    )  # fmt: skip

    def instrument(r):
        return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))

    return campaign, instrument


def test_an_accept_is_journalled_first_and_a_retold_campaign_accepts_it_at_the_same_place(tmp_path):
    campaign, instrument = two_transitions()
    journal = Journal.create(tmp_path / "journal.sqlite", {"mode": "test"})
    for _ in range(12):  # bounded: the first round (n = 9) suggests "second-order + second-order" for this sample
        if suggested(campaign):
            break
        steps(campaign, instrument, journal)
    assert suggested(campaign) == ["second-order + second-order"]
    name, n = "second-order + second-order", campaign.n
    with pytest.raises(ConfigError, match=r"no suggested law is named 'linear'; suggested: second-order \+ second"):
        accept(campaign, "linear", journal)
    old = Journal.open(hand_built(tmp_path / "old.sqlite"))  # created before accepts were journalled
    with pytest.raises(ConfigError, match="before accepts were journalled and cannot record one"):
        accept(campaign, name, old)
    old.close()
    assert not list(read(journal, "accept"))  # a refused accept is not journalled
    assert suggested(campaign) == [name] and name not in campaign.hypothesis_names

    record = accept(campaign, name, journal)
    assert record["added"] and not record["suggested"] and record["reason"] == "accepted by the operator"
    assert name in campaign.hypothesis_names and suggested(campaign) == []
    first = campaign.ask()  # the accept is the journal's last event: a resume now asks the same
    stopped_here, _ = two_transitions()
    retell(stopped_here, journal)
    assert stopped_here.hypothesis_names == campaign.hypothesis_names
    assert (stopped_here.ask().request_id, stopped_here.ask().x) == (first.request_id, first.x)
    (told,) = steps(campaign, instrument, journal)  # the accepted law is fitted with the next measurement
    assert name in told.refit and name in told.probabilities
    assert [p["name"] for p in told.proposals if p["added"]] == [name]
    after = campaign.ask()

    kinds = [(e.kind, e.body.n if e.kind == "accept" else None) for e in read(journal)]
    at = kinds.index(("accept", n))
    assert kinds[at - 1] == ("decision", None) and kinds[at + 1] == ("request", None)  # between two requests

    fresh, _ = two_transitions()
    resumed = retell(fresh, journal)
    assert resumed.in_flight == () and resumed.undecided == ()
    assert fresh.hypothesis_names == campaign.hypothesis_names and fresh.n == campaign.n
    again = fresh.ask()
    assert (again.request_id, again.x, again.hypothesis) == (after.request_id, after.x, after.hypothesis)
    assert fresh.history[-1].probabilities == pytest.approx(campaign.history[-1].probabilities)
    journal.close()


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("off", "propose = 'off': only a campaign with propose = 'suggest'"),
        ("add", "it adds them itself"),
        ("suggest", r"nothing is suggested yet \(after 0 measurements\)"),
    ],
)
def test_accept_says_why_it_cannot(mode, why):
    campaign, _ = two_transitions(CampaignSettings(propose=mode, n_init=9))
    with pytest.raises(ConfigError, match=why):
        accept(campaign, "second-order + second-order")
    assert campaign.hypothesis_names == ("second-order",)


def test_a_journalled_accept_the_campaign_does_not_suggest_is_another_campaigns_journal(tmp_path):
    journal = Journal.create(tmp_path / "journal.sqlite", {"mode": "test"})
    append(journal, AcceptBody(name="second-order + linear background", n=0))
    campaign, _ = two_transitions()
    with pytest.raises(JournalError, match="does not suggest there"):
        retell(campaign, journal)
    journal.close()


def test_the_queue_refuses_before_the_campaign_starts_and_after_it_ends_and_applies_in_between(tmp_path):
    campaign, _ = two_transitions()
    queue = AcceptQueue()
    with pytest.raises(AbduceError, match="has not started"):
        queue.submit("x").result(timeout=0)
    queue.open()
    with pytest.raises(ConfigError, match="the name of a suggested law"):
        queue.submit("").result(timeout=0)
    waiting = queue.submit("second-order + second-order")
    assert not waiting.done()  # applied by the campaign thread, between requests
    with Journal.create(tmp_path / "journal.sqlite", {"mode": "test"}) as journal:
        assert queue.apply(campaign, journal) == []
    with pytest.raises(ConfigError, match="nothing is suggested yet"):
        waiting.result(timeout=0)
    late = queue.submit("second-order + second-order")
    queue.close("the campaign has ended (done)")
    with pytest.raises(AbduceError, match=r"not accepted: the campaign has ended \(done\)"):
        late.result(timeout=0)
    with pytest.raises(AbduceError, match="nothing can be accepted"):
        queue.submit("x").result(timeout=0)


def test_the_control_lane_answers_an_accept_when_its_future_is_done_and_status_meanwhile():
    secret = b"k" * 32
    arrived, pending = threading.Event(), Future()

    def handler(command, args):
        if command == "accept":
            arrived.set()
            return pending
        return {"status": {"state": "running"}}

    server = ControlServer(LOOPBACK, secret, handler).start()
    box = {}
    asking = threading.Thread(
        target=lambda: box.setdefault("reply", request(server.endpoint, secret, "accept", timeout_s=60, name="a + b"))
    )
    try:
        asking.start()
        assert arrived.wait(60)
        assert request(server.endpoint, secret, "status")["status"]["state"] == "running"  # not held up
        pending.set_result({"accepted": {"name": "a + b"}, "n": 12})
        asking.join(60)
        assert box["reply"] == {"ok": True, "accepted": {"name": "a + b"}, "n": 12}
    finally:
        server.close()


def test_the_control_lane_replies_a_refused_accept_with_its_reason():
    secret = b"k" * 32
    refused: Future = Future()
    refused.set_exception(ConfigError("no suggested law is named 'c'; suggested: a + b"))
    server = ControlServer(LOOPBACK, secret, lambda command, args: refused).start()
    try:
        with pytest.raises(ControlError, match=r"refused 'accept': ConfigError: no suggested law is named 'c'"):
            request(server.endpoint, secret, "accept", timeout_s=60, name="c")
    finally:
        server.close()
