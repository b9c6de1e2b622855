"""Kill -9 the daemon at random moments until its campaign is done; check nothing was lost or doubled.

    python tests/killtest.py --kills 200 [--budget 320] [--seed 0] [--policy epsilon-greedy] [--max-seconds S]

Runs a simulated instrument agent in this process (counting every request
its driver measures) and `abduce daemon` as a subprocess, SIGKILLs the daemon
at a random moment, restarts it, and repeats until the journal holds the
whole budget (after ``--kills`` kills, the daemon is left to finish). Most
kills land mid-campaign: once the daemon reports ``running`` on its control
lane (instrument registered, journal replayed) and has journalled one more
measurement, it is killed at a random moment of the following step (within
as long as that measurement took, at most ``--window`` seconds): mid-fit,
mid-write, a request in flight. One kill in four lands at a random moment of
start-up (imports, registration, replay) instead. Every mid-campaign kill
thus follows at least one new measurement, so the campaign ends however
long a step takes. Then
checks: every measurement is in the journal exactly once; no request id was
measured twice by the instrument; the dataset equals that of an
uninterrupted in-process run with the same seed and the same simulator noise
stream. The test suite runs it with 20 kills (tests/controller/test_killtest.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from abduce.controller.journal import Journal  # noqa: E402
from abduce.instruments.agent import InstrumentAgent  # noqa: E402
from abduce.instruments.drivers.simulated import SimulatedDriver  # noqa: E402
from abduce.instruments.keys import load_key, new_key  # noqa: E402
from abduce.instruments.protocol.codec import Codec, Keyring  # noqa: E402
from abduce.simulators.transition1d import Transition1D  # noqa: E402
from tests.instruments.conftest import free_endpoint  # noqa: E402

HYPOTHESES = ("second-order", "linear")


def grid_for(budget: int) -> int:
    """Candidates enough that the budget, not the grid, ends the campaign (a campaign stops once
    every candidate is measured)."""
    return max(101, 2 * budget + 1)


class CountingDriver(SimulatedDriver):
    """The simulated driver, counting how often each request id is measured."""

    def __init__(self, seed: int, grid: int) -> None:
        super().__init__(Transition1D(grid=grid, seed=seed))
        self.counts: Counter[str] = Counter()

    def measure(self, request):
        self.counts[request.request_id] += 1
        return super().measure(request)


def journal_measurements(path: Path) -> list[tuple[str, list[float], float]]:
    if not path.exists():
        return []
    try:
        with Journal.open(path, readonly=True) as j:
            return [(e.request_id, e.body["x"], e.body["y"]) for e in j.events("measurement")]
    except Exception:  # mid-write by a live daemon: try later
        return []


def count_measurements(path: Path) -> int:
    """How many measurements the journal holds: one SQL count on a read-only connection (milliseconds,
    where parsing every event would let several fast steps pass between two looks)."""
    import sqlite3

    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'measurement'").fetchone()[0])
    except sqlite3.Error:  # mid-write by a live daemon: try later
        return -1


def last_step_seconds(path: Path, starts: list[float]) -> float:
    """How long a step takes now: the latest gap between two consecutive journalled measurements that
    spans none of the daemon's starts (wall clock). A gap across a start holds a restart (seconds of
    imports and replay); when each run makes one or two measurements, most recent gaps do."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5) as conn:
            t = [r[0] for r in conn.execute("SELECT t FROM events WHERE kind = 'measurement' ORDER BY seq DESC LIMIT 20")]
    except sqlite3.Error:
        return 0.0
    gaps = [a - b for a, b in zip(t, t[1:]) if not any(b < s <= a for s in starts)]
    return float(gaps[0]) if gaps else 0.0


def _wait_running(proc: subprocess.Popen, control: str, secret: bytes, timeout_s: float = 120.0) -> bool:
    """Wait until the daemon says it is running its campaign (False if it exited or never did)."""
    from abduce.controller.control import ControlError, request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if request(control, secret, "status", timeout_s=0.3)["status"]["state"] == "running":
                return True
        except ControlError:
            pass
        time.sleep(0.05)
    return False


