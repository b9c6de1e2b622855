"""The daemon end to end (in-process, and as its own process for the status latency): control lane,
pause/resume/stop, resume from the journal."""

import json
import subprocess
import sys
import threading
import time

import pytest

from abduce.controller.control import ControlError, request
from abduce.controller.daemon import Daemon
from abduce.controller.journal import Journal
from abduce.controller.settings import load_settings
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.keys import load_key, new_key
from abduce.instruments.protocol.codec import Codec, Keyring, unpack_frames
from tests.instruments.conftest import AgentThread, free_endpoint, wait_until

CONFIG = """
[campaign]
name = "t"
hypotheses = ["second-order", "linear"]
policy = "discriminate"
budget = {budget}
seed = {seed}
n_init = 4

[instrument]
listen = "{listen}"
key = "lab.key"
wait_s = 30

[daemon]
run_dir = "run"
control = "{control}"
"""


@pytest.fixture
def setup(tmp_path):
    new_key(tmp_path / "lab.key", "lab")
    listen, control = free_endpoint(), free_endpoint()
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=10, listen=listen, control=control))
    key_id, secret = load_key(tmp_path / "lab.key")
    agent = AgentThread(InstrumentAgent(build("simulated:transition-1d", grid=101, seed=3), listen,
                                        Codec(Keyring({key_id: secret}), key_id), "sim"))
    yield path, control, secret
    agent.stop()


def start(path):
    d = Daemon(load_settings(path), path)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("status", d.run()), daemon=True)
    t.start()
    return d, t, box


def test_status_pause_resume_stop_and_resume_from_the_journal(setup):
    path, control, secret = setup
    d, t, box = start(path)
    try:
        assert wait_until(lambda: d._status["n"] >= 5, timeout=60)
        t0 = time.monotonic()
        reply = request(control, secret, "status")
        assert time.monotonic() - t0 < 0.5 and reply["status"]["campaign"] == "t"
        assert request(control, secret, "pause")["status"]["state"] == "pausing"
        assert wait_until(lambda: request(control, secret, "status")["status"]["state"] == "paused", timeout=30)
        n_paused = request(control, secret, "status")["status"]["n"]
        time.sleep(1.0)
        assert request(control, secret, "status")["status"]["n"] == n_paused  # nothing measured while paused
        request(control, secret, "resume")
        assert wait_until(lambda: d._status["n"] > n_paused, timeout=30)
    finally:
        d.stop()
        t.join(30)
    assert box["status"]["state"] == "stopped" and box["status"]["n"] < 10, box
    # restart: the daemon replays its journal and finishes the campaign
    d2, t2, box2 = start(path)
    t2.join(120)
    if t2.is_alive():
        d2.stop()
        t2.join(30)
    assert box2["status"]["state"] == "done" and box2["status"]["n"] == 10
    run = path.parent / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["measurements"] == 10
    with Journal.open(run / "journal.sqlite", readonly=True) as j:
        events = list(j.events("measurement"))
    ids = [e.request_id for e in events]
    assert len(ids) == 10 and len(set(ids)) == 10
    # each measurement carries the raw reply as received and the key that signed it; the frames verify
    key_id, _ = load_key(path.parent / "lab.key")
    codec = Codec(Keyring({key_id: secret}), key_id)
    for e in events:
        assert e.key_id == key_id
        msg = codec.decode(unpack_frames(e.blob))
        assert msg.msg_type == "result" and msg.content.request_id == e.request_id
        assert msg.content.values["y"][0] == pytest.approx(e.body["y"])


def test_control_requests_need_the_key(setup):
    path, control, secret = setup
    d, t, box = start(path)
    try:
        assert wait_until(lambda: d._status["state"] in ("running", "waiting-for-instrument"), timeout=30)
        with pytest.raises(ControlError, match="bad signature"):
            request(control, b"x" * 32, "stop")
        assert request(control, secret, "list")["campaigns"][0]["campaign"] == "t"
    finally:
        d.stop()
        t.join(60)


def test_stop_while_waiting_for_an_instrument_exits_cleanly(tmp_path):
    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    control = free_endpoint()
    path.write_text(CONFIG.format(seed=3, budget=5, listen=free_endpoint(), control=control))
    d, t, box = start(path)
    _, secret = load_key(tmp_path / "lab.key")
    assert wait_until(lambda: d._status["state"] == "waiting-for-instrument", timeout=30)
    assert request(control, secret, "status")["status"]["state"] == "waiting-for-instrument"
    request(control, secret, "stop")
    t.join(10)
    assert not t.is_alive() and box["status"]["state"] == "stopped"


def test_cli_status_without_a_daemon_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from abduce.controller.cli import app

    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=5, listen=free_endpoint(), control=free_endpoint()))
    result = CliRunner().invoke(app, ["status", "--config", str(path), "--timeout", "0.5"])
    assert result.exit_code == 2 and "no answer from a daemon" in result.output


def test_status_answers_within_100_ms_while_a_fit_takes_seconds(tmp_path):
    """``abduce status`` and the daemon are separate processes, so the daemon runs as one here.

    In one process with the agent and the client, the test's own threads would compete with the daemon
    for the GIL, which measures the test and not the daemon (it failed on a loaded CI machine that way).
    """
    new_key(tmp_path / "lab.key", "lab")
    listen, control = free_endpoint(), free_endpoint()
    path = tmp_path / "daemon.toml"
    text = CONFIG.format(seed=3, budget=302, listen=listen, control=control).replace("n_init = 4", "n_init = 300")
    path.write_text(text.replace('["second-order", "linear"]', '["second-order", "first-order", "sigmoid", "linear"]'))
    key_id, secret = load_key(tmp_path / "lab.key")
    agent = AgentThread(InstrumentAgent(build("simulated:transition-1d", grid=1001, seed=3), listen,
                                        Codec(Keyring({key_id: secret}), key_id), "sim"))
    proc = subprocess.Popen([sys.executable, "-m", "abduce.controller.cli", "daemon", str(path)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def n() -> int:
        try:
            return request(control, secret, "status", timeout_s=1.0)["status"]["n"]
        except ControlError:
            return -1

    try:
        assert wait_until(lambda: n() >= 299, timeout=180)
        latencies, fit_started = [], time.monotonic()
        while time.monotonic() - fit_started < 120:
            t0 = time.monotonic()
            status = request(control, secret, "status")["status"]
            latencies.append(time.monotonic() - t0)
            if status["n"] >= 301:
                break
            time.sleep(0.02)
        fit_seconds = time.monotonic() - fit_started
        assert fit_seconds > 1.0, "the fit was too quick to test anything"
        assert max(latencies) < 0.1, (max(latencies), len(latencies))
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        agent.stop()
