"""Batched against one-by-one fitting of K hypotheses (default 4), against n: where batching pays.

For each n, plans the fits of the four transition laws (second-order,
first-order, linear, sigmoid) on transition-1d data with the campaign's fit
settings, cold (screened starts) and warm (from a fit on 90% of the points,
as a campaign's refits are), then times, side by side in one run, all starts
fitted one by one (SciPy L-BFGS-B per start, ``fit_hypothesis``) and all
together (``fit_hypotheses_batched``), best of ``--repeats``, and checks that
the two agree. ``CampaignSettings.batch_fit_below`` is chosen from this table.

    python tests/benchmarks/batched_fit.py [--sizes 20,50,100,200,400] [--repeats 2] [--k 4]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the campaign commands run (one thread, BLAS too)

NAMES = ("second-order", "first-order", "linear", "sigmoid")


def row(n: int, warm: bool, repeats: int, names: tuple[str, ...] = NAMES) -> dict:
    import torch

    from abduce.hypotheses.batched import fit_hypotheses_batched
    from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis, plan_fit
    from abduce.hypotheses.library import BUILTIN
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(seed=0)
    u = torch.rand(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    y = torch.tensor(sim.measure(u.numpy()))
    settings = FitSettings()
    cut = max(5, int(0.9 * n))
    warm_fits = (
        {h: fit_hypothesis(FitProblem(BUILTIN[h], u[:cut], y[:cut], (0.0,), (1.0,), seed=1), settings) for h in names}
        if warm
        else {}
    )
    one, many = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        single = [
            fit_hypothesis(FitProblem(BUILTIN[h], u, y, (0.0,), (1.0,), warm=warm_fits.get(h), seed=2), settings)
            for h in names
        ]
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plans = [
            plan_fit(FitProblem(BUILTIN[h], u, y, (0.0,), (1.0,), warm=warm_fits.get(h), seed=2), settings)
            for h in names
        ]
        batched = fit_hypotheses_batched(plans, settings)
        many.append(time.perf_counter() - t0)
    gap = max(abs(a.log_posterior - b.log_posterior) for a, b in zip(single, batched))
    return {"one_s": min(one), "batched_s": min(many), "starts": sum(f.starts for f in single), "gap": gap}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,50,100,200,400")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--k",
        type=int,
        default=4,
        choices=range(1, 5),
        help="hypotheses fitted (1: one hypothesis's starts batched, as an epsilon-greedy step's refit)",
    )
    args = ap.parse_args()
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, K = {args.k}, campaign fit settings, "
        f"best of {args.repeats}"
    )
    print(
        f"{'n':>6}{'start':>7}{'starts':>8}{'one by one s':>14}{'batched s':>11}{'speed-up':>10}"
        f"{'max |d log post|':>18}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        for warm in (False, True):
            r = row(n, warm, args.repeats, NAMES[: args.k])
            print(
                f"{n:>6}{'warm' if warm else 'cold':>7}{r['starts']:>8}{r['one_s']:>14.2f}{r['batched_s']:>11.2f}"
                f"{r['one_s'] / r['batched_s']:>10.2f}{r['gap']:>18.2e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
