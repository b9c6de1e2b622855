"""The simulated driver serves any simulator: scalar or spectroscopic, directly and over a real link."""

import threading

import numpy as np
import pytest

from abduce.controller.drive.link import InstrumentLink
from abduce.controller.errors import ConfigError
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import SimulatedDriver, build
from abduce.instruments.protocol.codec import Codec
from abduce.instruments.protocol.models import Measure
from abduce.simulators.loops import Loops
from abduce.simulators.phase2d import Phase2D
from abduce.simulators.transition1d import Transition1D
from tests.instruments.conftest import AgentThread


def test_a_spectroscopic_simulator_declares_and_returns_its_array_channel():
    driver = build("simulated:loops", grid=11, m=64, seed=3)
    caps = driver.describe()
    assert [(a.name, a.min, a.max) for a in caps.axes] == [("composition", 0.0, 0.25)]
    assert [(c.name, c.shape) for c in caps.channels] == [("loop", [2, 64])]
    assert len(caps.candidates) == 11 and driver.blocking is False
    points = [[0.0], [0.125], [0.25]]
    reading = driver.measure(Measure(request_id="r", points=points))
    assert reading.values == {} and reading.arrays["loop"].shape == (3, 2, 64)
    np.testing.assert_array_equal(reading.arrays["loop"], Loops(grid=11, m=64, seed=3).measure(np.array(points)))


def test_a_scalar_simulator_keeps_its_axis_names_and_scalar_channel():
    driver = SimulatedDriver(Phase2D(grid=5, seed=1, channel="m"))
    caps = driver.describe()
    assert [a.name for a in caps.axes] == ["composition", "temperature"]
    assert [(c.name, c.shape) for c in caps.channels] == [("m", [])]
    reading = driver.measure(Measure(request_id="r", points=[[0.0, 100.0], [1.0, 700.0]]))
    assert reading.arrays == {}
    np.testing.assert_array_equal(
        reading.values["m"], Phase2D(grid=5, seed=1).measure(np.array([[0.0, 100.0], [1.0, 700.0]]))
    )
    assert SimulatedDriver(Transition1D(), channel="z").describe().channels[0].name == "z"


class WatchedEvent(threading.Event):
    """The driver's abort event, noting each wait it is asked for (the clock boundary) as the wait begins."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.waiting = threading.Event()

    def wait(self, timeout=None):
        self.waits.append(timeout)
        self.waiting.set()
        return super().wait(timeout)


def test_dwell_is_slept_per_point_and_can_be_aborted():
    driver = SimulatedDriver(Transition1D(grid=11, dwell_s=0.05))
    driver._abort = WatchedEvent()
    assert driver.blocking is True
    driver.measure(Measure(request_id="r", points=[[0.1], [0.2], [0.3]]))
    assert driver._abort.waits == [pytest.approx(3 * 0.05)]  # one dwell per point, asked of the clock
    slow = SimulatedDriver(Transition1D(grid=11, dwell_s=3600.0))  # an hour: only an abort ends it in time
    slow._abort = WatchedEvent()
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", slow.measure(Measure(request_id="r", points=[[0.1]]))))
    t.start()
    assert slow._abort.waiting.wait(60)
    assert slow.abort() is True
    t.join(60)  # a guard against a hang only: without the abort this takes an hour
    assert not t.is_alive() and len(box["r"].values["y"]) == 1


def test_an_object_without_the_interface_is_refused():
    with pytest.raises(ConfigError, match="lacks bounds"):
        SimulatedDriver(object())


def test_loops_arrive_as_buffers_with_the_declared_shape_over_tcp(endpoint, keyring):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
    agent = AgentThread(
        InstrumentAgent(build("simulated:loops", grid=11, seed=3), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        assert [(c.name, c.shape) for c in registered.capabilities.channels] == [("loop", [2, 128])]
        points = [[0.1], [0.025]]
        reply = link.measure(Measure(request_id="r0", points=points), "sim", 5)
        assert reply.result.status == "ok" and reply.result.values == {}
        (spec,) = reply.result.arrays
        assert (spec.channel, spec.shape, spec.dtype) == ("loop", [2, 2, 128], "<f8")
        loops = np.frombuffer(reply.buffers[spec.buffer], dtype=spec.dtype).reshape(spec.shape)
        np.testing.assert_array_equal(loops, Loops(grid=11, seed=3).measure(np.array(points)))  # same noise stream
    finally:
        agent.stop()
        link.close()


def test_a_two_channel_simulator_serves_both_and_reads_those_asked_for():
    from abduce.simulators.channels import TwoChannel

    driver = build("simulated:two-channel", grid=11, seed=5)
    caps = driver.describe()
    assert [(c.name, c.shape) for c in caps.channels] == [("y", []), ("image", [])]
    points = [[0.0], [0.5]]
    sim = TwoChannel(grid=11, seed=5)
    only = driver.measure(Measure(request_id="r", points=points, channels=["image"]))
    assert set(only.values) == {"image"} and only.sd == {"image": [sim.reading_sd("image")] * 2}
    np.testing.assert_array_equal(only.values["image"], sim.measure_channel(np.array(points), "image"))
    every = driver.measure(Measure(request_id="s", points=points))  # none named (a 1.2 controller): all of them
    assert set(every.values) == {"y", "image"}
