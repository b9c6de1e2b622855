"""Campaigns through a misbehaving agent: each fault ends in a correct campaign or a clear error, never bad data.

Real agents on threads, a real link over loopback TCP, the real campaign loop
with a journal (and the daemon). The reference is the same campaign run
in-process against the same simulator with no protocol at all: a fault that
the protocol absorbs must leave the data identical to it, float for float.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.core.measurements import Measurement
from abduce.controller.daemon import Daemon
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.loop import run_campaign
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.errors import MeasurementRejected
from abduce.controller.intake.capabilities import space_of
from abduce.controller.journal.resume import retell
from abduce.controller.journal.rundir import read_endpoints
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.recipe.settings import load_settings
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.faults import AgentCrash, Faults, FaultyDriver
from abduce.instruments.drivers.simulated import SimulatedDriver
from abduce.instruments.keys import load_key, new_key
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import Measure
from abduce.simulators.transition1d import Transition1D
from tests.controller.test_daemon import CONFIG as DAEMON_CONFIG
from tests.instruments.conftest import LOOPBACK, SlowDriver, wait_until

SEED = 5
BUDGET = 10


def new_campaign(space) -> Campaign:
    return Campaign(
        space,
        [BUILTIN["second-order"], BUILTIN["linear"]],
        "discriminate",
        None,
        Budget(BUDGET),
        seed=SEED,
        settings=CampaignSettings(
            n_init=4,
            fit=FitSettings(screen=32, restarts=1, maxiter=20),
            evidence_samples=64,
            reference_size=128,
        ),
        device="cpu",
    )


def simulator() -> Transition1D:
    return Transition1D(grid=101, seed=SEED)


def data(campaign: Campaign) -> list[tuple[str, tuple[float, ...], float]]:
    return [(r.request_id, r.x, r.y) for r in campaign.history]


@pytest.fixture(scope="module")
def reference():
    """The campaign in-process, no protocol, no faults: what every absorbed fault must reproduce."""
    sim = simulator()
    campaign = new_campaign(space_of(SimulatedDriver(sim).describe()))
    run_campaign(campaign, lambda r: Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    return data(campaign)


class Served:
    """An agent serving on a thread; an injected crash ends it as a kill would (recorded, not raised)."""

    def __init__(self, agent: InstrumentAgent) -> None:
        self.agent, self.crashed = agent, None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.agent.serve()
        except AgentCrash as exc:
            self.crashed = exc

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=10)


def start_link(endpoint, keyring, heartbeat_s=0.1, ack_timeout_s=0.2, audit=None) -> InstrumentLink:
    return InstrumentLink(
        endpoint, Codec(keyring, "lab"), heartbeat_s=heartbeat_s, ack_timeout_s=ack_timeout_s, audit=audit
    ).start()


def serve(driver, endpoint, keyring, faults: Faults | None = None) -> Served:
    # a new Codec per agent: a new session, as a new process would have
    return Served(InstrumentAgent(driver, endpoint, Codec(keyring, "lab"), "sim", faults=faults))


def run_over_link(link: InstrumentLink, journal: Journal | None = None) -> Campaign:
    registered = link.wait_for_agent(15)
    campaign = new_campaign(space_of(registered.capabilities))
    return run_campaign(campaign, LinkInstrument(link, registered, timeout_s=30), journal=journal)


def journalled(path) -> dict[str, list]:
    with Journal.open(path, readonly=True) as j:
        events = list(j.events())
    out: dict[str, list] = {}
    for e in events:
        out.setdefault(e.kind, []).append(e)
    return out


def assert_journal_matches(path, expected) -> None:
    """One request and one measurement per request id, the measurements equal to ``expected``."""
    ev = journalled(path)
    got = [(e.request_id, tuple(e.body["x"]), e.body["y"]) for e in ev["measurement"]]
    assert got == expected
    requests = [e.request_id for e in ev["request"]]
    assert requests == [rid for rid, _, _ in expected]
    assert "error" not in ev


# ------------------------------------------------------------ latency


def test_latency_changes_nothing_but_the_time(endpoint, keyring, tmp_path, reference):
    faults = Faults(latency_s=0.01, jitter_s=0.01, seed=1)
    driver = FaultyDriver(SimulatedDriver(simulator()), faults)
    assert driver.blocking  # a slow driver runs on the agent's worker thread: ack, then result
    link = start_link(endpoint, keyring)
    agent = serve(driver, link.endpoint, keyring, faults)
    try:
        with Journal.create(tmp_path / "j.sqlite", {"test": "latency"}) as journal:
            campaign = run_over_link(link, journal)
        assert data(campaign) == reference
        assert driver.measured == [rid for rid, _, _ in reference]  # each measured once, in order
        assert len(driver.delays) == BUDGET and min(driver.delays) >= faults.latency_s  # every measurement was slow
        assert_journal_matches(tmp_path / "j.sqlite", reference)
    finally:
        agent.stop()
        link.close()


# ------------------------------------------------------------ dropped results


@pytest.mark.parametrize("latency_s", [0.0, 0.005], ids=["result-is-the-ack", "ack-then-result"])
def test_dropped_results_are_fetched_again_and_nothing_is_measured_twice(
    endpoint, keyring, tmp_path, reference, latency_s
):
    # no latency: the result stands in for the ack, so a lost one is re-sent (idempotent) and answered from the cache;
    # with latency: the ack arrives, the result is lost, and the link queries for it
    faults = Faults(p_drop=0.3, latency_s=latency_s, seed=0)
    driver = FaultyDriver(SimulatedDriver(simulator()), faults)
    link = start_link(endpoint, keyring, heartbeat_s=0.05)
    agent = serve(driver, link.endpoint, keyring, faults)
    try:
        with Journal.create(tmp_path / "j.sqlite", {"test": "drop"}) as journal:
            campaign = run_over_link(link, journal)
        assert data(campaign) == reference
        assert driver.measured == [rid for rid, _, _ in reference]
        gate = agent.agent.reply_gate
        dropped = [rid for rid, what in gate.log if what == "dropped"]
        assert len(dropped) >= 2, gate.log  # the faults really happened
        assert_journal_matches(tmp_path / "j.sqlite", reference)
    finally:
        agent.stop()
        link.close()


# ------------------------------------------------------------ NaN and inf


@pytest.mark.parametrize("faults", [Faults(p_nan=0.15, seed=10), Faults(p_inf=0.15, seed=10)], ids=["nan", "inf"])
def test_a_non_finite_value_is_journalled_its_point_skipped_and_the_campaign_finishes(
    endpoint, keyring, tmp_path, reference, faults
):
    driver = FaultyDriver(SimulatedDriver(simulator()), faults)
    link = start_link(endpoint, keyring)
    agent = serve(driver, link.endpoint, keyring, faults)
    path = tmp_path / "j.sqlite"
    try:
        with Journal.create(path, {"test": "nan"}) as journal:
            campaign = run_over_link(link, journal)
    finally:
        agent.stop()
        link.close()
    (bad_rid, point, channel, value), *_ = driver.corrupted
    k = driver.measured.index(bad_rid)
    assert k == 1 and bad_rid == reference[k][0]  # seeded: the second (a design point) is the bad one
    assert math.isnan(value) if faults.p_nan else math.isinf(value)
    got = data(campaign)
    assert got[:k] == reference[:k]  # every measurement before it, untouched
    assert len(got) == BUDGET and all(math.isfinite(y) for _, _, y in got)  # the budget, all numbers
    ev = journalled(path)
    bad = [e for e in ev["measurement"] if e.request_id == bad_rid]
    assert len(bad) == 1 and math.isnan(bad[0].body["y"])  # what arrived, kept as evidence
    assert tuple(bad[0].body["x"]) not in [x for _, x, _ in got]  # the failed point is never asked for again
    errors = {e.request_id: e.body for e in ev["error"]}
    assert (
        errors[bad_rid]["stage"] == "tell" and errors[bad_rid]["reason"] == "non-finite" and errors[bad_rid]["skipped"]
    )
    assert "y=nan" in errors[bad_rid]["message"]  # the wire carries a non-finite reading as null: NaN here
    # reopened: the skipped reading is not data, nothing is left in flight, the campaign is the live one
    with Journal.open(path, readonly=True) as j:
        resumed = retell(new_campaign(space_of(driver.describe())), j)
    assert data(resumed.campaign) == got and resumed.in_flight == () and resumed.campaign.done


def test_readings_that_are_never_numbers_stop_the_campaign_with_a_clear_error(endpoint, keyring, tmp_path, reference):
    faults = Faults(p_nan=1.0, seed=1)
    driver = FaultyDriver(SimulatedDriver(simulator()), faults)
    link = start_link(endpoint, keyring)
    agent = serve(driver, link.endpoint, keyring, faults)
    path = tmp_path / "j.sqlite"
    try:
        with Journal.create(path, {"test": "nan"}) as journal:
            with pytest.raises(MeasurementRejected) as info:
                run_over_link(link, journal)
    finally:
        agent.stop()
        link.close()
    assert info.value.reason == "non-finite" and "y=nan" in str(info.value)
    assert len(driver.measured) == 3  # max_failures (3) in a row, each at a new point under a new id
    assert len(set(driver.measured)) == 3
    ev = journalled(path)
    assert [e.body["skipped"] for e in ev["error"]] == [True, True, False]
    with Journal.open(path, readonly=True) as j:
        resumed = retell(new_campaign(space_of(driver.describe())), j)
    assert resumed.campaign.n == 0 and [r.request_id for r in resumed.in_flight] == [driver.measured[-1]]


# ------------------------------------------------------------ crash


class Supervisor:
    """Restarts a crashed agent at once (like systemd's Restart=always): a fresh agent, new session, empty cache."""

    def __init__(self, make) -> None:
        self.make, self.lives = make, [Served(make())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if not self.lives[-1].thread.is_alive() and self.lives[-1].crashed is not None:
                self.lives.append(Served(self.make()))
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.lives[-1].stop()


def test_the_instrument_outlives_agent_crashes_and_the_campaign_loses_and_doubles_nothing(
    endpoint, keyring, tmp_path, reference
):
    # one instrument (driver and its seeded flakiness) served by successive agent processes: crashes at calls 3 and 4
    # (the re-sent request crashes the second life too), before anything is measured
    driver = FaultyDriver(SimulatedDriver(simulator()), Faults(p_crash=0.2, seed=2))
    assert not driver.blocking  # measured inline: AgentCrash unwinds agent.serve() as a kill would
    link = start_link(endpoint, keyring)
    agents = Supervisor(lambda: InstrumentAgent(driver, link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        first = link.wait_for_agent(15)
        with Journal.create(tmp_path / "j.sqlite", {"test": "crash"}) as journal:
            campaign = run_over_link(link, journal)
        assert driver.crashes == 2 and len(agents.lives) == 3
        assert all(isinstance(s.crashed, AgentCrash) for s in agents.lives[:-1])
        assert link.agents["sim"].session != first.session  # the campaign ended on another agent process
        assert driver.measured == [rid for rid, _, _ in reference]  # nothing lost, nothing measured twice
        assert data(campaign) == reference
        assert_journal_matches(tmp_path / "j.sqlite", reference)
    finally:
        agents.stop()
        link.close()


def test_a_restarted_agent_with_a_fresh_driver_from_the_same_seed_finishes_the_campaign(endpoint, keyring, tmp_path):
    # each restart builds everything anew, as `abduce instrument serve` after a crash: the simulator's noise stream
    # starts over, so values differ from the reference, but no request is lost or measured twice
    drivers: list[FaultyDriver] = []

    def make():
        drivers.append(FaultyDriver(SimulatedDriver(simulator()), Faults(p_crash=0.2, seed=4)))  # crashes at call 2
        return InstrumentAgent(drivers[-1], link.endpoint, Codec(keyring, "lab"), "sim")

    link = start_link(endpoint, keyring)
    agents = Supervisor(make)
    try:
        with Journal.create(tmp_path / "j.sqlite", {"test": "crash-fresh"}) as journal:
            campaign = run_over_link(link, journal)
        # every life measures 2 requests and crashes on its third: 10 requests take 4 crashed lives and a fifth
        assert [d.crashes for d in drivers] == [1] * 4 + [0] and [len(d.measured) for d in drivers] == [2] * 5
        measured = [rid for d in drivers for rid in d.measured]
        ids = [r.request_id for r in campaign.history]
        assert measured == ids and len(set(ids)) == BUDGET
        # each value is the one its life's simulator produced: life i measured the stream's first two draws
        fresh = Transition1D(grid=101, seed=SEED)
        for j, r in enumerate(campaign.history):
            if j % 2 == 0:
                fresh = Transition1D(grid=101, seed=SEED)
            assert r.y == float(fresh.measure(np.array([r.x]))[0])
        ev = journalled(tmp_path / "j.sqlite")
        assert [e.request_id for e in ev["measurement"]] == ids and "error" not in ev
    finally:
        agents.stop()
        link.close()


def test_an_agent_process_that_crashes_exits_at_once_and_its_restart_finishes_the_campaign(
    endpoint, tmp_path, reference
):
    # `abduce instrument serve --faults`: os._exit(1) at the crash (seed 0: the ninth call), then a new process
    new_key(tmp_path / "lab.key", "lab")
    key_id, secret = load_key(tmp_path / "lab.key")
    log = open(tmp_path / "agent.log", "a")

    def spawn():
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "abduce.controller.cli",
                "instrument",
                "serve",
                "--driver",
                "simulated:transition-1d",
                "--grid",
                "101",
                "--seed",
                str(SEED),
                "--id",
                "sim",
                "--connect",
                link.endpoint,
                "--key",
                str(tmp_path / "lab.key"),
                "--faults",
                "crash=0.2,seed=0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    link = InstrumentLink(
        endpoint, Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.1, ack_timeout_s=0.2
    ).start()
    procs = [spawn()]
    try:
        registered = link.wait_for_agent(30)
        campaign = new_campaign(space_of(registered.capabilities))
        instrument = LinkInstrument(link, registered, timeout_s=30)

        watcher_stop = threading.Event()

        def watch():  # a supervisor (systemd's Restart=always): a new process once the last one has died
            while not watcher_stop.is_set():
                if procs[-1].poll() is not None and len(procs) < 5:
                    procs.append(spawn())
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            run_campaign(campaign, instrument)
        finally:
            watcher_stop.set()
            watcher.join(5)
        assert [p.returncode for p in procs[:-1]] == [1] and procs[-1].poll() is None  # one hard exit, status 1
        assert "the agent crashes now" in (tmp_path / "agent.log").read_text()
        # the first process measured 8 requests; the second starts its noise stream over for the last 2: a request
        # measured twice, or lost, would shift these values
        got = data(campaign)
        assert got[:8] == reference[:8]
        fresh = simulator()
        assert [y for _, _, y in got[8:]] == [float(fresh.measure(np.array([x]))[0]) for _, x, _ in got[8:]]
        assert [rid for rid, _, _ in got] == [rid for rid, _, _ in reference]
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
        log.close()
        link.close()


# ------------------------------------------------------------ out-of-order results


def test_held_back_results_are_matched_by_request_id_in_a_campaign(endpoint, keyring, tmp_path, reference):
    faults = Faults(p_reorder=0.5, hold_s=0.05, seed=1)
    driver = FaultyDriver(SimulatedDriver(simulator()), faults)
    link = start_link(endpoint, keyring)
    agent = serve(driver, link.endpoint, keyring, faults)
    try:
        with Journal.create(tmp_path / "j.sqlite", {"test": "reorder"}) as journal:
            campaign = run_over_link(link, journal)
        assert data(campaign) == reference
        assert driver.measured == [rid for rid, _, _ in reference]
        assert sum(what == "held" for _, what in agent.agent.reply_gate.log) >= 2
        assert_journal_matches(tmp_path / "j.sqlite", reference)
    finally:
        agent.stop()
        link.close()


def measure_concurrently(link: InstrumentLink, n: int) -> dict[int, object]:
    """``n`` threads, each ``link.measure`` of its own point ``i / (n + 1)``; returns ``{i: result or exception}``."""
    out: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            out[i] = link.measure(Measure(request_id=f"r{i}", points=[[i / (n + 1)]]), "sim", 20).result
        except Exception as exc:  # reported by the assertions, not lost in the thread
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_concurrent_requests_each_get_their_own_result_when_results_arrive_out_of_order(endpoint, keyring):
    arrivals: list[str] = []
    audit = lambda line: (
        arrivals.append(line["request_id"]) if (line["dir"], line["msg_type"]) == ("in", "result") else None
    )  # noqa: E731
    driver = SlowDriver(delay=0.01)  # y = sum(x), on the worker thread, one at a time
    link = start_link(endpoint, keyring, heartbeat_s=0.2, ack_timeout_s=1.0, audit=audit)
    agent = serve(driver, link.endpoint, keyring, Faults(p_reorder=0.5, hold_s=0.3, seed=1))
    try:
        link.wait_for_agent(15)
        out = measure_concurrently(link, 8)
        for i in range(8):
            assert out[i].request_id == f"r{i}" and out[i].values == {"y": [i / 9]}, out[i]
        first_arrival = list(dict.fromkeys(arrivals))
        assert sorted(first_arrival) == sorted(driver.calls)
        assert first_arrival != driver.calls  # results really came in another order than measured
        assert len(driver.calls) == len(set(driver.calls)) == 8
    finally:
        agent.stop()
        link.close()


def test_every_fault_of_the_send_path_at_once_with_concurrent_requests(endpoint, keyring):
    driver = SlowDriver()
    faults = Faults(latency_s=0.002, jitter_s=0.003, p_drop=0.2, p_reorder=0.3, hold_s=0.1, seed=4)
    link = start_link(endpoint, keyring, heartbeat_s=0.05, ack_timeout_s=0.2)
    agent = serve(FaultyDriver(driver, faults), link.endpoint, keyring, faults)
    try:
        link.wait_for_agent(15)
        out = measure_concurrently(link, 16)
        for i in range(16):
            assert out[i].request_id == f"r{i}" and out[i].values == {"y": [i / 17]}, out[i]
        assert sorted(driver.calls) == sorted(f"r{i}" for i in range(16))  # each measured exactly once
        log = agent.agent.reply_gate.log
        assert any(w == "dropped" for _, w in log) and any(w == "held" for _, w in log)
    finally:
        agent.stop()
        link.close()


# ------------------------------------------------------------ the daemon


def run_daemon(tmp_path, make_agents, budget=8):
    """A daemon from a config in ``tmp_path``, served by ``make_agents(listen, keyring)``; returns (outcome, agents)."""
    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(DAEMON_CONFIG.format(budget=budget, seed=SEED, listen=LOOPBACK, control=LOOPBACK))
    key_id, secret = load_key(tmp_path / "lab.key")
    daemon = Daemon(load_settings(path), path)
    outcome: dict = {}

    def go():
        try:
            outcome["status"] = daemon.run()
        except Exception as exc:
            outcome["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    assert wait_until(lambda: (tmp_path / "run" / "endpoints.json").exists() or not t.is_alive(), timeout=120), (
        "never bound"
    )
    agents = make_agents(read_endpoints(tmp_path / "run")["instrument"], Keyring({key_id: secret}))
    t.join(600)  # a guard against a hang only
    if t.is_alive():
        daemon.stop()
        t.join(30)
    return outcome, agents


def test_the_daemon_skips_a_nan_reading_and_finishes_with_clean_data_files(tmp_path):
    driver = FaultyDriver(SimulatedDriver(simulator()), Faults(p_nan=0.15, seed=10))
    outcome, agent = run_daemon(tmp_path, lambda listen, ring: serve(driver, listen, ring))
    agent.stop()
    assert outcome.get("status", {}).get("state") == "done", outcome
    (bad_rid, *_), *_ = driver.corrupted
    run = tmp_path / "run"
    ev = journalled(run / "journal.sqlite")
    assert [e.request_id for e in ev["measurement"]] == driver.measured  # the NaN reading included, as evidence
    assert (bad_rid, "tell", True) in [(e.request_id, e.body["stage"], e.body["skipped"]) for e in ev["error"]]
    measured_lines = [json.loads(line) for line in (run / "measurements.jsonl").read_text().splitlines()]
    assert len(measured_lines) == 8 and all(math.isfinite(m["y"]) for m in measured_lines)  # no NaN in the data files
    with Journal.open(run / "journal.sqlite", readonly=True) as j:
        resumed = retell(
            Recipe(hypotheses=("second-order", "linear"), budget=8, seed=SEED, n_init=4).build_campaign(
                space_of(driver.describe())
            ),
            j,
        )
    assert resumed.campaign.n == 8 and resumed.in_flight == ()


def test_the_daemon_finishes_through_agent_crashes_with_every_request_measured_once(tmp_path):
    driver = FaultyDriver(SimulatedDriver(simulator()), Faults(p_crash=0.2, seed=2))

    def make_agents(listen, ring):
        return Supervisor(lambda: InstrumentAgent(driver, listen, Codec(ring, "lab"), "sim"))

    outcome, agents = run_daemon(tmp_path, make_agents)
    agents.stop()
    assert outcome.get("status", {}).get("state") == "done", outcome
    assert driver.crashes == 2 and len(agents.lives) == 3
    ev = journalled(tmp_path / "run" / "journal.sqlite")
    ids = [e.request_id for e in ev["measurement"]]
    assert ids == driver.measured and len(set(ids)) == 8 and "error" not in ev
