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
    python tests/benchmarks/decision_latency.py --grid 50:1000,50:10000,500:10000,500:100000,2000:100000,10000:100000

``--grid`` takes ``n:N`` pairs instead of ``--sizes`` x ``--candidates``. Each row
runs in its own process, so the peak memory printed beside it (resident set,
and CUDA's peak allocation with ``--device cuda``) is that row's own. Rows past
the exact-inference size run on inducing points (the ``inference`` column); for
rows with n > 1000, ``--large-fit`` caps the one-off first fit (default
``maxiter=40,restarts=1``) so that the table finishes in minutes — a cap on the
fit, not on the timed steps.

For scale: the hypothesis-learning paper's reference implementation (GPax,
NUTS 2000/2000 per fit) takes a median of 6.5 s a step on this machine, idle,
at n <= 15 (tests/benchmarks/gpax_head_to_head.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GOAL_MS = {"epsilon-greedy": 250.0, "discriminate": 500.0}


def bench(policy: str, n: int, steps: int, candidates: int, device: str = "cpu", large_fit: str = "") -> dict:
    import dataclasses

    import numpy as np

    from abduce.controller.core.measurements import Measurement
    from abduce.controller.rehearse.simulated import SimulatedRun

    # past n = 100 a hypothesis is refit once n grows 10%: time enough steps to include one
    # (up to n = 1000; beyond, the first fit's time stands for a refit's)
    steps = max(steps, n // 10 + 5) if 100 < n <= 1000 else steps
    run = SimulatedRun(
        policy=policy,
        n_init=n,
        budget=n + steps + 1,
        grid=candidates,
        seed=0,
        hypotheses=("second-order", "first-order", "linear", "sigmoid"),
        device=device,
    )
    campaign, sim = run.build()
    if n > 1000 and large_fit:  # the one-off first fit only; read before the first fit
        fit = dataclasses.replace(
            campaign.settings.fit, **{k: int(v) for k, v in (kv.split("=") for kv in large_fit.split(","))}
        )
        campaign.settings = dataclasses.replace(campaign.settings, fit=fit)

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
    import torch

    fits = [slot.fit for slot in campaign.belief.slots if slot.fit is not None]
    m = max((f.inducing for f in fits), default=0)
    return {
        "inference": f"inducing {m}" if m else "exact",
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "steps": steps,
        "mean_ms": 1e3 * mean,
        "median_ms": 1e3 * statistics.median(latencies),
        "p90_ms": 1e3 * latencies[int(0.9 * (len(latencies) - 1))],
        "max_ms": 1e3 * latencies[-1],
        "refit_steps": refits,
        "first_fit_s": first_fit,
    }


def _row(policy: str, n: int, candidates: int, args) -> dict:
    """One row in a fresh process (its own peak memory)."""
    cmd = [
        sys.executable,
        __file__,
        "--row",
        f"{policy}:{n}:{candidates}",
        "--steps",
        str(args.steps),
        "--device",
        args.device,
        "--large-fit",
        args.large_fit,
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,200,500")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--candidates", default="10000", help="candidate counts, comma-separated")
    ap.add_argument("--grid", default=None, help="n:N pairs, comma-separated (instead of --sizes x --candidates)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--policies", default="epsilon-greedy,discriminate")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (auto: cuda when present)")
    ap.add_argument(
        "--large-fit", default="maxiter=40,restarts=1", help="FitSettings for the first fit of rows with n > 1000"
    )
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.row:
        policy, n, candidates = args.row.split(":")
        print(json.dumps(bench(policy, int(n), args.steps, int(candidates), args.device, args.large_fit)))
        return
    pairs = (
        [tuple(int(v) for v in p.split(":")) for p in args.grid.split(",")]
        if args.grid
        else [(int(n), int(c)) for c in args.candidates.split(",") for n in args.sizes.split(",")]
    )
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(
        f"torch {torch.__version__} on {where}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, K = 4, {args.steps} timed steps per row"
    )
    print(
        f"{'policy':<16}{'n':>6}{'N':>8}{'inference':>14}{'median ms':>11}{'mean ms':>9}{'p90 ms':>9}{'max ms':>9}"
        f"{'refit steps':>13}{'first fit s':>13}{'peak GB':>9}{'median/goal':>13}"
    )
    for policy in args.policies.split(","):
        for n, candidates in pairs:
            r = _row(policy, n, candidates, args)
            if "error" in r:
                print(f"{policy:<16}{n:>6}{candidates:>8}  failed: {r['error']}", flush=True)
                continue
            ratio = r["median_ms"] / GOAL_MS[policy]
            peak = r["peak_cuda_gb"] if args.device == "cuda" else r["peak_rss_gb"]
            print(
                f"{policy:<16}{n:>6}{candidates:>8}{r['inference']:>14}{r['median_ms']:>11.1f}{r['mean_ms']:>9.1f}"
                f"{r['p90_ms']:>9.1f}{r['max_ms']:>9.1f}{r['refit_steps']:>8}/{r['steps']:<4}{r['first_fit_s']:>13.2f}"
                f"{peak:>9.2f}{ratio:>13.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
