"""Journal cost per measurement (request and measurement fsync'd, the recomputable decision not)
next to the decision latency it accompanies, side by side in one run.

    python tests/benchmarks/journal_cost.py [--n 500] [--steps 20] [--candidates 10000]

Goal (issue 4): the journal costs under 5% of a decision.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import numpy as np

    from abduce.controller.journal import Journal
    from abduce.controller.measurements import Measurement
    from abduce.controller.simulated import SimulatedRun

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=10_000)
    args = ap.parse_args()
    for policy in ("epsilon-greedy", "discriminate"):
        run = SimulatedRun(policy=policy, n_init=args.n, budget=args.n + args.steps + 1, grid=args.candidates, seed=0)
        campaign, sim = run.build()

        def measure(r):
            return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))

        for _ in range(args.n):
            campaign.tell(measure(campaign.ask()))
        request = campaign.ask()
        decisions, journals = [], []
        with tempfile.TemporaryDirectory(dir=".") as d:
            journal = Journal.create(Path(d) / "journal.sqlite", {"benchmark": True})
            for _ in range(args.steps):
                m = measure(request)
                t0 = time.perf_counter()
                record = campaign.tell(m)
                nxt = campaign.ask()
                decisions.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                journal.append("request", vars(request), request_id=request.request_id)
                journal.append("measurement", {"x": list(m.x), "y": m.y}, request_id=request.request_id)
                journal.append("decision", vars(record), request_id=request.request_id, sync=False)
                journals.append(time.perf_counter() - t0)
                request = nxt
            journal.close()
        dec, jou = statistics.median(decisions), statistics.median(journals)
        print(f"{policy:<16} n={args.n}: decision median {1e3 * dec:7.1f} ms, journal (3 appends, 2 fsyncs) median "
              f"{1e3 * jou:6.2f} ms, journal/decision {100 * jou / dec:5.1f}%  (goal < 5%)", flush=True)


if __name__ == "__main__":
    main()
