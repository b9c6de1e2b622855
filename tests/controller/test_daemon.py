"""The daemon end to end (in-process, and as its own process for status during a fit): control lane,
pause/resume/stop, resume from the journal."""

import json
import subprocess
import sys
import threading
import traceback
from collections import Counter

import pytest

from abduce.controller.daemon import Daemon
from abduce.controller.drive.control import ControlError, request
from abduce.controller.journal.rundir import read_endpoints
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.settings import load_settings
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.keys import load_key, new_key
from abduce.instruments.protocol.codec import Codec, Keyring, unpack_frames
from tests.instruments.conftest import LOOPBACK, AgentThread, ipc_endpoint, wait_until

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


def configured(tmp_path, seed: int, budget: int, instrument: str = ""):
    """A daemon config in ``tmp_path`` with its key, the instrument lane at a fresh ``ipc://`` path (the daemon
    may restart there) and ``instrument`` lines added to ``[instrument]``; returns the config's path, that
    endpoint, the key's secret and a codec an agent signs with."""
    new_key(tmp_path / "lab.key", "lab")
    listen = ipc_endpoint()
    path = tmp_path / "daemon.toml"
    text = CONFIG.format(seed=seed, budget=budget, listen=listen, control=LOOPBACK)
    path.write_text(text.replace("wait_s = 30", f"wait_s = 30\n{instrument}") if instrument else text)
    key_id, secret = load_key(tmp_path / "lab.key")
    return path, listen, secret, Codec(Keyring({key_id: secret}), key_id)


@pytest.fixture
def setup(tmp_path):
    """A config whose daemon binds its control lane on a free port and its instrument lane at an ``ipc://``
    path (the test restarts the daemon, and the same agent must find the new one there), and that agent."""
    path, listen, secret, codec = configured(tmp_path, seed=3, budget=10)
    agent = AgentThread(InstrumentAgent(build("simulated:transition-1d", grid=101, seed=3), listen, codec, "sim"))
    yield path, secret
    agent.stop()


def start(path):
    d = Daemon(load_settings(path), path)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("status", d.run()), daemon=True)
    t.start()
    return d, t, box


def control_of(d: Daemon) -> str:
    """The control endpoint a daemon in this process bound (its status names it once bound)."""
    assert wait_until(lambda: "endpoints" in d._status, timeout=120)
    return d._status["endpoints"]["control"]


def parked(t: threading.Thread) -> bool:
    """The campaign thread is blocked in the pause's wait, where it can neither ask, measure nor fit."""
    frame = sys._current_frames().get(t.ident)
    stack = traceback.extract_stack(frame) if frame is not None else []
    ours = [f for f in stack if f.filename.endswith("daemon.py")]
    return (
        bool(ours)
        and ours[-1].name == "run"
        and "self._running.wait(" in (ours[-1].line or "")
        and stack[-1].filename.endswith("threading.py")
    )


def test_status_pause_resume_stop_and_resume_from_the_journal(setup):
    path, secret = setup
    d, t, box = start(path)
    try:
        control = control_of(d)
        assert wait_until(lambda: d._status["n"] >= 5, timeout=300)
        assert request(control, secret, "status")["status"]["campaign"] == "t"
        assert request(control, secret, "pause")["status"]["state"] == "pausing"
        assert wait_until(lambda: request(control, secret, "status")["status"]["state"] == "paused", timeout=300)
        assert wait_until(lambda: parked(t), timeout=300)  # nothing can be measured while it waits there
        n_paused = request(control, secret, "status")["status"]["n"]
        with Journal.open(path.parent / "run" / "journal.sqlite", readonly=True) as j:
            assert len(list(j.events("measurement"))) == n_paused and len(list(j.events("request"))) == n_paused
        assert parked(t) and request(control, secret, "status")["status"]["n"] == n_paused
        request(control, secret, "resume")
        assert wait_until(lambda: d._status["n"] > n_paused, timeout=300)
    finally:
        d.stop()
        t.join(300)
    assert box["status"]["state"] == "stopped" and box["status"]["n"] < 10, box
    # restart: the daemon replays its journal and finishes the campaign
    d2, t2, box2 = start(path)
    t2.join(600)  # a guard against a hang only
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
    path, secret = setup
    d, t, box = start(path)
    try:
        control = control_of(d)
        with pytest.raises(ControlError, match="bad signature"):
            request(control, b"x" * 32, "stop")
        assert request(control, secret, "list")["campaigns"][0]["campaign"] == "t"
    finally:
        d.stop()
        t.join(300)


