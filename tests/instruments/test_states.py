"""The agent's state table (protocol 1.1): the code's table is the SPEC's, cell for cell, and a real agent
over sockets does what the table says for safe_state, release, abort and measure in every state."""

import re
import threading
from pathlib import Path

import pytest

from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.base import Reading
from abduce.instruments.protocol.codec import Codec
from abduce.instruments.protocol.models import Measure
from abduce.instruments.states import EVENTS, STATES, TABLE, AgentState
from tests.instruments.conftest import AgentThread, SlowDriver, wait_until

SPEC = (Path(__file__).parents[2] / "instruments" / "protocol" / "SPEC.md").read_text()
COLUMNS = {"`measure`": "measure", "`abort`": "abort", "`safe_state`": "safe_state", "`release`": "release"}


def spec_table() -> dict[tuple[str, str], tuple[str, str]]:
    """SPEC section 6, "Agent states", read as (state, event) -> (next state, action)."""
    section = SPEC[SPEC.index("**Agent states**") :]
    rows = [line for line in section.splitlines() if line.startswith("| **")][:4]
    header = next(line for line in section.splitlines() if line.startswith("| state"))
    events = [COLUMNS.get(c.strip(), "done") for c in header.strip("|").split("|")[1:]]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        state = cells[0].strip("*")
        for event, cell in zip(events, cells[1:]):
            moved = re.search(r"-> (\w+)", cell)
            nxt = moved.group(1) if moved else state
            if "busy" in cell:
                action = "busy"
            elif cell.startswith("accepted"):
                action = "accept"
            elif "driver.release" in cell:
                action = "release"
            elif event == "safe_state":
                action = "safe"
            elif event == "abort" and "stops it" in cell:
                action = "abort"
            else:
                action = "nothing"
            out[(state, event)] = (nxt, action)
    return out


def test_the_code_s_table_is_the_spec_s_table_cell_for_cell():
    assert set(TABLE) == {(s, e) for s in STATES for e in EVENTS}
    assert spec_table() == TABLE


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_transition_moves_as_the_table_says(state, event):
    s = AgentState(state)
    assert s.on(event) == TABLE[(state, event)][1] and s.state == TABLE[(state, event)][0]


def test_only_release_leaves_the_safe_state():
    for event in EVENTS:
        s = AgentState("safe")
        s.on(event)
        assert (s.state == "safe") is (event != "release")


def start(endpoint, keyring, driver):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
    agent = AgentThread(InstrumentAgent(driver, link.endpoint, Codec(keyring, "lab"), "sim"))
    link.wait_for_agent(15)
    assert wait_until(lambda: link.agents["sim"].control_identity is not None)
    return link, agent


def measurer(link, box: dict):
    """``measure(request_id)`` for a thread: the reply (or the LinkError) lands in ``box[request_id]``."""

    def measure(rid: str) -> None:
        try:
            box[rid] = link.measure(Measure(request_id=rid, points=[[0.5]]), "sim", 120)
        except LinkError as exc:
            box[rid] = exc

    return measure


