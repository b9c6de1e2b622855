"""The reference controller against an agent written from SPEC.md alone (tests/independent_agent.py).

That agent imports nothing of abduce (checked here), so when the protocol's implementation and its text
part ways, a campaign through it fails: these tests are the spec's own conformance check.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import independent_agent as ia

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "instruments" / "protocol" / "SPEC.md"
CLI = [sys.executable, "-m", "abduce.controller.cli"]
BUDGET = 12


def wait_until(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (a guard against a hang, not a measure)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def new_key(tmp_path: Path) -> Path:
    key = tmp_path / "lab.key"
    made = subprocess.run([*CLI, "keys", "new", str(key)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    return key


@contextlib.contextmanager
def agent_thread(endpoint: str, key: Path, **options):
    """An independent agent serving on a thread of this process (so a test can read what it sent)."""
    agent = ia.Agent(endpoint, *ia.load_key(str(key)), **options)
    thread = threading.Thread(target=agent.serve, daemon=True, name="independent-agent")
    thread.start()
    try:
        yield agent
    finally:
        agent.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the independent agent did not stop"


@contextlib.contextmanager
def campaign(tmp_path: Path, versions, dwell: float = 0.0):
    """``abduce run --listen`` (a subprocess, on free loopback ports) with an independent agent connected to it.

    Yields ``(controller, agent, out)``; the controller is killed and the agent stopped on the way out.
    """
    key, out = new_key(tmp_path), tmp_path / "run"
    controller = subprocess.Popen(
        [*CLI, "run", "--out", str(out), "--listen", "tcp://127.0.0.1:0", "--key", str(key)]
        + ["--budget", str(BUDGET), "--seed", "3", "--quiet", "--hypotheses", "second-order,linear", "--wait", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    try:
        assert wait_until(lambda: (out / "endpoints.json").exists() or controller.poll() is not None, timeout=300)
        assert controller.poll() is None, controller.communicate()[0]
        endpoint = json.loads((out / "endpoints.json").read_text())["instrument"]
        with agent_thread(endpoint, key, versions=versions, dwell=dwell, seed=3) as agent:
            yield controller, agent, out
    finally:
        controller.kill()
        controller.wait(timeout=60)
        controller.stdout.close()


def finish(controller: subprocess.Popen) -> str:
    output, _ = controller.communicate(timeout=600)  # a guard against a hang only
    assert controller.returncode == 0, output
    return output


def test_the_agent_needs_nothing_of_abduce():
    code = (
        "import sys; sys.modules['abduce'] = None; sys.path.insert(0, 'tests'); import independent_agent; "
        "print(sorted(m for m, v in sys.modules.items() if v and m.split('.')[0] in ('abduce', 'tests', 'pydantic')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    usage = subprocess.run([sys.executable, "tests/independent_agent.py", "--help"], cwd=ROOT, capture_output=True)
    assert usage.returncode == 0 and b"--connect" in usage.stdout


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_agent_refuses_a_key_file_others_can_read(tmp_path):
    key = new_key(tmp_path)
    assert ia.load_key(str(key))[0] == "lab"
    key.chmod(0o644)
    proc = subprocess.run(
        [sys.executable, "tests/independent_agent.py", "--connect", "tcp://127.0.0.1:9", "--key", str(key)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "chmod 600" in proc.stderr and str(key) in proc.stderr


def test_the_spec_test_vector_is_reproduced():
    """SPEC section 3, copied here; the copy must still be what SPEC.md says."""
    frames = [
        b'{"msg_id":"8f0c5d6e2b7a4c1e9d3f5a7b1c2e4f60","msg_type":"result","version":"1.0",'
        b'"session":"3b6f0e2a9c1d4e5f8a7b6c5d4e3f2a1b","seq":7,"date":"2025-01-02T03:04:05.678901+00:00",'
        b'"key_id":"example"}',
        b'{"msg_id":"c0ffee00c0ffee00c0ffee00c0ffee00","msg_type":"measure","version":"1.0",'
        b'"session":"a1b2c3d4e5f60718293a4b5c6d7e8f90","seq":12,"date":"2025-01-02T03:04:04.000000+00:00",'
        b'"key_id":"lab-controller"}',
        b'{"operator":"ab"}',
        b'{"request_id":"r-0001","status":"ok","points":[[0.25]],"values":{"y":[0.5]},'
        b'"arrays":[{"channel":"spectrum","buffer":0,"dtype":"<f8","shape":[2]}],'
        b'"started":"2025-01-02T03:04:04.100000+00:00","finished":"2025-01-02T03:04:05.600000+00:00",'
        b'"state":{},"error":""}',
        bytes.fromhex("000000000000f03f0000000000000040"),
    ]
    signature = b"18786f448fb681eec2639d15adbcd765ffedaf76213c1facfe7d705b3e4b5d29"
    assert len(frames[0]) == 195  # "the HMAC input starts 00000000000000c3"
    assert ia.sign(bytes(range(32)), frames) == signature
    spec = SPEC.read_text(encoding="utf-8")
    assert f"frame 1   = {signature.decode()}" in spec
    for i, frame in enumerate(frames[:4], start=2):
        assert f"frame {i}   = {frame.decode()}\n" in spec
    # upper-case hex does not match: the agent drops it, unanswered (it has no socket to answer on here)
    agent = ia.Agent("tcp://127.0.0.1:9", "example", bytes(range(32)))
    assert agent.decode("instrument", [ia.TAG, signature.upper(), *frames]) is None
    assert agent.problems == ["dropped [bad-signature] result"]


@pytest.mark.parametrize(
    "versions, dwell", [(("1.1", "1.0"), 0.02), (("1.0",), 0.0)], ids=["agent-1.1-ack-then-result", "agent-1.0"]
)
def test_a_campaign_runs_through_the_independent_agent(tmp_path, versions, dwell):
    with campaign(tmp_path, versions, dwell) as (controller, agent, out):
        finish(controller)
        assert (out / "journal.sqlite").exists()
        lines = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
        assert len(lines) == BUDGET and json.loads((out / "summary.json").read_text())["measurements"] == BUDGET
        assert sorted(agent.measured) == sorted({m["request_id"] for m in lines})  # each measured once, no more
        assert [w["version"] for w in agent.welcomes] == [versions[0]]  # the highest common version
        sent = [m for m in agent.sent if m["msg_type"] != "hello"]
        assert {m["header"]["version"] for m in sent} == {versions[0]}  # stamped welcome.version once welcomed
        assert {m["header"]["version"] for m in agent.sent if m["msg_type"] == "hello"} == {"1.0"}
        results = [m for m in agent.sent if m["msg_type"] == "result"]
        assert len(results) >= BUDGET and {m["parent"]["msg_type"] for m in results} == {"measure"}
        assert {m["lane"] for m in agent.sent if m["msg_type"] != "ping"} == {"instrument"}
        assert {m["msg_type"] for m in agent.sent if m["lane"] == "control"} == {"ping"}
        if dwell > 0:
            assert sum(m["msg_type"] == "ack" for m in agent.sent) >= BUDGET
        if versions == ("1.0",):  # a 1.0 agent is never sent a 1.1 message
            assert not agent.byes and not {"bye", "release"} & {m["msg_type"] for m in agent.received}
        # nothing the controller sent failed the spec's checks, and it reported nothing wrong with the agent
        assert [p for p in agent.problems if "after bye" not in p] == []


def test_when_the_campaign_is_done_a_1_1_agent_hears_bye_and_goes_silent(tmp_path):
    with campaign(tmp_path, ("1.1", "1.0")) as (controller, agent, out):
        finish(controller)
        assert wait_until(lambda: agent.byes, timeout=30), "the controller sent no bye"
        assert [b["reason"] for b in agent.byes] == ["done"]
        # four heartbeats at which a 1.0 agent would have said hello (after 3 silent ones at the latest)
        assert wait_until(lambda: agent.withheld >= 4, timeout=120)
        assert agent.sent[agent.sent_before_bye :] == []


def test_after_bye_the_agent_waits_for_a_new_connection_then_says_hello(tmp_path):
    """The reference link's bye, in this process; then a controller on the same address again."""
    from abduce.controller.drive.link import InstrumentLink, LinkError
    from abduce.instruments.protocol.codec import Codec, Keyring

    key = new_key(tmp_path)
    key_id, secret = ia.load_key(str(key))
    link = InstrumentLink("tcp://127.0.0.1:0", Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.5).start()
    endpoint = link.endpoint
    with agent_thread(endpoint, key) as agent:
        try:
            link.wait_for_agent(timeout_s=120)
            assert link.bye("stopped", "operator") == 1
        finally:
            link.close()
        assert wait_until(lambda: agent.byes, timeout=60)
        assert agent.byes == [{"reason": "stopped", "detail": "operator"}]
        assert wait_until(lambda: agent.withheld >= 4, timeout=120)
        assert agent.sent[agent.sent_before_bye :] == []
        again = InstrumentLink(endpoint, Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.5)
        try:
            again.start()
        except LinkError as exc:  # another process took the port meanwhile
            pytest.skip(f"cannot bind {endpoint} again: {exc}")
        try:
            assert again.wait_for_agent(timeout_s=120).instrument_id == agent.instrument_id
            assert wait_until(lambda: len(agent.welcomes) == 2, timeout=60)
            assert agent.sent[agent.sent_before_bye]["msg_type"] == "hello"
        finally:
            again.close()