def test_stop_while_waiting_for_an_instrument_exits_cleanly(tmp_path):
    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=5, listen=LOOPBACK, control=LOOPBACK))
    d, t, box = start(path)
    _, secret = load_key(tmp_path / "lab.key")
    control = control_of(d)
    assert wait_until(lambda: d._status["state"] == "waiting-for-instrument", timeout=120)
    assert request(control, secret, "status")["status"]["state"] == "waiting-for-instrument"
    assert read_endpoints(tmp_path / "run") == d._status["endpoints"]  # what `abduce status` reads for port 0
    request(control, secret, "stop")
    t.join(300)
    assert not t.is_alive() and box["status"]["state"] == "stopped"


def test_cli_status_without_a_daemon_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from abduce.controller.cli import app

    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=5, listen=LOOPBACK, control=ipc_endpoint()))  # nobody bound there
    result = CliRunner().invoke(app, ["status", "--config", str(path), "--timeout", "0.5"])
    assert result.exit_code == 2 and "no answer from a daemon" in result.output
    path.write_text(CONFIG.format(seed=3, budget=5, listen=LOOPBACK, control=LOOPBACK))  # a free port: none yet
    result = CliRunner().invoke(app, ["status", "--config", str(path)])
    assert result.exit_code == 2 and "endpoints.json does not exist" in result.output


def test_status_answers_while_a_fit_is_running(tmp_path):
    """``abduce status`` answers from a snapshot, never after the fit: three answers arrive while one and the
    same refit is provably running (each says the campaign thread is ``learning`` the 300th measurement, the
    tell that fits all four hypotheses for the first time; the loop sets the phase before the tell and clears
    it after). The daemon is its own process, as ``abduce status`` meets
    it (in one process the test's threads would compete with it for the GIL). Its latency, in milliseconds,
    is measured by tests/benchmarks/status_latency.py, not here."""
    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    text = CONFIG.format(seed=3, budget=310, listen=LOOPBACK, control=LOOPBACK).replace("n_init = 4", "n_init = 300")
    path.write_text(text.replace('["second-order", "linear"]', '["second-order", "first-order", "sigmoid", "linear"]'))
    key_id, secret = load_key(tmp_path / "lab.key")
    proc = subprocess.Popen(
        [sys.executable, "-m", "abduce.controller.cli", "daemon", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = None
    try:
        run = tmp_path / "run"
        assert wait_until(lambda: (run / "endpoints.json").exists() or proc.poll() is not None, timeout=300)
        endpoints = read_endpoints(run)
        agent = AgentThread(
            InstrumentAgent(
                build("simulated:transition-1d", grid=1001, seed=3),
                endpoints["instrument"],
                Codec(Keyring({key_id: secret}), key_id),
                "sim",
            )
        )
        during: Counter = Counter()  # answers seen during each refit, by the step it refits at

        def three_answers_during_one_refit() -> bool:
            status = request(endpoints["control"], secret, "status", timeout_s=60)["status"]
            assert status["state"] != "done" and proc.poll() is None, status
            if status.get("phase") == "learning" and status["n"] == 299:  # telling the 300th: the first fit, K = 4
                during[status["n"]] += 1
            return max(during.values(), default=0) >= 3

        assert wait_until(three_answers_during_one_refit, timeout=600), during  # the timeout guards against a hang
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if agent is not None:
            agent.stop()


def test_the_daemon_warns_once_when_none_of_these_becomes_the_most_probable(tmp_path, caplog):
    import logging
    from types import SimpleNamespace

    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=5, listen=LOOPBACK, control=LOOPBACK))
    d = Daemon(load_settings(path), path)
    z = {"linear": -900.0, "sigmoid": -800.0}  # every law underflowed at the second step: sigmoid is the better
    steps = [
        ({"linear": 0.7, "sigmoid": 0.0}, 0.3),
        ({"linear": 0.0, "sigmoid": 0.0}, 1.0),
        ({"linear": 0.1, "sigmoid": 0.0}, 0.9),
        ({"linear": 0.6, "sigmoid": 0.0}, 0.4),
    ]
    with caplog.at_level(logging.INFO, logger="abduce.daemon"):
        for i, (probs, none) in enumerate(steps):
            d._warn_if_nothing_explains(
                SimpleNamespace(step=i, probabilities=probs, log_evidence=z, none={"probability": none}, checks={})
            )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [  # the law the evidence favours, not the first of the zeros
        "after 2 measurements no hypothesis explains the data: none of these at p = 1.000, "
        "the best law sigmoid at 0.000"
    ]
    assert any("after 4 measurements a hypothesis explains the data" in r.getMessage() for r in caplog.records)


