"""Journal cost per measurement on the critical path, next to the decision latency it accompanies,
side by side in one run.

Each step journals, as the loop does: the measurement (committed, its fsync
started in the background), then -- while the campaign tells and decides --
nothing, then the decision (rides on the next fsync) and the next request
(fsync'd before it would be sent; waits for the measurement's fsync). The
same steps are also timed with both fsyncs in line ("2 fsyncs in line"), the
way the journal worked before, for comparison.

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

    from abduce.controller.core.measurements import Measurement
    from abduce.controller.journal.store import Journal
    from abduce.controller.rehearse.simulated import SimulatedRun

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=10_000)
    args = ap.parse_args()
    for policy in ("epsilon-greedy", "discriminate"):
        run = SimulatedRun(
            policy=policy, n_init=args.n, budget=args.n + 2 * args.steps + 1, grid=args.candidates, seed=0
        )
        campaign, sim = run.build()

        def measure(r):
            return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))

        for _ in range(args.n):
            campaign.tell(measure(campaign.ask()))
        request = campaign.ask()
        decisions, journals, inlines = [], [], []
        with tempfile.TemporaryDirectory(dir=".") as d:
            journal = Journal.create(Path(d) / "journal.sqlite", {"benchmark": True})
            raw = os.urandom(600)  # about the size of a signed one-point result
            journal.append("request", vars(request), request_id=request.request_id)
            for i in range(2 * args.steps):
                inline = i % 2 == 1  # alternate the two ways, so both see the same machine state
                m = measure(request)
                t0 = time.perf_counter()
                journal.append(
                    "measurement",
                    {"x": list(m.x), "y": m.y},
                    request_id=request.request_id,
                    key_id="lab",
                    blob=raw,
                    durability="now" if inline else "background",
                )
                j = time.perf_counter() - t0
                t0 = time.perf_counter()
                record = campaign.tell(m)
                nxt = campaign.ask()
                decisions.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                journal.append("decision", vars(record), request_id=request.request_id, durability="next")
                journal.append("request", vars(nxt), request_id=nxt.request_id)
                (inlines if inline else journals).append(j + time.perf_counter() - t0)
                request = nxt
            journal.close()
        dec, jou, inl = statistics.median(decisions), statistics.median(journals), statistics.median(inlines)
        print(
            f"{policy:<16} n={args.n}: decision median {1e3 * dec:7.1f} ms | journal on the critical path "
            f"(1 fsync in line, 1 overlapped) {1e3 * jou:5.2f} ms = {100 * jou / dec:4.1f}% of a decision "
            f"(goal < 5%) | 2 fsyncs in line {1e3 * inl:5.2f} ms = {100 * inl / dec:4.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
