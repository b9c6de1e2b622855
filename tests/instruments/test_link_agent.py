"""The controller link and the instrument agent over loopback TCP, signing on."""

import os
import re
import threading

import numpy as np
import pytest

from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.controller.errors import ConfigError
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import Measure, Result
from tests.instruments.conftest import AgentThread, SlowDriver, wait_until


def start(endpoint, keyring, driver, heartbeat=0.2, agent_keyring=None, instrument_id="sim"):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=heartbeat, ack_timeout_s=0.5).start()
    ring = agent_keyring or keyring
    agent = AgentThread(InstrumentAgent(driver, link.endpoint, Codec(ring, ring.ids()[0]), instrument_id))
    return link, agent


def test_register_and_measure_the_simulator_over_tcp(endpoint, keyring):
    link, agent = start(endpoint, keyring, build("simulated:transition-1d", grid=11, seed=3))
    try:
        registered = link.wait_for_agent(15)
        assert registered.capabilities.candidates is not None and registered.key_id == "lab"
        got = [link.measure(Measure(request_id=f"r{i}", points=[[0.2]]), "sim", 5)[0].values["y"][0] for i in range(5)]
        from abduce.simulators.transition1d import Transition1D

        expected = Transition1D(grid=11, seed=3).measure(np.full((5, 1), 0.2))
        np.testing.assert_allclose(got, expected)  # same noise stream as in-process
    finally:
        agent.stop()
        link.close()


def test_the_agent_enforces_its_limits_whatever_the_controller_sends(endpoint, keyring):
    link, agent = start(endpoint, keyring, build("simulated:transition-1d", grid=11))
    try:
        link.wait_for_agent(15)
        for point, code in (
            ([1.5], "rejected:out-of-limits"),
            ([0.15], "rejected:off-grid"),
            ([0.1, 0.2], "rejected:wrong-dimension"),
        ):
            with pytest.raises(LinkError) as info:
                link.measure(Measure(request_id=f"bad{point}", points=[point]), "sim", 5)
            assert info.value.code == code
        assert agent.agent.measured == 0
    finally:
        agent.stop()
        link.close()


def test_a_retried_request_is_answered_from_the_cache_not_measured_twice(endpoint, keyring):
    driver = SlowDriver()
    link, agent = start(endpoint, keyring, driver)
    try:
        link.wait_for_agent(15)
        first = link.measure(Measure(request_id="same", points=[[0.3]]), "sim", 5).result
        second = link.measure(Measure(request_id="same", points=[[0.3]]), "sim", 5).result
        assert first.values == second.values and driver.calls == ["same"]
    finally:
        agent.stop()
        link.close()


@pytest.mark.parametrize("agent_key", [{"lab": os.urandom(32)}, {"intruder": os.urandom(32)}])
def test_an_agent_without_the_right_key_can_neither_register_nor_deliver(endpoint, keyring, agent_key):
    link, agent = start(endpoint, keyring, SlowDriver(), agent_keyring=Keyring(agent_key))
    try:
        with pytest.raises(LinkError, match="no instrument agent"):
            link.wait_for_agent(1.0)
        assert link.agents == {}
        assert {e.code for e in link.errors} <= {"bad-signature", "unknown-key"} and link.errors
        # and a forged result for a pending request is never accepted
        done = threading.Event()

        def ask():
            try:
                link.measure(Measure(request_id="victim", points=[[0.1]]), "sim", 1.0)
            except LinkError as exc:
                done.exc = exc
            done.set()

        threading.Thread(target=ask).start()
        import zmq

        rogue = zmq.Context.instance().socket(zmq.DEALER)
        rogue.connect(link.endpoint)
        forged = Codec(Keyring(agent_key), list(agent_key)[0]).encode(
            Result(request_id="victim", status="ok", points=[[0.1]], values={"y": [9.9]})
        )
        rogue.send_multipart(forged)
        assert done.wait(60) and done.exc.code == "timeout"
        rogue.close(linger=0)
    finally:
        agent.stop()
        link.close()


def test_abort_on_the_control_lane_does_not_wait_behind_a_measurement(endpoint, keyring):
    """The measurement would take ten minutes; the abort's answer (and the aborted result) come long before,
    so the abort cannot have waited behind it (the timeouts only guard against a hang). Protocol 1.1: the
    result of a stopped measurement is ``aborted`` and carries no readings (the driver finished none)."""
    driver = SlowDriver(delay=600.0)
    link, agent = start(endpoint, keyring, driver)
    try:
        link.wait_for_agent(15)
        assert wait_until(lambda: link.agents["sim"].control_identity is not None)
        box = {}

        def measure():
            try:
                box["r"] = link.measure(Measure(request_id="long", points=[[0.5]]), "sim", 120)
            except LinkError as exc:
                box["error"] = exc

        t = threading.Thread(target=measure)
        t.start()
        assert wait_until(lambda: driver.calls == ["long"])
        reply = link.abort("sim", "long", timeout_s=120)
        assert reply.aborted and agent.agent.state.state in ("aborting", "idle")
        t.join(120)
        assert "r" not in box and box["error"].code == "aborted" and driver.calls == ["long"]
        assert wait_until(lambda: agent.agent.state.state == "idle")
        assert link.safe_state("sim", "test").ok and agent.agent.state.state == "safe"
        with pytest.raises(LinkError) as info:  # nothing is measured in the safe state
            link.measure(Measure(request_id="while-safe", points=[[0.5]]), "sim", 30)
        assert info.value.code == "rejected:busy" and "release" in str(info.value)
        assert link.release("sim", "test").ok and agent.agent.state.state == "idle"
        driver.delay = 0.0
        assert link.measure(Measure(request_id="after", points=[[0.5]]), "sim", 30).result.values == {"y": [0.5]}
        assert driver.calls == ["long", "after"]
    finally:
        agent.stop()
        link.close()