def test_the_control_lane_abort_safe_state_and_release(tmp_path):
    """Through the reference link in this process: abort a measurement, safe state refuses measure, release."""
    from abduce.controller.drive.link import InstrumentLink, LinkError
    from abduce.instruments.protocol.codec import Codec, Keyring
    from abduce.instruments.protocol.models import Measure

    key = new_key(tmp_path)
    key_id, secret = ia.load_key(str(key))
    with InstrumentLink("tcp://127.0.0.1:0", Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.5) as link:
        with agent_thread(link.endpoint, key, dwell=600.0) as agent:
            name = link.wait_for_agent(timeout_s=120).instrument_id
            assert wait_until(lambda: link.agents[name].control_identity is not None, timeout=60)
            outcome: list = []

            def measure(rid: str, x: float = 0.5) -> None:
                try:
                    outcome.append(link.measure(Measure(request_id=rid, points=[[x]]), name, timeout_s=120))
                except LinkError as exc:
                    outcome.append(exc)

            worker = threading.Thread(target=measure, args=("r-long",))
            worker.start()
            assert wait_until(lambda: agent.state == "measuring", timeout=60)
            reply = link.abort(name, "r-long", timeout_s=60)
            assert reply.aborted and reply.request_id == "r-long"
            worker.join(timeout=120)
            assert isinstance(outcome[-1], LinkError)
            aborted = [m for m in agent.sent if m["msg_type"] == "result"]
            assert [(m["content"]["status"], m["content"]["points"], m["parent"]["msg_type"]) for m in aborted] == [
                ("aborted", [], "measure")
            ]
            assert agent.measured == [] and agent.state == "idle"

            assert link.safe_state(name, "test", timeout_s=60).ok and agent.state == "safe"
            agent.dwell = 0.0
            measure("r-refused")
            assert isinstance(outcome[-1], LinkError) and outcome[-1].code == "rejected:busy"
            refusal = [m["content"] for m in agent.sent if m["msg_type"] == "reject"]
            assert refusal[-1]["code"] == "busy" and "safe state" in refusal[-1]["reason"]
            measure("r-outside", 2.0)  # the limit checks answer before the state is consulted
            assert isinstance(outcome[-1], LinkError) and outcome[-1].code == "rejected:out-of-limits"

            assert link.release(name, "test over", timeout_s=60).ok and agent.state == "idle"
            measure("r-ok")
            assert outcome[-1].result.status == "ok" and agent.measured == ["r-ok"]
            control = {m["msg_type"] for m in agent.sent if m["lane"] == "control"}
            assert control == {"ping", "abort_reply", "safe_state_reply", "release_reply"}
            assert agent.problems == []


