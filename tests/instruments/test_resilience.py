"""The link keeps serving through bad frames, controller restarts and agent kills."""

import signal
import subprocess
import sys
from pathlib import Path

import zmq

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.loop import run_campaign
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.intake.capabilities import space_of
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.keys import new_key
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import TAG, Measure, Ping
from tests.instruments.conftest import AgentThread, SlowDriver, ipc_endpoint, measured_ids

REPO = Path(__file__).resolve().parents[2]


def test_bad_frames_get_error_replies_or_drops_and_the_link_keeps_serving(endpoint, keyring):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    agent = AgentThread(InstrumentAgent(SlowDriver(), link.endpoint, Codec(keyring, "lab"), "sim"))
    rogue = zmq.Context.instance().socket(zmq.DEALER)
    rogue.connect(link.endpoint)
    try:
        link.wait_for_agent(15)
        sender = Codec(keyring, "lab")
        good = sender.encode(Measure(request_id="x", points=[[0.1]]))
        unsigned_type = [TAG, b"0" * 64, b"{}", b"{}", b"{}", b"{}"]
        rogue.send_multipart([b"garbage"])  # no tag: missing-frame (dropped: nothing before the signature)
        rogue.send_multipart(unsigned_type)  # header fails its model: malformed (dropped)
        rogue.send_multipart(good[:3] + [b"x" + good[3][1:]] + good[4:])  # tampered: dropped
        rogue.send_multipart(good)  # signed, but a controller never receives a measure: wrong-direction
        rogue.send_multipart(sender.encode(Ping()))  # signed, from a peer that never said hello: not-registered
        # The link reads one connection in order and answers in order, so once the last message's answer is
        # here every earlier answer is too: whatever came before it is all the bad frames got.
        replies = []
        while not replies or replies[-1].content.code != "not-registered":
            assert rogue.poll(60_000), f"no answer to the signed ping; answers so far {replies}"
            replies.append(Codec(keyring, "lab").decode(rogue.recv_multipart()))
        assert [r.content.code for r in replies] == ["wrong-direction", "not-registered"]
        result = link.measure(Measure(request_id="after", points=[[0.2]]), "sim", 5).result
        assert result.values == {"y": [0.2]}
        assert {e.code for e in link.errors} == {"missing-frame", "malformed", "bad-signature", "wrong-direction"}
    finally:
        rogue.close(linger=0)
        agent.stop()
        link.close()


def test_an_agent_re_registers_with_a_restarted_controller(keyring):
    endpoint = ipc_endpoint()  # the controller comes back at the same address: no port another process could take
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
    first = link.codec.session
    agent = AgentThread(InstrumentAgent(SlowDriver(), endpoint, Codec(keyring, "lab"), "sim"))
    try:
        link.wait_for_agent(15)
        link.close()
        link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2).start()
        assert link.codec.session != first
        link.wait_for_agent(15)  # the agent noticed the silence (3 heartbeats) and said hello again
        result = link.measure(Measure(request_id="again", points=[[0.3]]), "sim", 5).result
        assert result.values == {"y": [0.3]}
    finally:
        agent.stop()
        link.close()


def test_kill_9_and_restart_the_agent_mid_campaign_loses_and_doubles_nothing(endpoint, tmp_path):
    """Counted at both ends: the journal-free campaign's history, and the instrument's own log of what it
    measured (fsync'd by the driver before it answers, so it outlives each killed agent process)."""
    key = tmp_path / "lab.key"
    new_key(key, "lab")
    from abduce.instruments.keys import load_key

    key_id, secret = load_key(key)
    link = InstrumentLink(
        endpoint, Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.2, ack_timeout_s=0.5
    ).start()
    log, measured = tmp_path / "agent.log", tmp_path / "measured.txt"

    def spawn():
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "abduce.controller.cli",
                "instrument",
                "serve",
                "--driver",
                "tests.instruments.conftest:LoggedSimulator",
                "-o",
                f"log={measured}",
                "-o",
                "grid=101",
                "--connect",
                link.endpoint,
                "--key",
                str(key),
                "--id",
                "sim",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "a"),
            cwd=REPO,
        )

    agents = [spawn()]
    try:
        registered = link.wait_for_agent(60)
        campaign = Campaign(
            space_of(registered.capabilities),
            [BUILTIN["second-order"], BUILTIN["linear"]],
            "discriminate",
            None,
            Budget(12),
            seed=0,
            settings=CampaignSettings(n_init=4, fit=FitSettings(screen=64, maxiter=40), evidence_samples=128),
        )
        instrument = LinkInstrument(link, registered, timeout_s=120)
        kills = []

        def killer(record):
            if record.step in (3, 7):  # kill -9 right after these measurements, then restart
                agents[-1].send_signal(signal.SIGKILL)
                agents[-1].wait(10)
                kills.append(record.step)
                agents.append(spawn())

        run_campaign(campaign, instrument, [killer])
        ids = [r.request_id for r in campaign.history]
        assert campaign.n == 12 and len(set(ids)) == 12 and kills == [3, 7]
        assert sorted(measured_ids(measured)) == sorted(ids)  # the instrument measured each request once, no other
        assert link.agents["sim"].session != registered.session  # it really was a new process
    finally:
        for a in agents:
            a.kill()
            a.wait(10)
        link.close()
