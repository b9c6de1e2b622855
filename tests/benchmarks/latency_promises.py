"""The latencies the README promises, measured (the test suite checks these behaviours structurally,
never against a number of milliseconds: a loaded machine would make such tests fail by chance).

    python tests/benchmarks/latency_promises.py [--fit-n 300] [--requests 200]

1. ``abduce status`` while the daemon refits: the daemon runs as its own
   process, n_init measurements are taken, and status requests are sent
   back to back while its first refit (K = 4, n = n_init) runs. Goal: every
   answer under 100 ms. The refit's length is printed beside it, so the
   ratio says how far the answer is from waiting for the fit.
2. ``abort`` on the control lane while a measurement runs (the fake
   instrument would take ten minutes). Goal: under 1 s.
3. A recorded data set's nearest-point look-up: 2,000 points on a
   100,489-point grid (a k-d tree). Goal: under 1 s.

Each row prints its figure and its goal, measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def status_during_a_refit(fit_n: int) -> tuple[list[float], float]:
    """Status round trips (s) sent while the daemon's refit at ``fit_n`` runs, and that refit's length (s)."""
    from abduce.controller.drive.control import request
    from abduce.controller.journal.rundir import read_endpoints
    from abduce.instruments.agent import InstrumentAgent
    from abduce.instruments.drivers.simulated import build
    from abduce.instruments.keys import load_key, new_key
    from abduce.instruments.protocol.codec import Codec, Keyring
    from tests.controller.test_daemon import CONFIG
    from tests.instruments.conftest import LOOPBACK, AgentThread, wait_until

    work = Path(tempfile.mkdtemp(prefix="abduce-status-"))
    new_key(work / "lab.key", "lab")
    text = CONFIG.format(seed=3, budget=fit_n + 3, listen=LOOPBACK, control=LOOPBACK)
    text = text.replace("n_init = 4", f"n_init = {fit_n}")
    (work / "daemon.toml").write_text(
        text.replace('["second-order", "linear"]', '["second-order", "first-order", "sigmoid", "linear"]')
    )
    key_id, secret = load_key(work / "lab.key")
    proc = subprocess.Popen(
        [sys.executable, "-m", "abduce.controller.cli", "daemon", str(work / "daemon.toml")],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = None
    try:
        assert wait_until(lambda: (work / "run" / "endpoints.json").exists(), timeout=300)
        endpoints = read_endpoints(work / "run")
        agent = AgentThread(
            InstrumentAgent(
                build("simulated:transition-1d", grid=1001, seed=3),
                endpoints["instrument"],
                Codec(Keyring({key_id: secret}), key_id),
                "sim",
            )
        )
        status = lambda: request(endpoints["control"], secret, "status", timeout_s=60)["status"]
        # the tell of the fit_n-th measurement fits all K for the first time (status n is fit_n - 1 meanwhile)
        in_fit = lambda s: s["n"] == fit_n - 1 and s.get("phase") == "learning"
        assert wait_until(lambda: in_fit(status()), timeout=600)
        latencies, started = [], time.perf_counter()
        while True:
            t0 = time.perf_counter()
            s = status()
            latencies.append(time.perf_counter() - t0)
            if not in_fit(s):
                return latencies, time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(60)
        if agent is not None:
            agent.stop()


def abort_while_measuring(repeats: int = 5) -> list[float]:
    from abduce.controller.drive.link import InstrumentLink
    from abduce.instruments.agent import InstrumentAgent
    from abduce.instruments.protocol.codec import Codec, Keyring
    from abduce.instruments.protocol.models import Measure
    from tests.instruments.conftest import LOOPBACK, AgentThread, SlowDriver, wait_until

    out = []
    keyring = Keyring({"lab": os.urandom(32)})
    for i in range(repeats):
        driver = SlowDriver(delay=600.0)
        link = InstrumentLink(LOOPBACK, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
        agent = AgentThread(InstrumentAgent(driver, link.endpoint, Codec(keyring, "lab"), "sim"))
        try:
            link.wait_for_agent(60)
            assert wait_until(lambda: link.agents["sim"].control_identity is not None, timeout=60)
            t = threading.Thread(
                target=lambda: link.measure(Measure(request_id=f"long{i}", points=[[0.5]]), "sim", 120)
            )
            t.start()
            assert wait_until(lambda: driver.calls == [f"long{i}"], timeout=60)
            t0 = time.perf_counter()
            assert link.abort("sim", f"long{i}", timeout_s=60).aborted
            out.append(time.perf_counter() - t0)
            t.join(60)
        finally:
            agent.stop()
            link.close()
    return out


def recorded_lookup(repeats: int = 5) -> list[float]:
    import numpy as np

    from abduce.instruments.drivers.recorded import RecordedDataset, RecordedDriver
    from abduce.instruments.protocol.models import Measure

    g = np.linspace(0.0, 1.0, 317)
    pts = np.stack([m.ravel() for m in np.meshgrid(g, 10 * g, indexing="ij")], axis=1)
    driver = RecordedDriver(
        RecordedDataset(points=pts, axis_names=("a", "b"), values={"y": np.arange(len(pts), dtype=float)})
    )
    rng = np.random.default_rng(1)
    out = []
    for i in range(repeats):
        idx = rng.integers(0, len(pts), 2000)
        jitter = (rng.random((2000, 2)) - 0.5) * 0.5 * driver.tolerance * np.array([1.0, 10.0])
        t0 = time.perf_counter()
        driver.measure(Measure(request_id=f"big{i}", points=(pts[idx] + jitter).tolist()))
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-n", type=int, default=300)
    args = ap.parse_args()
    lat, fit_s = status_during_a_refit(args.fit_n)
    aborts = abort_while_measuring()
    lookups = recorded_lookup()
    print(f"{'promise':<48} {'median':>9} {'max':>9} {'goal':>8}  note")
    print(
        f"{f'status while the daemon refits (n = {args.fit_n}, K = 4)':<48} {1e3 * statistics.median(lat):>7.1f}ms "
        f"{1e3 * max(lat):>7.1f}ms {'100ms':>8}  {len(lat)} answers during a {fit_s:.1f} s refit "
        f"(refit / max answer = {fit_s / max(lat):.0f}x)"
    )
    print(
        f"{'abort on the control lane mid-measurement':<48} {1e3 * statistics.median(aborts):>7.1f}ms "
        f"{1e3 * max(aborts):>7.1f}ms {'1000ms':>8}  the measurement would take 600 s"
    )
    print(
        f"{'recorded look-up, 2,000 of 100,489 points':<48} {1e3 * statistics.median(lookups):>7.1f}ms "
        f"{1e3 * max(lookups):>7.1f}ms {'1000ms':>8}"
    )


if __name__ == "__main__":
    main()
