"""abduce as a bluesky-adaptive optimizer: each protocol method, bad ids, failures, stopping, the journal and
resume (fast: short campaigns of two laws on a 101-point grid), and bluesky-adaptive's own plans driving
it in a RunEngine with ophyd.sim devices (the 30-measurement identification is the slow test beside it)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky_adaptive.plan_stubs import navigate_to_best
from bluesky_adaptive.plans import optimize, optimize_in_run
from bluesky_adaptive.protocols import (
    CanRegisterSuggestions,
    Checkpointable,
    Optimizer,
    SupportsStoppingCriteria,
    TrialFaultAware,
)
from ophyd.sim import SynAxis, SynSignal
from scipy.special import logsumexp

from abduce.controller.beamline.evaluation import Readings
from abduce.controller.beamline.optimizer import CampaignOptimizer
from abduce.controller.beamline.verdict import gains
from abduce.controller.errors import CampaignStateError, ConfigError, MeasurementRejected
from abduce.controller.journal.events import read
from abduce.controller.journal.store import Journal, JournalError
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


def recipe(budget: int = 6) -> Recipe:
    return Recipe(hypotheses=("second-order", "linear"), budget=budget, n_init=4, seed=0, device="cpu")


def read_at(sim: Transition1D, point: dict) -> float:
    return float(sim.measure(np.array([[point["x"]]]))[0])


def drive(opt: CampaignOptimizer, sim: Transition1D, steps: int | None = None) -> None:
    """suggest -> measure -> ingest by hand, ``steps`` times (None: until it stops)."""
    while not opt.should_stop()[0] and (steps is None or steps > 0):
        (point,) = opt.suggest(1)
        opt.ingest([{"_id": point["_id"], "det": read_at(sim, point)}])
        steps = None if steps is None else steps - 1


def events(out, kind: str) -> list:
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        return list(read(journal, kind))


@pytest.fixture
def opt():
    return CampaignOptimizer.start(recipe(), CAPS)


@pytest.fixture
def rig():
    """A SynAxis named after the space's axis, and a detector reading the transition simulator's law (seed 0)
    where the motor stands. The detector's function is set after construction: SynSignal calls it once when
    built, which would draw from the simulator's noise stream."""
    sim = Transition1D(law="second-order", grid=101, seed=0)
    motor = SynAxis(name="x")
    det = SynSignal(name="det")
    det.sim_set_func(lambda: float(sim.measure(np.array([[motor.position]]))[0]))
    RE = RunEngine({})
    readings = Readings("det")
    RE.subscribe(readings.receive_document)
    return RE, motor, det, readings


# ------------------------------------------------------------------ the protocol, method by method


def test_it_is_a_bluesky_adaptive_optimizer_with_the_optional_protocols_that_fit(opt):
    for protocol in (Optimizer, SupportsStoppingCriteria, TrialFaultAware, Checkpointable):
        assert isinstance(opt, protocol), protocol
    assert not isinstance(opt, CanRegisterSuggestions)  # a campaign measures only the points it asked for


def test_suggest_names_the_axes_and_carries_the_campaigns_request_id(opt):
    (point,) = opt.suggest()
    pending = opt.campaign.pending
    assert point == {"x": pending.x[0], "_id": pending.request_id}
    assert opt.campaign.space.index_of((point["x"],)) is not None  # a candidate of the grid
    # the pending request's points again, whatever num_points, until they are in (test_batches.py: batches)
    assert opt.suggest(4) == [point]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="num_points"):
            opt.suggest(bad)