def test_the_safe_state_stops_what_runs_and_refuses_everything_until_release(endpoint, keyring):
    driver = SlowDriver(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    try:
        box = {}
        measure = measurer(link, box)
        running = threading.Thread(target=measure, args=("running",))
        running.start()
        assert wait_until(lambda: driver.calls == ["running"])
        queued = threading.Thread(target=measure, args=("queued",))  # accepted behind the running one
        queued.start()
        assert wait_until(lambda: "queued" in agent.agent._inflight)
        assert link.safe_state("sim", "tip crash").ok  # measuring -> safe: both end aborted
        running.join(120)
        queued.join(120)
        assert box["running"].code == box["queued"].code == "aborted"
        assert driver.calls == ["running"]  # the queued one was never measured
        assert agent.agent.state.state == "safe"
        assert not link.abort("sim").aborted and agent.agent.state.state == "safe"  # nothing runs
        assert link.safe_state("sim", "again").ok and agent.agent.state.state == "safe"
        with pytest.raises(LinkError) as info:
            link.measure(Measure(request_id="refused", points=[[0.5]]), "sim", 30)
        assert info.value.code == "rejected:busy" and driver.calls == ["running"]
        assert link.release("sim").ok and agent.agent.state.state == "idle"
        assert link.release("sim").ok and agent.agent.state.state == "idle"  # idle: nothing to release
        assert not link.abort("sim").aborted  # idle: nothing to abort
        driver.delay = 0.0
        assert link.measure(Measure(request_id="after", points=[[0.25]]), "sim", 30).result.values == {"y": [0.25]}
        assert wait_until(lambda: agent.agent.state.state == "idle")
    finally:
        agent.stop()
        link.close()


def test_a_measure_while_aborting_is_busy(endpoint, keyring):
    class Stubborn(SlowDriver):
        def abort(self) -> bool:  # says it stops, but the measurement runs on (a slow stage)
            return True

    driver = Stubborn(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    box: dict = {}
    try:
        t = threading.Thread(target=measurer(link, box), args=("long",))
        t.start()
        assert wait_until(lambda: driver.calls == ["long"])
        assert link.abort("sim", "long").aborted and agent.agent.state.state == "aborting"
        with pytest.raises(LinkError) as info:
            link.measure(Measure(request_id="meanwhile", points=[[0.5]]), "sim", 30)
        assert info.value.code == "rejected:busy" and driver.calls == ["long"]
        driver._abort.set()  # let the worker finish: the stopped one still ends aborted
        t.join(60)
        assert box["long"].code == "aborted"
    finally:
        driver._abort.set()
        t.join(30)
        agent.stop()
        link.close()


def test_an_abort_naming_a_queued_request_stops_only_that_one(endpoint, keyring):
    driver = SlowDriver(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    box = {}
    measure = measurer(link, box)
    threads = [threading.Thread(target=measure, args=(rid,)) for rid in ("running", "queued")]
    try:
        threads[0].start()
        assert wait_until(lambda: driver.calls == ["running"])
        threads[1].start()
        assert wait_until(lambda: "queued" in agent.agent._inflight)
        reply = link.abort("sim", "queued")
        assert reply.aborted and agent.agent.state.state == "measuring" and not driver._abort.is_set()
        threads[1].join(120)
        assert box["queued"].code == "aborted"
        driver._abort.set()  # the running one ends as it would have: measured, not aborted
        threads[0].join(120)
        assert box["running"].result.status == "ok" and box["running"].result.values == {"y": [0.5]}
        assert driver.calls == ["running"]
    finally:
        driver._abort.set()
        for t in threads:
            t.join(30)
        agent.stop()
        link.close()


def test_a_driver_that_cannot_abort_still_reaches_the_safe_state_and_leaves_nothing_unanswered(endpoint, keyring):
    class NoAbortLine(SlowDriver):
        safed = False

        def abort(self) -> bool:
            raise RuntimeError("abort line not wired")

        def safe_state(self) -> str:
            self.safed = True
            return "parked"

    driver = NoAbortLine(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    box: dict = {}
    threads = [threading.Thread(target=measurer(link, box), args=(rid,)) for rid in ("running", "queued")]
    try:
        threads[0].start()
        assert wait_until(lambda: driver.calls == ["running"])
        threads[1].start()
        assert wait_until(lambda: "queued" in agent.agent._inflight)
        assert link.safe_state("sim", "tip crash").detail == "parked" and driver.safed
        threads[1].join(60)
        assert box["queued"].code == "aborted" and agent.agent.state.state == "safe"
        driver._abort.set()  # the measurement the driver could not stop ends by itself: a reading, kept as one
        threads[0].join(60)
        assert box["running"].result.status == "ok" and driver.calls == ["running"]
    finally:
        driver._abort.set()
        for t in threads:
            t.join(30)
        agent.stop()
        link.close()


class OneLinePerMeasurement(SlowDriver):
    """An abort stops the measurement under way, not the next one (SlowDriver's line stays cut)."""

    def measure(self, request):
        self._abort = threading.Event()
        return super().measure(request)


def test_when_the_stopped_measurement_ends_the_queued_one_runs_and_can_be_stopped_too(endpoint, keyring):
    driver = OneLinePerMeasurement(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    box: dict = {}
    threads = [threading.Thread(target=measurer(link, box), args=(rid,)) for rid in ("first", "second")]
    try:
        threads[0].start()
        assert wait_until(lambda: driver.calls == ["first"])
        threads[1].start()
        assert wait_until(lambda: "second" in agent.agent._inflight)
        assert link.abort("sim", "first").aborted
        threads[0].join(60)
        assert box["first"].code == "aborted"
        assert wait_until(lambda: driver.calls == ["first", "second"])
        # aborting -> measuring once the stopped one ended: the agent's I/O thread records it after the worker
        # has already called the driver, so wait for it rather than read it at once
        assert wait_until(lambda: agent.agent.state.state == "measuring")
        assert link.abort("sim", "second").aborted
        threads[1].join(60)
        assert box["second"].code == "aborted" and wait_until(lambda: agent.agent.state.state == "idle")
    finally:
        driver._abort.set()
        for t in threads:
            t.join(30)
        agent.stop()
        link.close()


def test_an_abort_racing_the_end_of_a_measurement_never_gives_it_two_results(endpoint, keyring):
    """The driver has returned and the worker is still packaging the reading when the abort comes: the request
    is still the running one, so it is not settled a second time as if it were queued."""
    packaging, go_on = threading.Event(), threading.Event()

    class SlowToPackage(dict):
        def items(self):
            packaging.set()
            go_on.wait(60)
            return super().items()

    class Driver(SlowDriver):
        def measure(self, request):
            self.calls.append(request.request_id)
            return Reading(points=request.points, values={"y": [0.5]}, arrays=SlowToPackage())

    lines: list[dict] = []
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=30, audit=lines.append)
    link.start()
    driver = Driver()
    agent = AgentThread(InstrumentAgent(driver, link.endpoint, Codec(keyring, "lab"), "sim"))
    box: dict = {}
    t = threading.Thread(target=measurer(link, box), args=("r1",))
    try:
        link.wait_for_agent(15)
        assert wait_until(lambda: link.agents["sim"].control_identity is not None)
        t.start()
        assert wait_until(packaging.is_set, timeout=30)
        link.abort("sim", "r1")
        go_on.set()
        t.join(60)
        results = [line for line in lines if line["dir"] == "in" and line["msg_type"] == "result"]
        assert len(results) == 1 and box["r1"].result.status == agent.agent._results["r1"].content.status == "ok"
    finally:
        go_on.set()
        t.join(30)
        agent.stop()
        link.close()
