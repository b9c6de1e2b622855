"""Protocol 1.2: readings' standard deviations (``result.sd``) and spectral axes (``result.axes``).

Codec level (no sockets): the new fields round-trip at 1.2, are left out when stamped 1.1 or 1.0 and
refused when an older-stamped message carries them; their consistency checks. Over sockets: a 1.2 agent
and controller pass both through to the campaign's measurement; a 1.2 agent welcomed by a controller that
speaks only 1.1 never sends them; a 1.0 agent against the 1.2 controller still works."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from abduce.controller.core.measurements import MeasureRequest
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.remote import LinkInstrument
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.base import Driver, Reading, SpectralAxis
from abduce.instruments.protocol.codec import Codec, Keyring, ProtocolError
from abduce.instruments.protocol.models import (
    FIELDS_SINCE,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    ArraySpec,
    Axis,
    Capabilities,
    Channel,
    Measure,
    Result,
    SpectralAxisSpec,
)
from tests.fixtures.agent_1_0 import InstrumentAgent as Agent10
from tests.instruments.conftest import AgentThread

BIAS = np.linspace(-1.0, 1.0, 7)


class UncertainDriver(Driver):
    """A fake instrument: ``y = sum(x)`` with standard deviation ``0.1 + x_0`` (NaN, i.e. unknown, above
    x_0 = 0.9), and a spectrum ``s = x_0 * bias`` on a 7-point bias axis."""

    blocking = False

    def describe(self) -> Capabilities:
        return Capabilities(
            axes=[Axis(name="x", min=0.0, max=1.0)],
            channels=[Channel(name="y"), Channel(name="loop", unit="pm", shape=[len(BIAS)])],
        )

    def measure(self, request: Measure) -> Reading:
        p = np.asarray(request.points)
        sd = [0.1 + float(x[0]) if x[0] <= 0.9 else float("nan") for x in p]
        return Reading(
            points=p.tolist(),
            values={"y": [float(sum(x)) for x in p]},
            arrays={"loop": np.outer(p[:, 0], BIAS)},
            sd={"y": sd},
            axes={"loop": SpectralAxis("bias", "V", BIAS)},
        )


def slope(spectrum, axis=None) -> float:
    """A reduction that needs the spectral axis: the least-squares slope of the spectrum against it."""
    return float(np.polyfit(axis, spectrum, 1)[0])


def fresh_ring() -> Keyring:
    return Keyring({"lab": os.urandom(32)})


def result() -> Result:
    return Result(
        request_id="r1",
        status="ok",
        points=[[0.25], [0.5]],
        values={"y": [1.0, 2.0]},
        sd={"y": [0.5, None]},
        arrays=[ArraySpec(channel="loop", buffer=0, dtype="<f8", shape=[2, 3])],
        axes={"loop": SpectralAxisSpec(name="bias", unit="V", values=[-1.0, 0.0, 1.0])},
    )


def test_1_2_is_spoken_with_1_1_and_1_0_and_adds_only_result_fields():
    assert SUPPORTED_VERSIONS[-3:] == ("1.2", "1.1", "1.0") and PROTOCOL_VERSION == SUPPORTED_VERSIONS[0]
    assert {k: v for k, v in FIELDS_SINCE.items() if "1.2" in v.values()} == {"result": {"sd": "1.2", "axes": "1.2"}}
    for name in ("sd", "axes"):  # optional: a result without them is the 1.1 result
        assert not Result.model_fields[name].is_required()


def test_sd_and_axes_round_trip_at_1_2():
    ring = fresh_ring()
    frames = Codec(ring, "lab").encode(result(), buffers=[np.zeros((2, 3)).tobytes()])
    content = json.loads(frames[5])
    assert content["sd"] == {"y": [0.5, None]} and content["axes"]["loop"]["values"] == [-1.0, 0.0, 1.0]
    got = Codec(ring, "lab").decode(frames).content
    assert got == result()


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_an_older_stamp_leaves_the_new_fields_out(version):
    ring = fresh_ring()
    frames = Codec(ring, "lab").encode(result(), buffers=[np.zeros((2, 3)).tobytes()], version=version)
    content = json.loads(frames[5])
    assert "sd" not in content and "axes" not in content
    assert content["values"] == {"y": [1.0, 2.0]}  # everything else as sent
    got = Codec(ring, "lab").decode(frames).content
    assert got.sd == {} and got.axes == {}


def test_empty_new_fields_are_left_out_even_at_1_2():
    plain = Result(request_id="r", status="ok", points=[[0.5]], values={"y": [1.0]})
    content = json.loads(Codec(fresh_ring(), "lab").encode(plain)[5])
    assert set(content) == {
        "request_id",
        "status",
        "points",
        "values",
        "arrays",
        "started",
        "finished",
        "state",
        "error",
    }


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_a_message_stamped_older_than_a_field_it_carries_is_invalid_content(version):
    """A sender that puts a 1.2 field into a 1.1 message (hand-built: our encoder never does) is refused."""
    ring = fresh_ring()
    sender = Codec(ring, "lab")
    frames = sender.encode(Result(request_id="r", status="ok", points=[[0.5]], values={"y": [1.0]}), version=version)
    content = json.loads(frames[5])
    content["sd"] = {"y": [0.1]}
    parts = [frames[2], frames[3], frames[4], json.dumps(content).encode()]
    forged = [frames[0], ring.sign("lab", parts), *parts]
    with pytest.raises(ProtocolError) as err:
        Codec(ring, "lab").decode(forged)
    assert err.value.code == "invalid-content" and "new in 1.2" in err.value.message
    assert err.value.request_id == "r"


@pytest.mark.parametrize(
    "fields, why",
    [
        ({"sd": {"y": [-0.1]}}, "greater than or equal to 0"),
        ({"sd": {"z": [0.1]}}, "has no values"),
        ({"sd": {"y": [0.1, 0.2]}}, "has 2 entries"),
        ({"axes": {"y": {"name": "bias", "values": [1.0]}}}, "not in arrays"),
        ({"axes": {"loop": {"name": "bias", "values": [1.0, 2.0]}}}, "has 2 values"),
        ({"axes": {"loop": {"name": "bias", "values": []}}}, "at least 1"),
    ],
)
def test_inconsistent_sd_or_axes_are_invalid_content(fields, why):
    ring = fresh_ring()
    body = {
        "request_id": "r",
        "status": "ok",
        "points": [[0.5]],
        "values": {"y": [1.0]},
        "arrays": [{"channel": "loop", "buffer": 0, "dtype": "<f8", "shape": [1, 3]}],
        **fields,
    }
    sender = Codec(ring, "lab")
    frames = sender.encode(Result(request_id="r", status="ok"))
    parts = [frames[2], frames[3], frames[4], json.dumps(body).encode(), np.zeros(3).tobytes()]
    with pytest.raises(ProtocolError) as err:
        Codec(ring, "lab").decode([frames[0], ring.sign("lab", parts), *parts])
    assert err.value.code == "invalid-content" and why in err.value.message


def measure_through(link: InstrumentLink, agent, x: float, reduction: str | None = None, channel: str = "y"):
    instrument = LinkInstrument(link, agent, channel=channel, reduction=reduction, timeout_s=15)
    return instrument(MeasureRequest(request_id=f"m-{x}-{channel}", step=0, x=(x,), hypothesis=None, reason="test"))


def test_a_1_2_agent_passes_sd_and_axes_to_the_measurement(keyring, endpoint):
    lines: list[dict] = []
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, audit=lines.append).start()
    agent = AgentThread(InstrumentAgent(UncertainDriver(), link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == PROTOCOL_VERSION
        m = measure_through(link, registered, 0.25)
        assert m.y == 0.25 and m.y_sd == 0.35  # 0.1 + x
        assert measure_through(link, registered, 0.95).y_sd is None  # the driver's NaN: unknown
        # the reduction sees the axis: the slope of the loop against bias is x (s = x * bias)
        loop = measure_through(
            link, registered, 0.5, reduction="tests.instruments.test_protocol_1_2:slope", channel="loop"
        )
        assert loop.y == pytest.approx(0.5, abs=1e-12) and loop.y_sd is None
    finally:
        agent.stop()
        link.close()


def test_a_controller_that_speaks_1_1_never_sees_the_new_fields(keyring, endpoint):
    link = InstrumentLink(endpoint, Codec(keyring, "lab", versions=("1.1", "1.0")), heartbeat_s=0.2).start()
    agent = AgentThread(InstrumentAgent(UncertainDriver(), link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.1"
        reply = link.measure(Measure(request_id="old", points=[[0.25]]), "sim", 15)
        header, content = (
            json.loads(reply.raw[2]),
            json.loads(reply.raw[5]),
        )  # [TAG, sig, header, parent, meta, content]
        assert header["version"] == "1.1"
        assert "sd" not in content and "axes" not in content and content["values"] == {"y": [0.25]}
        assert reply.result.sd == {} and reply.result.axes == {}
        assert measure_through(link, registered, 0.25).y_sd is None
    finally:
        agent.stop()
        link.close()


def test_a_1_0_agent_still_measures_against_the_1_2_controller(keyring, endpoint):
    from abduce.instruments.drivers.simulated import build

    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    old = AgentThread(
        Agent10(build("simulated:transition-1d", grid=101, seed=0), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.0"
        m = measure_through(link, registered, 0.5)
        assert np.isfinite(m.y) and m.y_sd is None
    finally:
        old.stop()
        link.close()


class CarelessDriver(UncertainDriver):
    """A reading whose uncertainty is not valid (a standard deviation below zero, as rounding can give)."""

    def measure(self, request: Measure) -> Reading:
        reading = super().measure(request)
        reading.sd = {"y": [-1e-12 for _ in request.points]}
        return reading


def test_invalid_sd_or_axes_cost_themselves_never_the_reading(keyring, endpoint):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    agent = AgentThread(InstrumentAgent(CarelessDriver(), link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        registered = link.wait_for_agent(15)
        m = measure_through(link, registered, 0.25)
        assert m.y == 0.25 and m.y_sd is None  # measured and sent; only the bad standard deviation left out
    finally:
        agent.stop()
        link.close()
