"""Protocol 1.3: ``measure.channels``, the channels to read.

Codec level: the field round-trips at 1.3, is left out when stamped 1.2 or older (and when empty, so a
message without it is byte for byte a 1.2 one but for the header), and is refused in an older-stamped message.
Over sockets: a 1.3 agent reads only the channel asked for and rejects an undeclared one; a controller that
agreed 1.2 never sends the field (the agent reads every channel), and refuses a campaign over channels."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from abduce.controller.core.measurements import MeasureRequest
from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.errors import ConfigError
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import SimulatedDriver
from abduce.instruments.protocol.codec import Codec, Keyring, ProtocolError
from abduce.instruments.protocol.models import FIELDS_SINCE, PROTOCOL_VERSION, SUPPORTED_VERSIONS, Measure
from abduce.simulators.channels import TwoChannel
from tests.instruments.conftest import AgentThread


def ring() -> Keyring:
    return Keyring({"lab": os.urandom(32)})


def test_1_3_adds_only_measure_channels():
    assert PROTOCOL_VERSION == "1.3" and SUPPORTED_VERSIONS == ("1.3", "1.2", "1.1", "1.0")
    assert FIELDS_SINCE["measure"] == {"channels": "1.3"} and not Measure.model_fields["channels"].is_required()


def test_channels_round_trip_at_1_3_and_are_left_out_when_older_or_empty():
    keys = ring()
    asked = Measure(request_id="r", points=[[0.5]], channels=["image"])
    frames = Codec(keys, "lab").encode(asked)
    assert json.loads(frames[5])["channels"] == ["image"]
    assert Codec(keys, "lab").decode(frames).content == asked
    for version in ("1.2", "1.1", "1.0"):
        old = Codec(keys, "lab").encode(asked, version=version)
        assert "channels" not in json.loads(old[5])
    plain = Codec(keys, "lab").encode(Measure(request_id="r", points=[[0.5]]))
    assert "channels" not in json.loads(plain[5])


def test_a_1_2_message_that_carries_channels_is_invalid_content():
    keys = ring()
    frames = Codec(keys, "lab").encode(Measure(request_id="r", points=[[0.5]]), version="1.2")
    content = json.loads(frames[5])
    content["channels"] = ["image"]
    parts = [frames[2], frames[3], frames[4], json.dumps(content).encode()]
    with pytest.raises(ProtocolError) as err:
        Codec(keys, "lab").decode([frames[0], keys.sign("lab", parts), *parts])
    assert err.value.code == "invalid-content" and "new in 1.3" in err.value.message


def request(x: float, channel: int) -> MeasureRequest:
    return MeasureRequest(request_id=f"m-{x}-{channel}", step=0, x=(x, float(channel)), hypothesis=None, reason="t")


def test_a_campaign_over_channels_reads_the_channel_it_asks_for(keyring, endpoint):
    sim = TwoChannel(grid=11, seed=1, noise_per_point=True)
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    agent = AgentThread(InstrumentAgent(SimulatedDriver(sim), link.endpoint, Codec(keyring, "lab"), "sim"))
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.3"
        instrument = LinkInstrument(link, registered, timeout_s=15, channels=("y", "image"))
        cheap, costly = instrument(request(0.5, 1)), instrument(request(0.5, 0))
        assert cheap.x == (0.5, 1.0) and costly.x == (0.5, 0.0)  # the channel coordinate put back
        assert cheap.y == sim.measure_channel(np.array([[0.5]]), "image")[0] and cheap.y_sd == sim.reading_sd("image")
        assert costly.y == sim.measure_channel(np.array([[0.5]]), "y")[0] and costly.y_sd is None
        reply = link.measure(Measure(request_id="direct", points=[[0.2]], channels=["image"]), "sim", 15)
        assert set(reply.result.values) == {"image"}  # the instrument read only what was asked
    finally:
        agent.stop()
        link.close()


def test_a_controller_that_agreed_1_2_sends_no_channels_and_refuses_a_campaign_over_channels(keyring, endpoint):
    link = InstrumentLink(endpoint, Codec(keyring, "lab", versions=("1.2", "1.1", "1.0")), heartbeat_s=0.2).start()
    agent = AgentThread(
        InstrumentAgent(SimulatedDriver(TwoChannel(grid=11, seed=1)), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.2"
        reply = link.measure(Measure(request_id="direct", points=[[0.2]], channels=["image"]), "sim", 15)
        assert set(reply.result.values) == {"y", "image"}  # the field never left: the agent read every channel
        with pytest.raises(ConfigError, match="speaks protocol 1.2: a campaign over several channels needs 1.3"):
            LinkInstrument(link, registered, timeout_s=15, channels=("y", "image"))
        assert LinkInstrument(link, registered, timeout_s=15).channels is None  # one channel: as ever
    finally:
        agent.stop()
        link.close()


def test_an_undeclared_channel_is_refused_before_any_reading(keyring, endpoint):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    agent = AgentThread(
        InstrumentAgent(SimulatedDriver(TwoChannel(grid=11, seed=1)), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        with pytest.raises(ConfigError, match="no channel 'spectrum'"):
            LinkInstrument(link, registered, timeout_s=15, channels=("y", "spectrum"))
        with pytest.raises(LinkError, match="no channel 'spectrum'"):  # a hand-built request: the agent's check
            link.measure(Measure(request_id="x", points=[[0.5]], channels=["spectrum"]), "sim", 15)
    finally:
        agent.stop()
        link.close()
