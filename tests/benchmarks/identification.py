"""Does a 40-measurement campaign identify the true hypothesis? (issue 2's bar)

For each policy and each true law among {second-order, first-order, sigmoid,
linear} (hypotheses: all four), runs SEEDS seeded campaigns on the
transition-1d simulator (x_c = 0.6, beta = 0.5, noise 5% of the amplitude) and
prints how many ended with the true hypothesis at posterior probability
>= 0.9, and how many had the fitted x_c within 0.05 of the truth.

    python tests/benchmarks/identification.py [--seeds 10] [--budget 40] [--workers 2]

Bar: >= 9 of 10 seeds for every (policy, truth).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

TRUTHS = ("second-order", "first-order", "sigmoid", "linear")
POLICIES = ("epsilon-greedy", "discriminate")


def one(policy: str, truth: str, seed: int, budget: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from abduce.controller.rehearse.simulated import SimulatedRun

    t0 = time.perf_counter()
    c = SimulatedRun(truth=truth, policy=policy, seed=seed, budget=budget, hypotheses=TRUTHS).run()
    probs = c.probabilities()
    summary = {h["name"]: h for h in c.summary()["hypotheses"]}
    xc = summary[truth]["parameters"].get("x_c")
    return {
        "policy": policy,
        "truth": truth,
        "seed": seed,
        "p_true": probs[truth],
        "leader": c.leader(),
        "xc_error": None if xc is None else abs(xc["mean"] - 0.6),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    jobs = [(p, t, s, args.budget) for p in POLICIES for t in TRUTHS for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, *zip(*jobs)))
    print(
        f"{'policy':<16}{'truth':<14}{'P(true)>=0.9':>14}{'|x_c err|<=0.05':>17}{'median P(true)':>16}"
        f"{'s/campaign':>12}"
    )
    for p in POLICIES:
        for t in TRUTHS:
            rows = [r for r in results if r["policy"] == p and r["truth"] == t]
            ok = sum(r["p_true"] >= 0.9 for r in rows)
            xc = [r for r in rows if r["xc_error"] is not None]
            xc_ok = f"{sum(r['xc_error'] <= 0.05 for r in xc)}/{len(xc)}" if xc else "n/a"
            med = sorted(r["p_true"] for r in rows)[len(rows) // 2]
            secs = sum(r["seconds"] for r in rows) / len(rows)
            print(f"{p:<16}{t:<14}{f'{ok}/{len(rows)}':>14}{xc_ok:>17}{med:>16.3f}{secs:>12.1f}")
    bad = [r for r in results if r["p_true"] < 0.9]
    for r in bad:
        print(
            f"  miss: {r['policy']} truth={r['truth']} seed={r['seed']} P(true)={r['p_true']:.3f} leader={r['leader']}"
        )


if __name__ == "__main__":
    main()
