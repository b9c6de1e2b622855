"""Protocol 1.1 over real sockets: a campaign that says goodbye, a 1.0 agent that still completes a campaign,
no answer to strangers however many, and an audit that misses nothing and stays within its bound."""

import json
import os

import numpy as np
import zmq

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.audit import AuditLog
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.loop import run_campaign
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.intake.capabilities import space_of
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import TAG, Measure, Ping
from tests.fixtures.agent_1_0 import InstrumentAgent as Agent10
from tests.instruments.conftest import AgentThread, SlowDriver, ipc_endpoint, wait_until


def campaign_over(link: InstrumentLink, agent) -> Campaign:
    space: Space = space_of(agent.capabilities)
    c = Campaign(
        space,
        [BUILTIN["second-order"], BUILTIN["linear"]],
        "discriminate",
        None,
        Budget(8),
        seed=0,
        settings=CampaignSettings(n_init=4, fit=FitSettings(screen=32, maxiter=30), evidence_samples=64),
    )
    return run_campaign(c, LinkInstrument(link, agent))


def test_after_bye_the_agent_sends_nothing_until_a_new_controller_session(keyring):
    endpoint = ipc_endpoint()  # the next controller binds the same address
    sent: list[dict] = []
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.1, audit=sent.append).start()
    agent = AgentThread(InstrumentAgent(SlowDriver(), endpoint, Codec(keyring, "lab"), "sim"))
    second = None
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.3"
        assert wait_until(lambda: registered.control_identity is not None)  # control-lane pings flow
        assert link.bye("done", "budget spent") == 1
        assert wait_until(lambda: agent.agent.parted)
        sent_before = agent.agent.sent  # parted is set by the agent's own I/O thread before it would send again
        # ten of the agent's heartbeat periods: not a hello, not a ping, not a pong on either lane
        assert not wait_until(lambda: agent.agent.sent > sent_before, timeout=1.0)
        assert link.agents == {}  # and the controller stopped pinging it
        link.close()
        second = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.1).start()
        assert second.wait_for_agent(15).session == agent.agent.codec.session  # the same agent, registered again
        assert second.measure(Measure(request_id="again", points=[[0.4]]), "sim", 10).result.values == {"y": [0.4]}
    finally:
        agent.stop()
        link.close()
        if second is not None:
            second.close()


def test_a_1_0_agent_completes_a_campaign_against_a_1_1_controller(endpoint, keyring):
    lines: list[dict] = []
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, audit=lines.append).start()
    old = AgentThread(
        Agent10(build("simulated:transition-1d", grid=101, seed=0), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        assert registered.version == "1.0"  # negotiated down: nothing of 1.1 is sent to it
        campaign = campaign_over(link, registered)
        assert campaign.done and campaign.n == 8 and old.agent.measured == 8
        assert link.bye("done") == 0  # a 1.0 agent is not told: it knows no bye
        sent = {line["msg_type"] for line in lines if line["dir"] == "out"}
        assert sent and not sent & {"bye", "release"}  # nothing of 1.1 reached it
    finally:
        old.stop()
        link.close()


def flood(keyring: Keyring, valid: list[bytes]) -> list[list[bytes]]:
    """10,000 frame lists no key vouches for: each check 1-6 of SPEC section 5 failed many times over."""
    stranger = Codec(Keyring({"intruder": os.urandom(32)}), "intruder")
    forged = Codec(Keyring({"lab": os.urandom(32)}), "lab")  # the right key id, the wrong secret
    at = valid.index(TAG)
    rng = np.random.default_rng(7)
    out = []
    for i in range(10_000):
        kind = i % 8
        if kind == 0:
            frames = [rng.bytes(int(rng.integers(0, 40)))]  # no tag
        elif kind == 1:
            frames = [TAG, *valid[at + 1 : at + 1 + int(rng.integers(0, 5))]]  # too few frames
        elif kind == 2:
            frames = [TAG, b"0" * 64, b"x" * ((1 << 20) + 1), b"{}", b"{}", b"{}"]  # past the JSON limit
        elif kind == 3:
            frames = [TAG, b"0" * 64, rng.bytes(30), b"{}", b"{}", b"{}"]  # a header that is no header
        elif kind == 4:
            frames = stranger.encode(Ping())  # a key nobody holds
        elif kind == 5:
            frames = forged.encode(Measure(request_id=f"f{i}", points=[[0.1]]))  # a forged signature
        elif kind == 6:
            frames = list(valid)  # a replay of a message already heard
        else:
            frames = list(valid)
            frames[at + 1] = bytes(rng.integers(48, 58, 64, dtype=np.uint8))  # a random signature
        out.append(frames)
    return out


def test_ten_thousand_unauthenticated_frames_get_no_answer_and_a_keyed_agent_is_served(endpoint, keyring, tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, audit=audit).start()
    agent = AgentThread(InstrumentAgent(SlowDriver(), link.endpoint, Codec(keyring, "lab"), "sim"))
    rogue = zmq.Context.instance().socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(link.endpoint)
    try:
        link.wait_for_agent(15)
        valid = Codec(keyring, "lab").encode(Ping())
        rogue.send_multipart(valid)  # heard once (answered not-registered), then replayed by the flood
        assert rogue.poll(30_000)
        rogue.recv_multipart()
        for frames in flood(keyring, valid):
            rogue.send_multipart(frames)
        assert link.measure(Measure(request_id="during", points=[[0.3]]), "sim", 30).result.values == {"y": [0.3]}
        assert wait_until(lambda: link.refused >= 10_000, timeout=120)
        assert link.refused == 10_000 and not rogue.poll(200)  # nothing ever came back
        assert link.measure(Measure(request_id="after", points=[[0.6]]), "sim", 30).result.values == {"y": [0.6]}
    finally:
        rogue.close()
        agent.stop()
        link.close()
        audit.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    dropped = [line for line in lines if line["outcome"].startswith("dropped")]
    assert len(dropped) == 10_000 and not any(line["verified"] for line in dropped)
    codes = {line["outcome"].split()[1] for line in dropped}
    assert codes == {"missing-frame", "too-large", "malformed", "unknown-key", "bad-signature", "replayed"}
    assert {line["key_id"] for line in dropped if line["outcome"] == "dropped unknown-key"} == {"intruder"}
    assert all(line["lane"] == "instrument" and line["peer"] and line["size"] > 0 for line in dropped)
    assert {"hello", "welcome", "measure", "result", "result_ack", "ping", "pong"} <= {
        line["msg_type"] for line in lines if line["outcome"] in ("delivered", "sent")
    }


def test_the_audit_never_grows_past_its_bound(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl", max_bytes=64 << 10, backups=2)
    line = {"dir": "in", "lane": "instrument", "peer": "00ab", "key_id": None, "verified": False, "msg_type": None}
    for i in range(20_000):
        audit({**line, "request_id": None, "size": i, "outcome": "dropped missing-frame"})
    audit.close()
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert sum(f.stat().st_size for f in files) <= 3 * (64 << 10)
    last = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert last["size"] == 19_999  # the newest line is kept, the oldest rotated away