def test_a_request_id_that_is_not_one_is_answered_and_the_controller_keeps_serving(tmp_path):
    import zmq

    from abduce.controller.drive.link import InstrumentLink
    from abduce.instruments.protocol.codec import Codec, Keyring

    key_id, secret = ia.load_key(str(new_key(tmp_path)))
    sender = ia.Agent("tcp://127.0.0.1:9", key_id, secret)  # signs and checks; its sockets are not used
    with InstrumentLink("tcp://127.0.0.1:0", Codec(Keyring({key_id: secret}), key_id)) as link:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(link.endpoint)
        try:
            for request_id in ("", "x" * 129):
                sock.send_multipart(sender.encode("ack", {"request_id": request_id}))
                assert sock.poll(30_000), "no answer to invalid content"
                reply = sender.decode("instrument", sock.recv_multipart())
                assert reply["content"]["code"] == "invalid-content" and reply["content"]["request_id"] is None
            sock.send_multipart(sender.encode("hello", sender.hello()))
            assert sock.poll(30_000), "the controller stopped serving"
            assert sender.decode("instrument", sock.recv_multipart())["header"]["msg_type"] == "welcome"
        finally:
            sock.close(linger=0)
            ctx.term()


def test_the_controller_speaks_the_welcomed_version_to_a_1_0_agent(tmp_path):
    from abduce.controller.drive.link import InstrumentLink
    from abduce.instruments.protocol.codec import Codec, Keyring

    key = new_key(tmp_path)
    key_id, secret = ia.load_key(str(key))
    with InstrumentLink("tcp://127.0.0.1:0", Codec(Keyring({key_id: secret}), key_id), heartbeat_s=0.2) as link:
        with agent_thread(link.endpoint, key, versions=("1.0",)) as agent:
            link.wait_for_agent(timeout_s=120)
            assert wait_until(lambda: {"ping", "pong"} <= {m["msg_type"] for m in agent.received}, timeout=60)
            assert [w["version"] for w in agent.welcomes] == ["1.0"]
            after_welcome = [m for m in agent.received if m["msg_type"] != "welcome"]
            assert {m["header"]["version"] for m in after_welcome} == {"1.0"}