def test_ingest_tells_the_reading_of_the_channel_at_the_suggested_point(opt):
    (point,) = opt.suggest()
    opt.ingest([{"_id": point["_id"], "det": 0.25, "other": "ignored"}])
    assert opt.campaign.data == ([(point["x"],)], [0.25])
    (second,) = opt.suggest()
    assert second["_id"] != point["_id"]
    # (value, sd) as Ax's (mean, sem); the point actually reached, when the outcome names the axes
    opt.ingest([{"_id": second["_id"], "det": (0.5, 0.01), "x": float(GRID[3])}])
    assert opt.campaign.data == ([(point["x"],), (float(GRID[3]),)], [0.25, 0.5])


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ({"det": 1.0}, "missing-id"),
        ({"_id": "baseline", "det": 1.0}, "missing-id"),  # bluesky-adaptive's acquire_baseline
        ({"_id": "not-a-request", "det": 1.0}, "unknown-request"),
        ({"_id": None, "det": 1.0}, "missing-id"),
        ("PENDING", "missing-outcome"),
        ("ARRAY", "non-numeric"),
        ("TEXT", "non-numeric"),
    ],
)
def test_bad_outcomes_are_refused_before_anything_is_told_or_journalled(tmp_path, outcome, reason):
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    (point,) = opt.suggest()
    good = {"_id": point["_id"], "det": 0.3}
    if isinstance(outcome, str):
        outcome = {
            "PENDING": {"_id": point["_id"], "y": 0.3},  # the outcome named after another field
            "ARRAY": {"_id": point["_id"], "det": [0.1, 0.2, 0.3]},  # a spectrum for a scalar channel
            "TEXT": {"_id": point["_id"], "det": "high"},
        }[outcome]
    with pytest.raises(MeasurementRejected) as err:
        opt.ingest([good, outcome])  # the good point of the batch is not told either
    assert err.value.reason == reason
    assert opt.campaign.n == 0 and opt.campaign.pending.request_id == point["_id"]
    opt.checkpoint()
    assert events(tmp_path / "run", "measurement") == []
    opt.ingest([good])  # still pending, still welcome
    assert opt.campaign.n == 1


def test_a_request_is_ingested_once(opt):
    (point,) = opt.suggest()
    opt.ingest([{"_id": point["_id"], "det": 0.3}])
    with pytest.raises(MeasurementRejected) as err:
        opt.ingest([{"_id": point["_id"], "det": 0.3}])
    assert err.value.reason == "duplicate"
    assert opt.campaign.n == 1


# ------------------------------------------------------------------ failures


def test_a_failed_trial_is_skipped_never_asked_again_and_journalled(tmp_path, caplog):
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    (point,) = opt.suggest()
    with caplog.at_level(logging.WARNING, logger="abduce.beamline"):
        opt.register_failures([point, {"_id": "never-suggested", "x": 0.5}])
    assert "never-suggested" in caplog.text  # tolerated (it runs while the acquisition's error propagates)
    assert opt.campaign.pending is None and opt.campaign.n == 0
    (retry,) = opt.suggest()
    assert retry["_id"] != point["_id"] and retry["x"] != point["x"]
    with pytest.raises(MeasurementRejected) as err:  # the failed request cannot be ingested any more
        opt.ingest([{"_id": point["_id"], "det": 0.3}])
    assert err.value.reason == "unknown-request"
    opt.checkpoint()
    (error,) = events(tmp_path / "run", "error")
    assert (error.request_id, error.body.stage, error.body.skipped) == (point["_id"], "instrument", True)


def test_a_reading_that_is_not_a_number_skips_its_point_until_too_many_in_a_row(tmp_path):
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    limit = opt.campaign.settings.max_failures
    asked = []
    for _ in range(limit - 1):  # skipped, as the daemon skips a NaN reading
        (point,) = opt.suggest()
        asked.append(point["x"])
        opt.ingest([{"_id": point["_id"], "det": float("nan")}])
    assert len(set(asked)) == limit - 1 and opt.campaign.n == 0
    (point,) = opt.suggest()
    with pytest.raises(MeasurementRejected) as err:  # the limit-th in a row stops the campaign's run
        opt.ingest([{"_id": point["_id"], "det": None}])
    assert err.value.reason == "non-finite"
    opt.checkpoint()
    skipped = [e.body.skipped for e in events(tmp_path / "run", "error")]
    assert skipped == [True] * (limit - 1) + [False]


# ------------------------------------------------------------------ stopping and the verdict


def test_should_stop_says_when_and_why(opt):
    assert opt.should_stop() == (False, None)
    with pytest.raises(CampaignStateError, match="no leading hypothesis"):
        opt.get_best_points()
    drive(opt, Transition1D(grid=101, seed=0))
    stop, why = opt.should_stop()
    assert stop and opt.campaign.n == 6
    assert why.startswith("budget of 6 measurements") and opt.campaign.leader() in why
    with pytest.raises(CampaignStateError, match="stopped"):
        opt.suggest()


