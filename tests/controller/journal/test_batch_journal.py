"""Batches in the journal: multi-point requests and their measurements are journalled point by point,
and a campaign is rebuilt, resumed (even part way through a batch) and snapshotted from them."""

import numpy as np

from abduce.controller.core.measurements import Measurement
from abduce.controller.drive.loop import run_campaign, steps
from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import rebuild, snapshot
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.controller.rehearse.simulated import SimulatedRun

RUN = SimulatedRun(hypotheses=("second-order", "linear"), budget=14, grid=101, n_init=4, q=4, seed=3)


def journalled(tmp_path, run=RUN):
    path = tmp_path / "j.sqlite"
    with Journal.create(path, {"mode": "in-process", **run.model_dump(mode="json")}) as journal:
        campaign = run.run(journal=journal)
    return path, campaign


def test_a_batch_is_journalled_as_one_request_and_one_measurement_per_point(tmp_path):
    path, live = journalled(tmp_path)
    with Journal.open(path, readonly=True) as journal:
        events = list(read(journal))
    requests = [e for e in events if e.kind == "request"]
    measurements = [e for e in events if e.kind == "measurement"]
    assert [len(e.body.points or (e.body.x,)) for e in requests] == [4, 4, 4, 2]  # design, 2 batches, the rest
    assert len(measurements) == live.n == 14
    for e in requests:
        points = e.body.points or (e.body.x,)
        told = [m for m in measurements if m.request_id == e.request_id]
        assert [m.body.index for m in told] == list(range(len(points)))
        assert [tuple(m.body.x) for m in told] == [tuple(p) for p in points]
    decisions = [(e.request_id, e.body.index) for e in events if e.kind == "decision"]
    assert decisions == [(m.request_id, m.body.index) for m in measurements]


def test_a_batch_journal_rebuilds_and_snapshots_to_the_live_campaign(tmp_path):
    path, live = journalled(tmp_path)
    with Journal.open(path, readonly=True) as journal:
        _, rebuilt = rebuild(journal)
        _, snap = snapshot(journal)
    assert rebuilt.history == live.history and rebuilt.data == live.data
    assert snap.data == live.data and snap.probabilities() == live.probabilities()
    assert snap.summary()["hypotheses"][0]["times_chosen"] == live.summary()["hypotheses"][0]["times_chosen"]


def test_a_resume_part_way_through_a_batch_tells_only_the_points_left_and_ends_as_the_live_run(tmp_path):
    path, live = journalled(tmp_path)
    with Journal.open(path, readonly=True) as journal:  # stopped after 6 of 14: the second batch half told
        resumed = retell(RUN.build()[0], journal, limit=6)
    campaign = resumed.campaign
    assert campaign.n == 6 and campaign.waiting == (2, 3)
    assert [r.request_id for r in resumed.in_flight] == [live.history[4].request_id]

    def instrument(request):  # answers every point again (an idempotent instrument re-sends its result)
        ys = [live.data[1][request.step + i] for i in range(request.q)]
        return [Measurement(request.request_id, x, y, index=i) for i, (x, y) in enumerate(zip(request.points, ys))]

    told = steps(campaign, instrument)
    assert [r.index for r in told] == [2, 3]
    run_campaign(campaign, lambda r: instrument(r) if r.q > 1 else instrument(r)[0])
    assert [(r.request_id, r.x, r.index) for r in campaign.history] == [
        (r.request_id, r.x, r.index) for r in live.history
    ]
    assert campaign.leader() == live.leader()


def test_a_rehearsal_measures_a_batch_through_its_driver_one_measurement_per_point():
    rehearsal = Rehearsal("simulated:transition-1d", ("second-order", "linear"), {"grid": 101}, budget=9, q=3, n_init=3)
    campaign, instrument = rehearsal.build()
    request = campaign.ask()
    answer = instrument(request)
    assert [m.index for m in answer] == [0, 1, 2] and [m.x for m in answer] == list(request.points)
    assert all(m.request_id == request.request_id and np.isfinite(m.y) for m in answer)
    for m in answer:
        campaign.tell(m)
    run_campaign(campaign, instrument)
    assert campaign.n == 9 and len({r.request_id for r in campaign.history}) == 3


def test_inspection_and_export_of_a_batch_journal_give_each_point_its_own_decision(tmp_path):
    from abduce.controller.views.export import build_dataset
    from abduce.controller.views.inspection import inspect_journal

    path, live = journalled(tmp_path)
    with Journal.open(path, readonly=True) as journal:
        rows = inspect_journal(journal).measurements
        ds = build_dataset(journal, posteriors=False)
    assert [r.step for r in rows] == list(range(live.n))
    assert [r.probabilities for r in rows] == [r.probabilities for r in live.history]
    assert [r.refit for r in rows] == [list(r.refit) for r in live.history]
    got = ds["probability"].sel(hypothesis=list(RUN.hypotheses)).values
    want = [[r.probabilities.get(name, np.nan) for name in RUN.hypotheses] for r in live.history]
    assert np.allclose(got, want, equal_nan=True)