def test_the_daemon_warns_once_when_the_most_probable_law_fails_its_checks(tmp_path, caplog):
    import logging
    from types import SimpleNamespace

    new_key(tmp_path / "lab.key", "lab")
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(seed=3, budget=5, listen=LOOPBACK, control=LOOPBACK))
    d = Daemon(load_settings(path), path)
    bad = {
        "misfit": True,
        "reasons": ["noise sd 0.300 of the data scale is 5.0x the data's own (0.060, from neighbouring readings)"],
    }
    steps = [
        {"linear": {"misfit": False, "reasons": []}},
        {"linear": bad},
        {"linear": bad},
        {"linear": {"misfit": False, "reasons": []}},
        {"linear": bad},
    ]
    with caplog.at_level(logging.INFO, logger="abduce.daemon"):
        for i, checks in enumerate(steps):
            d._warn_if_nothing_explains(
                SimpleNamespace(
                    step=i, probabilities={"linear": 0.9}, log_evidence={}, none={"probability": 0.1}, checks=checks
                )
            )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "after 2 measurements the most probable law linear fails its checks: " + bad["reasons"][0],
        "after 5 measurements the most probable law linear fails its checks: " + bad["reasons"][0],
    ]


def test_the_operator_aborts_puts_in_the_safe_state_and_releases_the_instrument(tmp_path):
    """abduce abort / safe-state / release on the daemon's control lane reach the agent's control lane; the
    aborted request is skipped (never measured twice), the safe state pauses the campaign until release and
    resume, and every command and reply is journalled and shown by the inspection (and so the web page)."""
    from abduce.controller.journal.events import read
    from abduce.controller.views.inspection import inspect_journal

    path, listen, secret, codec = configured(tmp_path, seed=5, budget=7)
    driver = build("simulated:transition-1d", grid=101, seed=5, dwell_s=600.0)  # each point: ten minutes
    agent = AgentThread(InstrumentAgent(driver, listen, codec, "sim"))
    d, t, box = start(path)
    try:
        control = control_of(d)
        assert wait_until(lambda: d._status.get("phase") == "measuring", timeout=120)
        reply = request(control, secret, "abort", timeout_s=30)["reply"]
        assert reply["ok"] and reply["command"] == "abort"
        assert wait_until(lambda: d._status["phase"] == "measuring" and agent.agent.state.state == "measuring", 60)
        assert request(control, secret, "safe-state", timeout_s=30, reason="tip crash")["reply"]["ok"]
        assert wait_until(lambda: d._status["state"] == "paused", timeout=120)
        assert agent.agent.state.state == "safe" and d._status["instrument_state"] == "safe"
        from typer.testing import CliRunner

        from abduce.controller.cli import app

        released = CliRunner().invoke(app, ["release", "--config", str(path), "--reason", "tip replaced"])
        assert released.exit_code == 0 and "release: done" in released.output, released.output
        assert agent.agent.state.state == "idle" and d._status["instrument_state"] == "idle"
        driver.dwell_s, driver.blocking = 0.0, False  # the rest measures at once
        request(control, secret, "resume")
        t.join(600)  # a guard against a hang only
    finally:
        d.stop()
        t.join(60)
        agent.stop()
    assert box["status"]["state"] == "done" and box["status"]["n"] == 7, box
    with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as j:
        events = list(read(j))
        inspection = inspect_journal(j, events=events)
    aborted = [e for e in events if e.kind == "error" and e.body.reason == "aborted"]
    assert len(aborted) == 2 and all(e.body.skipped for e in aborted)  # the abort's, and the safe state's
    replies = [(e.body.command, e.body.by, e.body.ok) for e in events if e.kind == "reply"]
    assert replies == [("abort", "operator", True), ("safe-state", "operator", True), ("release", "operator", True)]
    measured = [e.request_id for e in events if e.kind == "measurement"]
    assert len(measured) == len(set(measured)) == 7 and not {e.request_id for e in aborted} & set(measured)
    # the 7 measured, and each stopped request at most once (the second may be stopped before the driver starts it)
    assert 7 + 1 <= agent.agent.measured <= 7 + 2
    assert inspection.stopping.instrument_state == "idle" and inspection.stopping.in_flight == []


