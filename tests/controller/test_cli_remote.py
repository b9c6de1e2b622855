"""The protocol commands end to end: keys, an agent process, a campaign over signed TCP."""

import json
import stat
import subprocess
import sys

from typer.testing import CliRunner

from abduce.controller.cli import app
from tests.instruments.conftest import wait_until

runner = CliRunner()


def test_keys_new_writes_a_private_key_and_never_overwrites(tmp_path):
    key = tmp_path / "lab.key"
    result = runner.invoke(app, ["keys", "new", str(key), "--curve"])
    assert result.exit_code == 0, result.output
    assert json.loads(key.read_text())["key_id"] == "lab"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "lab.key.curve.key").exists() and (tmp_path / "lab.key.curve.key_secret").exists()
    before = key.read_text()
    again = runner.invoke(app, ["keys", "new", str(key)])
    assert again.exit_code == 2 and "never overwrites" in again.output and key.read_text() == before


def test_run_listen_through_an_agent_process_matches_the_in_process_run(tmp_path):
    key = tmp_path / "lab.key"
    runner.invoke(app, ["keys", "new", str(key)])
    common = [
        "--budget",
        "7",
        "--seed",
        "2",
        "--quiet",
        "--hypotheses",
        "second-order,linear",
        "--policy",
        "discriminate",
    ]
    out = tmp_path / "remote"
    controller = subprocess.Popen(  # binds free ports and names them in OUT/endpoints.json
        [
            sys.executable,
            "-m",
            "abduce.controller.cli",
            "run",
            "--out",
            str(out),
            "--listen",
            "tcp://127.0.0.1:0",
            "--key",
            str(key),
            "--wait",
            "600",
            *common,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    agent = None
    try:
        assert wait_until(lambda: (out / "endpoints.json").exists() or controller.poll() is not None, timeout=300)
        endpoint = json.loads((out / "endpoints.json").read_text())["instrument"]
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "abduce.controller.cli",
                "instrument",
                "serve",
                "--driver",
                "simulated:transition-1d",
                "--connect",
                endpoint,
                "--key",
                str(key),
                "--seed",
                "2",
                "--grid",
                "101",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        output, _ = controller.communicate(timeout=600)  # a guard against a hang only
    finally:
        controller.kill()
        if agent is not None:
            agent.terminate()
            agent.wait(10)
    assert controller.returncode == 0, output
    assert f"listening on {endpoint}" in output
    local = runner.invoke(app, ["run", "--out", str(tmp_path / "local"), "--grid", "101", *common])
    assert local.exit_code == 0, local.output
    lines = lambda d: [json.loads(l) for l in (tmp_path / d / "measurements.jsonl").read_text().splitlines()]
    assert lines("remote") == lines("local")  # same seed, same noise stream: the protocol changes nothing
    audit = [json.loads(l) for l in (tmp_path / "remote" / "audit.jsonl").read_text().splitlines()]
    assert {"hello", "welcome", "measure", "result", "result_ack"} <= {a["msg_type"] for a in audit}
    assert {a["key_id"] for a in audit} == {"lab"}


def test_listen_with_a_missing_key_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "--out",
            str(tmp_path / "r"),
            "--listen",
            "tcp://127.0.0.1:5999",
            "--key",
            str(tmp_path / "nope.key"),
            "--quiet",
        ],
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_the_demo_leaves_a_run_directory_and_a_self_contained_report(tmp_path):
    """The README's main job, end to end: agent process, signed TCP, 40 measurements, report."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "abduce.controller.cli", "demo", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measurements"] == 40 and summary["leader"] == "second-order"
    html = (out / "report.html").read_text()
    assert html.count("<section") >= 5 and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_run_listen_reduces_the_spectra_of_a_recorded_data_set(tmp_path):
    """Issue 16, item 5: `abduce run --listen --reduction max` against `abduce instrument serve --driver
    recorded:PATH` holding a spectral channel (hysteresis loops): every measurement is the maximum of its
    spectrum, and the raw spectrum is journalled beside it."""
    import numpy as np

    from abduce.controller.journal.store import Journal
    from abduce.instruments.drivers.record import record
    from abduce.simulators.loops import Loops

    data = tmp_path / "loops.npz"
    record(Loops(grid=21, m=16, seed=1), data)
    key = tmp_path / "lab.key"
    runner.invoke(app, ["keys", "new", str(key)])
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "abduce.controller.cli"]
    controller = subprocess.Popen(
        [*cli, "run", "--out", str(out), "--listen", "tcp://127.0.0.1:0", "--key", str(key), "--wait", "600",
         "--reduction", "max", "--budget", "6", "--n-init", "4", "--hypotheses", "second-order,linear", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    agent = None
    try:
        assert wait_until(lambda: (out / "endpoints.json").exists() or controller.poll() is not None, timeout=300)
        endpoint = json.loads((out / "endpoints.json").read_text())["instrument"]
        agent = subprocess.Popen(
            [*cli, "instrument", "serve", "--driver", f"recorded:{data}", "--connect", endpoint, "--key", str(key)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        output, _ = controller.communicate(timeout=600)
        assert controller.returncode == 0, output
    finally:
        for proc in (controller, agent):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)
    with Journal.open(out / "journal.sqlite", readonly=True) as j:
        measured = list(j.events("measurement"))
        config = j.config()
    assert len(measured) == 6 and config["reduction"] == "max"
    for e in measured:
        ((name, raw),) = e.body["arrays"].items()
        spectrum = np.asarray(raw["data"]).reshape(raw["shape"])
        assert e.body["y"] == spectrum.max()  # the value the hypotheses explain is the reduction of the spectrum
