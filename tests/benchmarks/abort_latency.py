"""The operator's abort, end to end: ``abduce abort`` against a daemon whose instrument dwells for minutes.

    python tests/benchmarks/abort_latency.py [--aborts 20] [--dwell 60]

The daemon and the instrument agent (``abduce instrument serve``, the simulated driver sleeping ``--dwell``
seconds a point) each run as a process of their own, over TCP on loopback, as in a lab. Each round waits
until the daemon is measuring, then sends the signed ``abort`` on the daemon's control lane (what
``abduce abort --config`` sends) and times:

* **reply**: until the operator has the agent's ``abort_reply`` (the daemon forwarded the abort on the
  agent's control lane, the driver's dwell was cut, the agent answered);
* **journalled**: until the daemon's journal holds the aborted request (the agent's ``aborted`` result
  reached the controller, which skipped the point; the event's own time stamp, so no polling delay).

Goal (issue 15): the measurement is interrupted within 100 ms of the command. Without the abort each round
would take ``--dwell`` seconds; every aborted request is journalled once and never measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CONFIG = """
[campaign]
hypotheses = ["second-order", "linear"]
budget = {budget}
n_init = 4

[instrument]
listen = "tcp://127.0.0.1:0"
key = "lab.key"
wait_s = 60

[daemon]
run_dir = "run"
control = "tcp://127.0.0.1:0"
"""


def run(aborts: int, dwell: float) -> dict[str, list[float]]:
    from abduce.controller.drive.control import request
    from abduce.controller.journal.events import read
    from abduce.controller.journal.rundir import read_endpoints
    from abduce.controller.journal.store import Journal
    from abduce.instruments.keys import load_key, new_key
    from tests.instruments.conftest import wait_until

    work = Path(tempfile.mkdtemp(prefix="abduce-abort-"))
    new_key(work / "lab.key", "lab")
    (work / "daemon.toml").write_text(CONFIG.format(budget=aborts + 10))
    _, secret = load_key(work / "lab.key")
    cli = [sys.executable, "-m", "abduce.controller.cli"]
    quiet = dict(cwd=work, stdout=subprocess.DEVNULL, stderr=open(work / "log.txt", "a"))
    daemon = subprocess.Popen([*cli, "daemon", str(work / "daemon.toml")], **quiet)
    agent = None
    try:
        assert wait_until(lambda: (work / "run" / "endpoints.json").exists(), timeout=120), "the daemon did not bind"
        ends = read_endpoints(work / "run")
        agent = subprocess.Popen(
            [*cli, "instrument", "serve", "--driver", "simulated:transition-1d", "--connect", ends["instrument"],
             "--key", str(work / "lab.key"), "--grid", "101", "-o", f"dwell_s={dwell}"],
            **quiet,
        )  # fmt: skip
        control = ends["control"]

        def status() -> dict:
            return request(control, secret, "status")["status"]

        replies, journalled, last = [], [], None

        def measuring_anew() -> bool:  # measuring a request other than the one just aborted
            s = status()
            return s.get("phase") == "measuring" and s.get("request") not in (None, last)

        for i in range(aborts):
            assert wait_until(measuring_anew, timeout=120), f"round {i}: not measuring"
            last = status()["request"]
            t0 = time.time()
            reply = request(control, secret, "abort", timeout_s=30)["reply"]
            replies.append(time.time() - t0)
            assert reply["ok"], reply

            def aborted() -> list:
                with Journal.open(work / "run" / "journal.sqlite", readonly=True) as j:
                    return [e for e in read(j, "error") if e.body.reason == "aborted"]

            assert wait_until(lambda: len(aborted()) == i + 1, timeout=30), f"round {i}: no aborted request"
            journalled.append(aborted()[-1].t - t0)
        with Journal.open(work / "run" / "journal.sqlite", readonly=True) as j:
            measured = {e.request_id for e in read(j, "measurement")}
            stopped = {e.request_id for e in read(j, "error") if e.body.reason == "aborted"}
        assert len(stopped) == aborts and not measured & stopped  # each once, none measured after all
        return {"reply": replies, "journalled": journalled}
    finally:
        for proc in (daemon, agent):  # a stop waits for the measurement under way: the benchmark does not
            if proc is not None:
                proc.kill()
                proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aborts", type=int, default=20)
    ap.add_argument("--dwell", type=float, default=60.0, help="seconds the simulated instrument dwells per point")
    args = ap.parse_args()
    t = run(args.aborts, args.dwell)
    print(f"{args.aborts} aborts of a {args.dwell:g} s simulated measurement, daemon and agent each in a process")
    print(f"{'from abduce abort to':<34}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}  goal")
    for name, label in (("reply", "the agent's abort_reply"), ("journalled", "the aborted request journalled")):
        xs = sorted(1000 * v for v in t[name])
        p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
        print(f"{label:<34}{statistics.median(xs):>10.1f}{p95:>9.1f}{max(xs):>9.1f}  < 100 ms")


if __name__ == "__main__":
    main()