def run(kills: int, budget: int, seed: int, workdir: Path, log=print, policy: str = "discriminate",
        window_s: float = 1.5, max_seconds: float | None = None) -> dict:
    new_key(workdir / "lab.key", "lab")
    listen, control = free_endpoint(), free_endpoint()
    config = workdir / "daemon.toml"
    config.write_text(
        f'[campaign]\nname = "killtest"\nhypotheses = {json.dumps(list(HYPOTHESES))}\npolicy = "{policy}"\n'
        f"budget = {budget}\nseed = {seed}\nn_init = 4\n\n"
        f'[instrument]\nlisten = "{listen}"\nkey = "lab.key"\nwait_s = 120\n\n'
        f'[daemon]\nrun_dir = "run"\ncontrol = "{control}"\nlog = "daemon.log"\n'
    )
    key_id, secret = load_key(workdir / "lab.key")
    grid = grid_for(budget)
    driver = CountingDriver(seed, grid)
    agent = InstrumentAgent(driver, listen, Codec(Keyring({key_id: secret}), key_id), "sim")
    agent_thread = threading.Thread(target=agent.serve, daemon=True)
    agent_thread.start()
    journal = workdir / "run" / "journal.sqlite"
    rng = random.Random(seed)
    done_kills, starts, mid_campaign = 0, 0, 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    start_times: list[float] = []
    try:
        while True:
            start_times.append(time.time())
            proc = subprocess.Popen([sys.executable, "-m", "abduce.controller.cli", "daemon", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            starts += 1
            # what the journal held at this start (a starting daemon replays, it does not measure): fast
            # steps may journal several measurements between 'running' and a later look
            n0 = count_measurements(journal)
            for _ in range(100):  # the journal was mid-write: look again
                if n0 >= 0:
                    break
                time.sleep(0.01)
                n0 = count_measurements(journal)
            n0 = n0 if n0 >= 0 else len(journal_measurements(journal))
            if done_kills < kills and (deadline is None or time.monotonic() < deadline):
                at_start_up = rng.random() < 0.25
                if at_start_up:
                    time.sleep(rng.uniform(0.0, 4.0))  # imports, registration, replay
                elif _wait_running(proc, control, secret):
                    # let it make progress (so the campaign ends whatever a step costs), then kill at a random
                    # moment of the next step: within as long as a step takes (the journal's latest gap between
                    # two measurements, across no restart), at most window_s
                    while proc.poll() is None and count_measurements(journal) <= n0:
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0.0, min(window_s, last_step_seconds(journal, start_times))))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    done_kills += 1
                    mid_campaign += not at_start_up
                    log(f"kill {done_kills} ({'start-up' if at_start_up else 'mid-campaign'}): "
                        f"journal holds {len(journal_measurements(journal))}/{budget}")
                    continue
            proc.wait(timeout=600)
            if proc.returncode == 0 and (workdir / "run" / "summary.json").exists():
                break  # the daemon finished the campaign
    finally:
        agent.stop()
        agent_thread.join(10)
    rows = journal_measurements(journal)
    ids = [r[0] for r in rows]
    from abduce.controller.simulated import SimulatedRun

    reference = SimulatedRun(truth="second-order", hypotheses=HYPOTHESES, policy=policy, budget=budget,
                             seed=seed, grid=grid, n_init=4).run()
    ref_x, ref_y = reference.data
    return {
        "kills": done_kills,
        "mid_campaign_kills": mid_campaign,
        "starts": starts,
        "measurements": len(rows),
        "unique_ids": len(set(ids)),
        "measured_twice": sorted(rid for rid, n in driver.counts.items() if n > 1),
        "instrument_measurements": sum(driver.counts.values()),
        "equals_uninterrupted": [tuple(r[1]) for r in rows] == ref_x and [r[2] for r in rows] == ref_y,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--budget", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="epsilon-greedy")
    ap.add_argument("--window", type=float, default=1.5, help="seconds after 'running' within which a kill lands")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop killing after this long (then let it finish)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        result = run(args.kills, args.budget, args.seed, Path(d), policy=args.policy, window_s=args.window,
                     max_seconds=args.max_seconds)
    print(json.dumps(result, indent=2))
    ok = (result["measurements"] == result["unique_ids"] == args.budget and not result["measured_twice"]
          and result["equals_uninterrupted"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