def test_the_best_point_is_the_leading_law_and_the_measurements_that_decided_it(opt):
    drive(opt, Transition1D(grid=101, seed=0))
    ((rid, point, outcomes),) = opt.get_best_points()
    c = opt.campaign
    leader = c.leader()
    law = {h["name"]: h for h in c.summary()["hypotheses"]}[leader]
    assert (outcomes["hypothesis"], outcomes["probability"], outcomes["parameters"]) == (
        leader,
        law["probability"],
        law["parameters"],
    )
    assert set(outcomes["parameters"]) == {"A", "x_c", "beta"} if leader == "second-order" else True
    record = next(r for r in c.history if r.request_id == rid)
    assert point == {"x": record.x[0]} and outcomes["det"] == record.y
    decided = outcomes["decided_by"]
    assert decided[0]["_id"] == rid and all(d["log_odds"] > 0 for d in decided)
    assert [d["log_odds"] for d in decided] == sorted((d["log_odds"] for d in decided), reverse=True)
    # the gains telescope to the leader's final log odds against equal prior odds, from the log evidences
    last = c.history[-1]
    lz = {k: v for k, v in last.log_evidence.items()}
    if last.none is not None:
        lz[None] = last.none["log_evidence"]
    odds = lz[leader] - logsumexp([v for k, v in lz.items() if k != leader])
    total = sum(g for _, g in gains(c.history, leader))
    assert total == pytest.approx(odds + np.log(len(lz) - 1), abs=1e-9)
    # the probability bluesky-adaptive reports is the campaign's own
    assert outcomes["probability"] == c.probabilities()[leader]


# ------------------------------------------------------------------ the journal: checkpoint, inspect, resume


def test_a_run_is_journalled_so_inspect_reads_it_and_a_resumed_optimizer_goes_on(tmp_path):
    out = tmp_path / "run"
    straight = CampaignOptimizer.start(recipe(budget=7), CAPS)
    drive(straight, Transition1D(grid=101, seed=0))

    sim = Transition1D(grid=101, seed=0)
    first = CampaignOptimizer.start(recipe(budget=7), CAPS, out)
    drive(first, sim, steps=5)
    first.checkpoint()
    (in_flight,) = first.suggest()  # asked, journalled, then the process stops before its reading
    first.close()
    with pytest.raises(CampaignStateError, match="resume"):  # closed: nothing more goes into its journal
        first.ingest([{"_id": in_flight["_id"], "det": 0.5}])
    seen = inspect_run(out)
    assert (seen.mode, seen.summary.measurements, seen.stopping.in_flight) == ("bluesky", 5, [in_flight["_id"]])
    assert not (out / "summary.json").exists()

    resumed = CampaignOptimizer.resume(out)
    assert resumed.campaign.n == 5 and resumed.campaign.data == (
        straight.campaign.data[0][:5],
        straight.campaign.data[1][:5],
    )
    # the reading of the request in flight is welcome under its own id, without suggesting it again
    resumed.ingest([{"_id": in_flight["_id"], "det": read_at(sim, in_flight)}])
    drive(resumed, sim)
    assert resumed.campaign.data == straight.campaign.data
    assert resumed.campaign.probabilities() == pytest.approx(straight.campaign.probabilities(), rel=1e-9)
    assert (out / "summary.json").exists()  # written when the campaign stopped
    requests = [e.request_id for e in events(out, "request")]
    assert len(requests) == len(set(requests)) == 7  # the request in flight was not journalled twice
    assert inspect_run(out).summary.leader == straight.campaign.leader()


def test_checkpoint_needs_a_run_directory_and_resume_a_bluesky_run(opt, tmp_path):
    with pytest.raises(ConfigError, match="run directory"):
        opt.checkpoint()
    with pytest.raises(JournalError):
        CampaignOptimizer.resume(tmp_path / "nothing")
    CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run").close()
    with pytest.raises(ConfigError, match="already holds a run"):
        CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")


