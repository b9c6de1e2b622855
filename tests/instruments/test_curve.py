"""CURVE encryption with per-identity keys through ZAP: only allowed agents get in."""

import shutil

import pytest
import zmq.auth

from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.keys import new_key
from abduce.instruments.protocol.codec import Codec
from abduce.instruments.protocol.models import Measure
from tests.instruments.conftest import AgentThread, SlowDriver


@pytest.fixture
def certs(tmp_path):
    new_key(tmp_path / "controller.key", "controller", curve=True)
    new_key(tmp_path / "agent.key", "agent", curve=True)
    new_key(tmp_path / "stranger.key", "stranger", curve=True)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(tmp_path / "agent.key.curve.key", allowed)
    load = lambda name: zmq.auth.load_certificate(str(tmp_path / f"{name}.key.curve.key_secret"))
    return {"controller": load("controller"), "agent": load("agent"), "stranger": load("stranger"), "allowed": allowed}


def serve(endpoint, keyring, certs, who):
    server_public, server_secret = certs["controller"]
    link = InstrumentLink(
        endpoint,
        Codec(keyring, "lab"),
        heartbeat_s=0.2,
        curve=(server_public, server_secret),
        curve_clients=str(certs["allowed"]),
    ).start()
    public, secret = certs[who]
    agent = AgentThread(
        InstrumentAgent(
            SlowDriver(), link.endpoint, Codec(keyring, "lab"), "sim", curve=(server_public, public, secret)
        )
    )
    return link, agent


def test_an_allowed_curve_identity_registers_and_measures(endpoint, keyring, certs):
    link, agent = serve(endpoint, keyring, certs, "agent")
    try:
        link.wait_for_agent(15)
        result = link.measure(Measure(request_id="r", points=[[0.4]]), "sim", 5).result
        assert result.values == {"y": [0.4]}
    finally:
        agent.stop()
        link.close()


def test_a_curve_identity_not_allowed_cannot_register_even_with_the_signing_key(endpoint, keyring, certs):
    link, agent = serve(endpoint, keyring, certs, "stranger")
    try:
        with pytest.raises(LinkError, match="no instrument agent"):
            link.wait_for_agent(1.5)
        assert link.agents == {}
    finally:
        agent.stop()  # its hello finds no peer (the handshake refused it), and must not hang it
        link.close()
    assert not agent.thread.is_alive()
