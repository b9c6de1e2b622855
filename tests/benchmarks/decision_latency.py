"""Decision latency: measurement told -> next request out, K = 4 hypotheses, 10^4 candidates.

For each policy and each n in --sizes, builds a transition-1d campaign whose
initial design holds n points (so the first fit happens at n), then times
--steps further decisions (past n = 100, enough to include a scheduled
refit: n/10 + 5), each being ``tell`` of one measurement plus the
``ask`` for the next. Prints, side by side in one run: median, p90 and max
and mean (amortised, refits included) latency, how many of the timed steps refit a hypothesis, the one-off first fit,
and the ratio of the median to the issue's goal (250 ms epsilon-greedy, 500 ms
discriminate at n = 500). The refit schedule (README, "When to refit") is the
campaign's default; medians are therefore rank-1 steps once n > 100.

    python tests/benchmarks/decision_latency.py [--sizes 50,200,500] [--steps 15] [--candidates 10000]

For scale: the hypothesis-learning paper's reference implementation (GPax,
NUTS per fit) takes a median of 16-25 s a step here at n ~ 30.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GOAL_MS = {"epsilon-greedy": 250.0, "discriminate": 500.0}


def bench(policy: str, n: int, steps: int, candidates: int) -> dict:
    import numpy as np

    from abduce.controller.measurements import Measurement
    from abduce.controller.simulated import SimulatedRun

    # past n = 100 a hypothesis is refit once n grows 10%: time enough steps to include one
    steps = max(steps, n // 10 + 5) if n > 100 else steps
    run = SimulatedRun(policy=policy, n_init=n, budget=n + steps + 1, grid=candidates, seed=0,
                       hypotheses=("second-order", "first-order", "linear", "sigmoid"))
    campaign, sim = run.build()

    def measure(r):
        return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))

    for _ in range(n - 1):
        campaign.tell(measure(campaign.ask()))
    request = campaign.ask()
    t0 = time.perf_counter()
    campaign.tell(measure(request))  # the first fit of all K at n
    request = campaign.ask()
    first_fit = time.perf_counter() - t0
    latencies, refits = [], 0
    for _ in range(steps):
        m = measure(request)
        t0 = time.perf_counter()
        record = campaign.tell(m)
        request = campaign.ask()
        latencies.append(time.perf_counter() - t0)
        refits += bool(record.refit)
    mean = statistics.fmean(latencies)
    latencies.sort()
    return {
        "steps": steps,
        "mean_ms": 1e3 * mean,
        "median_ms": 1e3 * statistics.median(latencies),
        "p90_ms": 1e3 * latencies[int(0.9 * (len(latencies) - 1))],
        "max_ms": 1e3 * latencies[-1],
        "refit_steps": refits,
        "first_fit_s": first_fit,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,200,500")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--policies", default="epsilon-greedy,discriminate")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"{args.candidates} candidates, K = 4, {args.steps} timed steps per row")
    print(f"{'policy':<16}{'n':>6}{'median ms':>11}{'mean ms':>9}{'p90 ms':>9}{'max ms':>9}{'refit steps':>13}{'first fit s':>13}{'median/goal':>13}")
    for policy in args.policies.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            r = bench(policy, n, args.steps, args.candidates)
            ratio = r["median_ms"] / GOAL_MS[policy]
            print(f"{policy:<16}{n:>6}{r['median_ms']:>11.1f}{r['mean_ms']:>9.1f}{r['p90_ms']:>9.1f}{r['max_ms']:>9.1f}"
                  f"{r['refit_steps']:>8}/{r['steps']:<4}{r['first_fit_s']:>13.2f}{ratio:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
