"""OpenMP wait policy and thread count, side by side: which defaults should abduce run with?

Runs the decision-latency benchmark (epsilon-greedy, n = 50, where every step
refits, so small GP fits dominate) in a fresh process per setting and prints
the medians with their ratio to the fastest.

    python tests/benchmarks/thread_settings.py [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

SETTINGS = [
    ("OMP_WAIT_POLICY=ACTIVE, 2 threads", {"OMP_WAIT_POLICY": "ACTIVE"}, 2),
    ("OMP_WAIT_POLICY=PASSIVE, 2 threads", {"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    ("OMP_WAIT_POLICY=ACTIVE, 1 thread", {"OMP_WAIT_POLICY": "ACTIVE"}, 1),
    ("OMP_WAIT_POLICY=PASSIVE, 1 thread", {"OMP_WAIT_POLICY": "PASSIVE"}, 1),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    script = Path(__file__).with_name("decision_latency.py")
    rows = []
    for label, env, threads in SETTINGS:
        out = subprocess.run(
            [
                sys.executable,
                "-W",
                "ignore",
                str(script),
                "--sizes",
                "50",
                "--steps",
                str(args.steps),
                "--policies",
                "epsilon-greedy",
                "--candidates",
                "2000",
                "--threads",
                str(threads),
            ],
            env={**os.environ, **env, "OMP_NUM_THREADS": str(threads)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = [l for l in out.splitlines() if l.startswith("epsilon-greedy")][0]
        rows.append((label, float(re.split(r"\s+", line)[2])))
    best = min(ms for _, ms in rows)
    print(f"{'setting':<38}{'median ms (n=50, every step refits)':>38}{'ratio to best':>15}")
    for label, ms in rows:
        print(f"{label:<38}{ms:>38.1f}{ms / best:>15.2f}")


if __name__ == "__main__":
    main()
