"""Batches of q = 4 against one point per request: identification, measurements and requests, side by side.

For each true law among {second-order, first-order, sigmoid, linear} (hypotheses: all four; the
transition-1d simulator, x_c = 0.6, 501 candidates, 5% noise) and SEEDS seeds, runs the
``discriminate`` campaign with q = 1 to the README's budget (40) and with q = 4 to 1.3 x that
budget (52), and prints, per q: the identification rate after 40 and after 52 measurements
(identified: P(truth) >= 0.9 and, for a law with x_c, |x_c - 0.6| <= 0.05, as
tests/controller/rehearse/test_identification.py counts it), the requests it took, the median
measurements after which a campaign stayed identified to its end, and the seconds per campaign.
Last, rank by rank (the k-th quickest q = 4 campaign against the k-th quickest q = 1 one), how many
times the measurements q = 4 needs to be identified for good.

    python tests/benchmarks/batch_identification.py [--seeds 10] [--budget 40] [--q 4] [--workers 2] [--out F.json]

Must hold (issue 16): the q = 4 campaigns reach q = 1's rate in at most 1.3 x the measurements, in
fewer requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

TRUTHS = ("second-order", "first-order", "sigmoid", "linear")
CURVE = (8, 10, 12, 15, 20, 25, 30, 40, 52)  # the identification rate after this many measurements


def identified_at(record, truth: str) -> bool:
    """The identification test's criterion on one step record."""
    p = record.probabilities.get(truth, 0.0)
    xc = record.parameters.get(truth, {}).get("x_c")
    return p >= 0.9 and (xc is None or abs(xc[0] - 0.6) <= 0.05)


def one(truth: str, seed: int, q: int, budget: int, base: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from abduce.controller.rehearse.simulated import SimulatedRun

    t0 = time.perf_counter()
    c = SimulatedRun(truth=truth, seed=seed, budget=budget, q=q, hypotheses=TRUTHS).run()
    seconds = time.perf_counter() - t0
    ok = [identified_at(r, truth) for r in c.history]
    settled = next((n + 1 for n in range(len(ok)) if all(ok[n:])), None)  # measurements to stay identified
    return {
        "truth": truth,
        "seed": seed,
        "q": q,
        "ok": ok,
        "requests": len({r.request_id for r in c.history}),
        "requests_base": len({r.request_id for r in c.history[:base]}),
        "measurements": c.n,
        "settled": settled,
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--q", type=int, default=4)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="also write every campaign's results here (JSON)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    longer = round(1.3 * args.budget)
    jobs = [
        (t, s, q, args.budget if q == 1 else longer, args.budget)
        for q in (1, args.q)
        for t in TRUTHS
        for s in range(args.seeds)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, *zip(*jobs)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f)
    print(
        f"{'':<16}{'identified':>12}{'identified':>12}{'measure-':>10}{'requests':>10}{'requests':>10}"
        f"{'median n to':>13}{'s per':>9}"
    )
    print(
        f"{'':<16}{f'at n={args.budget}':>12}{f'at n={longer}':>12}{'ments':>10}{f'to n={args.budget}':>10}"
        f"{'in all':>10}{'identify':>13}{'campaign':>9}"
    )
    for q in (1, args.q):
        rows = [r for r in results if r["q"] == q]
        at = [r["ok"][args.budget - 1] for r in rows if len(r["ok"]) >= args.budget]
        late = [r["ok"][-1] for r in rows if len(r["ok"]) >= longer]
        settled = [r["settled"] for r in rows if r["settled"] is not None]
        print(
            f"{f'q = {q}':<16}{f'{sum(at)}/{len(at)}':>12}{(f'{sum(late)}/{len(late)}' if late else '-'):>12}"
            f"{statistics.mean(r['measurements'] for r in rows):>10.0f}"
            f"{statistics.mean(r['requests_base'] for r in rows):>10.1f}"
            f"{statistics.mean(r['requests'] for r in rows):>10.1f}"
            f"{(statistics.median(settled) if settled else float('nan')):>13.0f}"
            f"{statistics.mean(r['seconds'] for r in rows):>9.1f}"
        )
        reached = {n: [r["ok"][n - 1] for r in rows if len(r["ok"]) >= n] for n in CURVE}
        curve = "  ".join(f"n={n}: {sum(v)}/{len(v)}" for n, v in reached.items() if v)
        print(f"{'':<16}identified after {curve}")
        misses = [f"{r['truth']}/{r['seed']}" for r in rows if not r["ok"][-1]]
        if misses:
            print(f"{'':<16}not identified at the end: {', '.join(misses)}")
    print(ratios(results, args.q))


def ratios(results: list[dict], q: int) -> str:
    """Rank by rank, the measurements after which the ``q`` campaigns stayed identified over those of the
    one-point campaigns (the k-th quickest against the k-th quickest; never identified for good: the
    campaign's length + 1): the issue's "at most 1.3 x the measurements", campaign for campaign."""

    def settled(qq: int) -> list[int]:
        return sorted(r["settled"] or r["measurements"] + 1 for r in results if r["q"] == qq)

    pairs = list(zip(settled(1), settled(q)))
    if not pairs:
        return ""
    rs = [b / a for a, b in pairs]
    within = sum(r <= 1.3 for r in rs)
    return (
        f"rank by rank, q = {q} needs x the measurements of q = 1 to be identified for good: median "
        f"{statistics.median(rs):.2f}, largest {max(rs):.2f}; within 1.3 x for {within}/{len(rs)}"
    )


if __name__ == "__main__":
    main()
