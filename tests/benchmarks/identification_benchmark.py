"""The identification benchmark: every family of deploy/sweeps/identification.toml on Dask, or some of them.

Prints the campaigns and the time estimate first, then runs the sweep
(:func:`abduce.controller.rehearse.sweep.run_sweep`) and prints the README's table
(``summary.md`` in the output folder)::

    python tests/benchmarks/identification_benchmark.py [--out DIR] [--family NAME ...]
        [--campaigns N] [--budget N] [--policy NAME ...] [--workers 2] [--scheduler ADDR]
        [--estimate-from RESULTS.csv] [--dry-run]

``--family`` runs one family alone (repeatable); ``--campaigns`` caps the
campaigns per policy (the first ones: the same truths as the full run);
``--budget`` replaces every family's budget and ``--policy`` keeps only the
policies named (a smoke run). ``--dry-run``
prints the estimate and stops.

The estimate: per family and policy, campaigns x CPU seconds per measurement x
budget, over the workers. CPU seconds per measurement come from
``--estimate-from`` (a results.csv of an earlier run, e.g. one family at a
few campaigns; its ``cpu_seconds`` per campaign, per family and policy where
it has them, else per policy), else from ``MEASURED`` below.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "sweeps" / "identification.toml"

# CPU seconds per measurement of one campaign, by policy and space (finite: a grid of candidates; box: the
# continuous space), with one thread per campaign on the 2-core machine: the median over the campaigns of
# runs of this config (MEASURED_ON). discriminate: its full run (360 campaigns, the machine otherwise
# nearly idle); the other policies: the reduced run (6 campaigns a family), half of it beside a test run,
# which inflated discriminate's figures there by 12% (finite) and 21% (box) against the full run's, so
# theirs are upper bounds. CPU time; the wall time under other load grows with it (1.5-3x at load
# average 2-6). Used when no --estimate-from is given.
MEASURED_ON = "discriminate: its full run, 2026-12-03; the others: the reduced run of 2026-12-02"
MEASURED = {
    ("discriminate", "finite"): 0.39,
    ("discriminate", "box"): 0.77,
    ("random", "finite"): 0.43,
    ("random", "box"): 0.47,
    ("epsilon-greedy", "finite"): 0.32,
    ("epsilon-greedy", "box"): 0.50,
    ("grid", "finite"): 0.43,
    ("grid", "box"): 0.48,
    ("plain-gp", "finite"): 0.55,
    ("plain-gp", "box"): 0.61,
}


def estimate_table(config, results_csv: Path | None):
    """DataFrame (family, policy, space, campaigns, budget, seconds_per_campaign, seconds)."""
    import pandas as pd

    from abduce.controller.rehearse.sweep import estimate

    if results_csv is not None:
        return estimate(config, pd.read_csv(results_csv))
    rows = [
        {"problem": "-", "policy": p, "space": space, "campaign": i, "n": 1, "cpu_seconds": s}
        for i, ((p, space), s) in enumerate(MEASURED.items())
    ]
    return estimate(config, pd.DataFrame(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, default=Path("runs/sweeps/identification"))
    ap.add_argument("--family", action="append", default=None, help="run only this family (repeatable)")
    ap.add_argument("--campaigns", type=int, default=None, help="at most this many campaigns per policy and family")
    ap.add_argument("--budget", type=int, default=None, help="every family's budget (a smoke run)")
    ap.add_argument("--policy", action="append", default=None, help="run only this policy (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="a running Dask scheduler (default: a LocalCluster)")
    ap.add_argument("--estimate-from", type=Path, default=None, help="results.csv whose cpu_seconds give the costs")
    ap.add_argument("--dry-run", action="store_true", help="print the estimate and stop")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: one thread per campaign (README, "Speed")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from abduce.controller.errors import AbduceError
    from abduce.controller.rehearse.sweep import run_sweep
    from abduce.controller.rehearse.sweep_config import load_sweep

    try:
        config = load_sweep(args.config)
        if args.family:
            config = config.only(args.family)
        if args.campaigns or args.budget or args.policy:
            config = config.reduced(args.campaigns, args.budget, args.policy)
    except AbduceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cells = config.cells()
    est = estimate_table(config, args.estimate_from)
    per_family = est.groupby("family", sort=False).agg(
        campaigns=("campaigns", "sum"), budget=("budget", "first"), seconds=("seconds", "sum")
    )
    print(per_family.assign(core_minutes=(per_family["seconds"] / 60).round(1)).drop(columns="seconds").to_string())
    total = est["seconds"].sum() / args.workers
    print(
        f"{len(cells)} campaigns; estimate {total / 3600:.2f} h on {args.workers} dedicated cores "
        f"({est['seconds'].sum() / 3600:.2f} core-hours"
        f"{', costs from ' + str(args.estimate_from) if args.estimate_from else ', costs measured on ' + MEASURED_ON})"
    )
    if args.dry_run:
        return 0
    t0 = time.perf_counter()
    step = max(1, len(cells) // 50)
    run_sweep(
        config,
        args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=lambda done, n: (
            print(f"  {done}/{n} campaigns, {time.perf_counter() - t0:.0f} s", flush=True)
            if done % step == 0 or done == n
            else None
        ),
    )
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min; outputs in {args.out}")
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
