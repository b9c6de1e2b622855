"""Batches through bluesky-adaptive: ``suggest(n)`` is one request of up to ``n`` points (``Campaign.ask(q=n)``),
each its own suggestion with its own ``_id``; ``ingest`` tells each point with its index, ``register_failures``
skips the points that failed, and a resume part way through a batch asks again for just its untold points.
Fast: short campaigns of two laws on a 101-point grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky_adaptive.plans import optimize
from ophyd.sim import SynAxis, SynSignal

from abduce.controller.beamline.evaluation import Readings
from abduce.controller.beamline.ids import point_id, point_key
from abduce.controller.beamline.optimizer import CampaignOptimizer
from abduce.controller.errors import MeasurementRejected
from abduce.controller.journal.events import read
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.views.inspection import inspect_run
from abduce.instruments.protocol.models import Axis, Capabilities, Channel
from abduce.simulators.transition1d import Transition1D

GRID = np.linspace(0.0, 1.0, 101)
CAPS = Capabilities(
    axes=[Axis(name="x", unit="mm", min=0.0, max=1.0)],
    channels=[Channel(name="det", unit="counts")],
    candidates=[[float(v)] for v in GRID],
)


def recipe(budget: int = 9, q: int = 1) -> Recipe:
    return Recipe(hypotheses=("second-order", "linear"), budget=budget, n_init=3, seed=0, device="cpu", q=q)


def outcome(sim: Transition1D, point: dict) -> dict:
    return {"_id": point["_id"], "det": float(sim.measure(np.array([[point["x"]]]))[0])}


def events(out, kind: str) -> list:
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        return list(read(journal, kind))


def run_engine(sim: Transition1D):
    motor, det = SynAxis(name="x"), SynSignal(name="det")
    det.sim_set_func(lambda: float(sim.measure(np.array([[motor.position]]))[0]))  # after construction: no draw
    RE, readings = RunEngine({}), Readings("det")
    RE.subscribe(readings.receive_document)
    return RE, motor, det, readings


def test_point_ids_are_the_request_id_for_point_0_and_invert():
    assert point_id("abc", 0) == "abc" and point_id("abc", 3) == "abc/3"
    for pid in ("abc", "abc/3", "abc/0", "abc/03", "a/b", None):
        assert point_id(*point_key(pid)) == str(pid)
    assert point_key("abc/3") == ("abc", 3) and point_key("abc/0") == ("abc/0", 0)


def test_suggest_returns_every_point_of_a_batch_each_with_its_own_id():
    opt = CampaignOptimizer.start(recipe(), CAPS)
    points = opt.suggest(3)
    request = opt.campaign.pending
    assert request.q == 3 and len({p["_id"] for p in points}) == 3
    assert points == [{"x": x, "_id": point_id(request.request_id, k)} for k, (x,) in enumerate(request.points)]
    assert points[0]["_id"] == request.request_id  # point 0 keeps the request id, as a one-point request
    assert opt.suggest(3) == points and opt.suggest(2) == points[:2]  # the same points until they are in
    opt.ingest([{"_id": points[1]["_id"], "det": 0.4}])
    assert opt.campaign.waiting == (0, 2) and opt.suggest(3) == [points[0], points[2]]
    with pytest.raises(MeasurementRejected) as err:
        opt.ingest([{"_id": points[1]["_id"], "det": 0.4}])
    assert err.value.reason == "duplicate"
    with pytest.raises(MeasurementRejected) as err:  # twice in one call: refused before either is told
        opt.ingest([{"_id": points[2]["_id"], "det": 0.1}, {"_id": points[2]["_id"], "det": 0.2}])
    assert err.value.reason == "duplicate" and opt.campaign.n == 1
    with pytest.raises(MeasurementRejected) as err:  # no such point in the request
        opt.ingest([{"_id": point_id(request.request_id, 5), "det": 0.1}])
    assert err.value.reason == "unknown-request"
    # told in index order whatever the order of the outcomes
    opt.ingest([{"_id": points[2]["_id"], "det": 0.3}, {"_id": points[0]["_id"], "det": 0.2}])
    assert [r.index for r in opt.campaign.history] == [1, 0, 2]
    assert opt.campaign.data[1] == [0.4, 0.2, 0.3] and opt.campaign.pending is None
    # the recipe's q when suggest names no number, capped by the budget left
    opt = CampaignOptimizer.start(recipe(budget=5, q=4), CAPS)
    assert len(opt.suggest()) == 3  # the initial design's three points
    opt.ingest([{"_id": p["_id"], "det": 0.1 * i} for i, p in enumerate(opt.suggest())])
    assert len(opt.suggest()) == 2  # two measurements left in the budget


def test_optimize_with_n_points_completes_the_campaign_in_fewer_acquisitions(tmp_path):
    runs = {}
    for n_points in (1, 4):
        out = tmp_path / f"q{n_points}"
        RE, motor, det, readings = run_engine(Transition1D(law="second-order", grid=101, seed=0))
        starts = []
        RE.subscribe(lambda name, doc: starts.append(doc) if doc.get("run_key") == "default_acquire" else None)
        opt = CampaignOptimizer.start(recipe(budget=11), CAPS, out)
        RE(optimize(opt.problem([motor], [det], readings), iterations=None, n_points=n_points))
        assert opt.campaign.n == 11 and opt.should_stop()[0]
        runs[n_points] = starts
        orders = [s["blop_acquisition_order"] for s in starts]
        ids = [pid for order in orders for pid in order]
        assert len(ids) == len(set(ids)) == 11  # every point its own _id, each acquired once
        told = {point_id(r.request_id, r.index): (r.x, r.y) for r in opt.campaign.history}
        assert set(told) == set(ids)
        seen = inspect_run(out)  # the journal reads as any run's
        assert (seen.mode, seen.summary.measurements, seen.stopping.in_flight) == ("bluesky", 11, [])
        requests = events(out, "request")
        assert len(requests) == len(starts)
        if n_points > 1:
            assert [len(r.body.points or [r.body.x]) for r in requests] == [3, 4, 4]  # design (n_init 3), then q
            assert sorted(e.body.index for e in events(out, "measurement")) == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 2
    assert len(runs[1]) == 11 and len(runs[4]) == 3  # 11 suggest calls against 3


def test_a_failed_batch_is_skipped_whole_and_a_failed_point_alone(tmp_path):
    out = tmp_path / "run"
    opt = CampaignOptimizer.start(recipe(), CAPS, out)
    first = opt.suggest(3)
    opt.register_failures(first)  # bluesky-adaptive fails a whole acquisition: one instrument error
    assert opt.campaign.pending is None and opt.campaign.n == 0
    second = opt.suggest(3)
    assert {p["x"] for p in second}.isdisjoint(p["x"] for p in first)  # never asked again
    opt.register_failures([second[1], {"_id": "never-suggested"}])  # one point of the batch
    assert opt.campaign.waiting == (0, 2)
    with pytest.raises(MeasurementRejected) as err:
        opt.ingest([{"_id": second[1]["_id"], "det": 0.3}])
    assert err.value.reason == "unknown-request"
    opt.ingest([{"_id": second[0]["_id"], "det": 0.1}, {"_id": second[2]["_id"], "det": 0.2}])
    assert opt.campaign.n == 2 and opt.campaign.pending is None
    opt.checkpoint()
    errors = [(e.request_id, e.body.stage, e.body.index, e.body.skipped) for e in events(out, "error")]
    rid1, rid2 = point_key(first[0]["_id"])[0], point_key(second[0]["_id"])[0]
    assert errors == [(rid1, "instrument", 0, True), (rid2, "tell", 1, True)]
    (refused,) = [m for m in events(out, "measurement") if math.isnan(m.body.y)]
    assert (refused.body.index, refused.body.x) == (1, (second[1]["x"],))
    opt.close()
    resumed = CampaignOptimizer.resume(out)  # the journal re-tells the same skips
    assert resumed.campaign.data == opt.campaign.data and resumed.campaign.pending is None
    after = resumed.suggest(3)
    assert {p["x"] for p in after}.isdisjoint(p["x"] for p in [*first, second[1]])  # failed: not asked again
    resumed.close()
    assert inspect_run(out).stopping.in_flight == [point_key(after[0]["_id"])[0]]


@pytest.mark.parametrize("told_before_stop", [(0, 2), ()])
def test_a_batch_resumed_part_way_asks_for_its_untold_points_under_their_ids(tmp_path, told_before_stop):
    """A 3-point batch with points 0 and 2 (or none) told when the process stops: the resumed optimizer
    asks for the others under the same ids and ends where an uninterrupted run telling in that order ends."""
    sim_a, sim_b = Transition1D(grid=101, seed=0), Transition1D(grid=101, seed=0)
    straight = CampaignOptimizer.start(recipe(q=3), CAPS)
    first = CampaignOptimizer.start(recipe(q=3), CAPS, tmp_path / "run")
    for opt, sim in ((straight, sim_a), (first, sim_b)):
        opt.ingest([outcome(sim, p) for p in opt.suggest()])  # the initial design
    batch = first.suggest()
    assert len(batch) == 3 and straight.suggest() == batch
    before = [batch[k] for k in told_before_stop]
    after = [p for p in batch if p not in before]
    first.ingest([outcome(sim_b, p) for p in before])
    straight.ingest([outcome(sim_a, p) for p in before])
    first.close()

    resumed = CampaignOptimizer.resume(tmp_path / "run")
    assert resumed.campaign.pending.request_id == point_key(batch[0]["_id"])[0]
    # asked again with its journalled points whatever n: just the untold points, under their own ids
    assert resumed.suggest(1) == after[:1] and resumed.suggest() == after
    resumed.ingest([outcome(sim_b, p) for p in after])
    straight.ingest([outcome(sim_a, p) for p in after])
    for opt, sim in ((straight, sim_a), (resumed, sim_b)):
        while not opt.should_stop()[0]:
            opt.ingest([outcome(sim, p) for p in opt.suggest()])
    assert resumed.campaign.data == straight.campaign.data and resumed.campaign.n == 9
    assert resumed.campaign.probabilities() == pytest.approx(straight.campaign.probabilities(), rel=1e-9)
    requests = [e.request_id for e in events(tmp_path / "run", "request")]
    assert len(requests) == len(set(requests)) == 3  # the batch in flight was not journalled twice
    assert inspect_run(tmp_path / "run").summary.measurements == 9


def test_a_batch_abandoned_after_a_point_was_told_reads_back_as_it_ran(tmp_path):
    """Point 0 told, point 1 failed (the request abandoned: a skipped instrument error of the whole request),
    then one more batch: the journal's snapshot (what inspect, plot, report and export load) skips only the
    point that was still open, as the live campaign did, and resume agrees."""
    from abduce.controller.journal.rebuild import snapshot

    sim, out = Transition1D(seed=3, grid=101), tmp_path / "run"
    optimizer = CampaignOptimizer.start(recipe(q=2), CAPS, out)
    first = optimizer.suggest(2)
    optimizer.ingest([outcome(sim, first[0])])
    optimizer.register_failures([first[1]])
    optimizer.ingest([outcome(sim, p) for p in optimizer.suggest(2)])
    live = (optimizer.campaign.n, list(optimizer.campaign.points()))
    optimizer.close()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        _, snap = snapshot(journal)
    assert (snap.n, list(snap.points())) == live == (3, live[1])
    resumed = CampaignOptimizer.resume(out)
    try:
        assert (resumed.campaign.n, list(resumed.campaign.points())) == live
    finally:
        resumed.close()