def test_agent_restart_mid_request_settles_without_loss_or_double(endpoint, keyring):
    slow = SlowDriver(delay=30.0)
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
    first = AgentThread(InstrumentAgent(slow, link.endpoint, Codec(keyring, "lab"), "sim"))
    second = None
    try:
        link.wait_for_agent(15)
        box = {}
        t = threading.Thread(
            target=lambda: box.setdefault("r", link.measure(Measure(request_id="inflight", points=[[0.25]]), "sim", 20))
        )
        t.start()
        assert wait_until(lambda: slow.calls == ["inflight"])
        first.agent.stop()  # the agent dies mid-measurement, its cache with it
        first.thread.join(10)  # its sockets are closed: whatever the driver returns now is never sent
        slow._abort.set()
        fresh = SlowDriver()
        second = AgentThread(InstrumentAgent(fresh, link.endpoint, Codec(keyring, "lab"), "sim"))
        t.join(20)
        assert box["r"][0].values == {"y": [0.25]}
        assert fresh.calls == ["inflight"]  # re-measured once, by the restarted agent, as idempotency allows
    finally:
        if second:
            second.stop()
        link.close()


def test_a_non_idempotent_request_unknown_after_restart_is_reported_lost_not_resent(endpoint, keyring):
    slow = SlowDriver(delay=30.0, idempotent=False)
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
    first = AgentThread(InstrumentAgent(slow, link.endpoint, Codec(keyring, "lab"), "sim"))
    second = None
    try:
        link.wait_for_agent(15)
        box = {}

        def ask():
            try:
                link.measure(Measure(request_id="dose", points=[[0.25]], idempotent=False), "sim", 20)
            except LinkError as exc:
                box["e"] = exc

        t = threading.Thread(target=ask)
        t.start()
        assert wait_until(lambda: slow.calls == ["dose"])
        first.agent.stop()
        first.thread.join(10)
        slow._abort.set()
        fresh = SlowDriver(idempotent=False)
        second = AgentThread(InstrumentAgent(fresh, link.endpoint, Codec(keyring, "lab"), "sim"))
        t.join(20)
        assert box["e"].code == "lost" and fresh.calls == []
    finally:
        if second:
            second.stop()
        link.close()


def test_binding_beyond_loopback_without_curve_is_refused(keyring):
    with pytest.raises(ConfigError, match="CURVE"):
        InstrumentLink("tcp://0.0.0.0:5555", Codec(keyring, "lab"))


def test_a_taken_control_lane_is_a_clear_error_and_the_link_still_closes(keyring):
    """The control lane is the instrument port + 1: taken, the link says so and closes (it used to hang in
    the ZeroMQ context's term, so a daemon whose ports collided never exited).

    The instrument port is free when probed but cannot be held for the link to bind: where another process
    takes it in between (the link then names the instrument port, not the control lane), the test takes
    another pair. The link is closed whatever happens, so a failure here leaves no context to hang the
    garbage collector in a later test."""
    import zmq

    ctx = zmq.Context.instance()
    for _ in range(20):
        probe = ctx.socket(zmq.ROUTER)
        port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close(linger=0)
        squatter = ctx.socket(zmq.ROUTER)
        try:
            squatter.bind(f"tcp://127.0.0.1:{port + 1}")  # a free port whose successor we can hold
        except zmq.ZMQError:
            squatter.close(linger=0)
            continue
        link = InstrumentLink(f"tcp://127.0.0.1:{port}", Codec(keyring, "lab"))
        try:
            with pytest.raises(LinkError) as refused:
                link.start()
        finally:
            closer = threading.Thread(target=link.close, daemon=True)
            closer.start()
            closer.join(60)  # milliseconds when it works; a hang is the bug
            squatter.close(linger=0)
        assert not closer.is_alive()
        message = str(refused.value)
        if "control lane" not in message and f"tcp://127.0.0.1:{port}:" in message:
            continue  # the instrument port itself was taken after the probe: another pair
        assert re.search(rf"control lane tcp://127.0.0.1:{port + 1} \(the instrument port \+ 1\)", message), message
        return
    pytest.fail("no port pair with its successor free and held in 20 tries")
    try:
        link = InstrumentLink(f"tcp://127.0.0.1:{port}", Codec(keyring, "lab"))
        with pytest.raises(LinkError, match=rf"control lane tcp://127.0.0.1:{port + 1} \(the instrument port \+ 1\)"):
            link.start()
        closer = threading.Thread(target=link.close, daemon=True)
        closer.start()
        closer.join(60)  # milliseconds when it works; a hang is the bug
        assert not closer.is_alive()
    finally:
        squatter.close(linger=0)
