"""``abduce accept RUN NAME`` against a running daemon (``[campaign] propose = "suggest"``) and a simulated
two-transition sample served by an instrument agent: the daemon suggests a composed law, the operator accepts
it on the control lane, the daemon journals and applies it between two requests, the law competes from the next
measurement, and a campaign rebuilt from the journal is the same."""

import json
import threading

import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.keys import load_key, new_key
from abduce.instruments.protocol.codec import Codec, Keyring
from tests.controller.test_daemon import control_of, start
from tests.instruments.conftest import LOOPBACK, AgentThread, ipc_endpoint, wait_until

runner = CliRunner()

CONFIG = """
[campaign]
name = "two"
hypotheses = ["second-order"]
budget = 16
seed = 1
n_init = 9
propose = "suggest"

[instrument]
listen = "{listen}"
key = "lab.key"
wait_s = 60

[daemon]
run_dir = "run"
control = "{control}"
"""


class Gated:
    """The sample, measuring freely up to ``hold_from`` measurements and then one measurement per permit, so the
    campaign cannot end before the operator's accepts reach it (no race with the budget, whatever the load)."""

    def __init__(self, driver, hold_from: int) -> None:
        self._driver, self._hold_from, self._count = driver, hold_from, 0
        self.permits = threading.Semaphore(0)
        self.free = threading.Event()

    def __getattr__(self, name):
        return getattr(self._driver, name)

    def measure(self, request):
        self._count += 1
        if self._count > self._hold_from and not self.free.is_set():
            while not self.permits.acquire(timeout=0.05):  # a poll: release_all may come instead of a permit
                if self.free.is_set():
                    break
        return self._driver.measure(request)


def permit_per_accept(daemon, gate: Gated, count: int) -> threading.Thread:
    """A thread that lets one more measurement through each time an accept is waiting in the daemon's queue
    (the accept is applied at the boundary after it), ``count`` times."""

    def run() -> None:
        for _ in range(count):
            wait_until(lambda: daemon._accepts._queue.qsize() > 0 or gate.free.is_set(), timeout=600)
            gate.permits.release()
            wait_until(lambda: daemon._accepts._queue.qsize() == 0 or gate.free.is_set(), timeout=600)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_operator_accepts_the_law_a_daemon_suggests_and_a_rebuild_is_the_same_campaign(tmp_path):
    new_key(tmp_path / "lab.key", "lab")
    listen = ipc_endpoint()
    path = tmp_path / "daemon.toml"
    path.write_text(CONFIG.format(listen=listen, control=LOOPBACK))
    key_id, secret = load_key(tmp_path / "lab.key")
    sample = build(
        "simulated:transition-1d", law="two-transitions", x_c=0.75, x_c2=0.3, beta=0.3, noise=0.01, grid=101, seed=1
    )
    gate = Gated(sample, hold_from=10)  # the first suggestion comes after measurement 10
    agent = AgentThread(InstrumentAgent(gate, listen, Codec(Keyring({key_id: secret}), key_id), "sim"))
    run = tmp_path / "run"
    d, t, box = start(path)
    try:
        control_of(d)
        assert wait_until(lambda: d._status.get("suggested") or d._status.get("state") == "done", timeout=600)
        assert d._status["suggested"] == ["second-order + second-order"], d._status
        name = "second-order + second-order"
        permit_per_accept(d, gate, 2)
        key = ["--key", str(tmp_path / "lab.key")]  # by its run directory and key
        wrong = runner.invoke(app, ["accept", str(run), "second-order + linear background", *key])
        assert wrong.exit_code == 2 and "suggested: second-order + second-order" in wrong.output, wrong.output
        said = runner.invoke(app, ["accept", str(path), name, "--json"])  # by its config
        assert said.exit_code == 0, said.output
        reply = json.loads(said.output)
        assert reply["accepted"]["name"] == name and reply["accepted"]["added"]
        gate.free.set()
        t.join(600)  # a guard against a hang only
    finally:
        gate.free.set()
        if t.is_alive():
            d.stop()
            t.join(60)
        agent.stop()
    assert box["status"]["state"] == "done" and box["status"]["n"] == 16, box

    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
    accepts = [e for e in events if e.kind == "accept"]
    assert [(e.body.name, e.body.n, e.body.by) for e in accepts] == [(name, reply["n"], "operator")]
    at = events.index(accepts[0])
    assert events[at + 1].kind == "request"  # applied between two requests
    first = next(e.body for e in events[at:] if e.kind == "decision")  # the next measurement fits and records it
    assert name in first.refit and name in first.probabilities
    assert [p["name"] for p in first.proposals if p["added"]] == [name]
    last = [e.body for e in events if e.kind == "decision"][-1]
    summary = json.loads((run / "summary.json").read_text())
    assert {h["name"] for h in summary["hypotheses"]} == {"second-order", name}

    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        _, again = rebuild(journal)  # re-told: accepted at the same place
    assert again.hypothesis_names == ("second-order", name) and again.n == 16
    assert [r.request_id for r in again.history] == [e.request_id for e in events if e.kind == "decision"]
    assert again.history[-1].probabilities == pytest.approx(last.probabilities, abs=1e-9)

    shown = runner.invoke(app, ["propose", str(run), "--json"])
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.output)
    assert result["accepted"] == [name] and name not in result["acceptable"]
    assert name not in [p["name"] for p in result["proposals"]]  # a contender now: not composed again