def test_a_channel_the_beamline_does_not_declare_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="no channel 'I0'"):
        CampaignOptimizer.start(recipe().model_copy(update={"channel": "I0"}), CAPS, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ bluesky-adaptive's plans in a RunEngine


def test_optimize_drives_the_campaign_to_its_budget_in_a_run_engine(rig, tmp_path):
    RE, motor, det, readings = rig
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(optimize(opt.problem([motor], [det], readings), iterations=None, checkpoint_interval=2))  # until should_stop
    assert opt.campaign.n == 6 and opt.should_stop()[0]
    # what the campaign was told is what the detector read, where the motor stood
    runs = [d for n, d in docs if n == "start" and d.get("run_key") == "default_acquire"]
    assert len(runs) == 6
    acquired = {d["uid"] for n, d in docs if n == "descriptor" and d["run_start"] in {r["uid"] for r in runs}}
    rows = [d["data"] for n, d in docs if n == "event" and d["descriptor"] in acquired]
    xs, ys = opt.campaign.data
    assert ys == [row["det"] for row in rows]
    # the motor's readback is the requested point up to its float arithmetic (old + (new - old))
    assert np.allclose([x for (x,) in xs], [row["x"] for row in rows], rtol=0, atol=1e-12)
    assert [r["blop_acquisition_order"][0] for r in runs] == [r.request_id for r in opt.campaign.history]
    # and bluesky-adaptive goes to the verdict's best point
    ((_, best, _),) = opt.get_best_points()
    RE(navigate_to_best([motor], opt))
    assert motor.position == pytest.approx(best["x"], abs=1e-12)


def test_optimize_in_run_drives_it_inside_one_run(rig):
    RE, motor, det, readings = rig
    opt = CampaignOptimizer.start(recipe(), CAPS)
    starts = []
    RE.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
    RE(optimize_in_run(opt.problem([motor], [det], readings), iterations=20, n_points=2))
    assert opt.campaign.n == 6 and len(starts) == 1  # stopped by should_stop, not the 20 iterations


def test_an_acquisition_that_raises_skips_its_point_and_the_next_run_goes_on(rig, tmp_path):
    RE, motor, det, readings = rig
    healthy = det._func
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    problem = opt.problem([motor], [det], readings)
    RE(optimize(problem, iterations=2))

    def broken():
        raise RuntimeError("detector saturated")

    det.sim_set_func(broken)
    with pytest.raises(RuntimeError, match="detector saturated"):
        RE(optimize(problem, iterations=1))
    assert opt.campaign.n == 2 and opt.campaign.pending is None  # the failed point was skipped
    det.sim_set_func(healthy)
    RE(optimize(problem, iterations=None))
    assert opt.campaign.n == 6
    (error,) = events(tmp_path / "run", "error")
    assert (error.body.stage, error.body.skipped) == ("instrument", True)


def test_problem_refuses_actuators_not_named_after_the_axes(opt):
    with pytest.raises(ConfigError, match=r"no actuator is named after the axes \['x'\]"):
        opt.problem([SynAxis(name="theta")], [], Readings("det"))


def test_readings_refuse_a_run_they_never_saw_and_a_field_the_events_lack(rig):
    RE, motor, det, readings = rig
    with pytest.raises(ConfigError, match="subscribe"):
        readings("some-run-uid", [{"_id": "a", "x": 0.1}])
    opt = CampaignOptimizer.start(recipe(), CAPS)
    wrong = Readings("I0")
    RE.subscribe(wrong.receive_document)
    with pytest.raises(ConfigError, match=r"no \['I0'\]"):
        RE(optimize(opt.problem([motor], [det], wrong), iterations=1))


def test_readings_carry_a_standard_deviation_and_the_position_reached(rig, tmp_path):
    RE, motor, det, _ = rig
    spread = SynSignal(name="det_sd", func=lambda: 0.02)
    readings = Readings("det", sd="det_sd", axes=["x"])
    RE.subscribe(readings.receive_document)
    opt = CampaignOptimizer.start(recipe(), CAPS, tmp_path / "run")
    RE(optimize_in_run(opt.problem([motor], [det, spread], readings), iterations=3))
    opt.checkpoint()
    told = events(tmp_path / "run", "measurement")
    assert [m.body.y_sd for m in told] == [0.02] * 3
    asked = [e.body.x for e in events(tmp_path / "run", "request")]
    assert np.allclose([m.body.x for m in told], asked, rtol=0, atol=1e-12)  # the readback, where the motor stood