def test_a_campaign_that_fails_puts_the_instrument_in_its_safe_state_when_asked(tmp_path):
    """[instrument] safe_state_on_error: the driver fails (an unrecoverable error for the campaign), the daemon
    sends the safe state by itself, journals it, says bye, and the error still reaches the caller."""
    from abduce.controller.journal.events import read
    from tests.instruments.conftest import SlowDriver

    class Broken(SlowDriver):
        def measure(self, request):
            raise RuntimeError("stage encoder lost")

    path, listen, _, codec = configured(tmp_path, seed=1, budget=5, instrument="safe_state_on_error = true")
    agent = AgentThread(InstrumentAgent(Broken(), listen, codec, "sim"))
    d = Daemon(load_settings(path), path)
    try:
        with pytest.raises(Exception, match="stage encoder lost"):
            d.run()
        assert agent.agent.state.state == "safe"
        assert wait_until(lambda: agent.agent.parted, timeout=30)  # and it was told the campaign ended
    finally:
        agent.stop()
    with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as j:
        replies = [e.body for e in read(j) if e.kind == "reply"]
    assert [(r.command, r.by, r.ok) for r in replies] == [("safe-state", "daemon", True)]
    assert replies[0].detail == "this driver has no safe-state action"  # the agent's own words, journalled


def test_a_measure_refused_busy_pauses_the_campaign_and_the_request_waits_for_release_and_resume(tmp_path):
    """The instrument is in its safe state (put there at its own panel, say) when the campaign asks: the
    measure is refused busy, the daemon pauses instead of failing, resume is refused until release, and then
    the very same request is measured, once."""
    from abduce.controller.journal.events import read

    path, listen, secret, codec = configured(tmp_path, seed=2, budget=5)
    instrument = InstrumentAgent(build("simulated:transition-1d", grid=101, seed=2), listen, codec, "sim")
    instrument.state.on("safe_state")  # safe before the campaign starts
    agent = AgentThread(instrument)

    def busy_events() -> list:
        with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as j:
            return [e for e in read(j, "error") if e.body.reason == "rejected:busy"]

    d, t, box = start(path)
    try:
        control = control_of(d)
        assert wait_until(lambda: d._status["state"] == "paused", timeout=120)
        request(control, secret, "resume")  # the controller never saw it go safe: it asks again, refused again
        assert wait_until(lambda: len(busy_events()) == 2 and d._status["state"] == "paused", timeout=120)
        assert request(control, secret, "safe-state", timeout_s=30)["reply"]["ok"]  # now the daemon knows it
        with pytest.raises(ControlError, match="release it first"):
            request(control, secret, "resume")
        assert request(control, secret, "release", timeout_s=30)["reply"]["ok"]
        request(control, secret, "resume")
        t.join(600)  # a guard against a hang only
    finally:
        d.stop()
        t.join(60)
        agent.stop()
    assert box["status"]["state"] == "done" and box["status"]["n"] == 5, box
    with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as j:
        events = list(read(j))
    busy = [e for e in events if e.kind == "error" and e.body.reason == "rejected:busy"]
    measured = [e.request_id for e in events if e.kind == "measurement"]
    assert len(busy) == 2 and {e.request_id for e in busy} == {measured[0]}  # refused twice, measured after release
    assert len(measured) == len(set(measured)) == 5 and instrument.measured == 5
