"""The yardstick for abduction's families: the same campaigns with the right composed law declared from the start.

The abduction benchmark (``deploy/sweeps/abduction.toml``) asks how often a campaign that is *not* given the
true law proposes it and reaches P >= 0.9 within its budget. How often can the data of those samples say so at
all? This script reruns each family's campaigns (the same truths, noise and seeds, built by the sweep's own
:class:`~abduce.controller.rehearse.rehearsal.Rehearsal`) with the family's ``composed`` law declared beside
the hypothesis set before the first measurement and ``propose = "off"``:

* ``--weight equal``: the composed law weighs as much as each declared law (a scientist who thought of it);
  ``--weight prior``: it weighs what the complexity prior gives a proposal (``composition_cost / M_depth``,
  :func:`abduce.hypotheses.grammar.prior_weight`), so only the missing proposal round differs from abduction;
* ``--design adaptive``: the sweep's ``discriminate`` campaign (``n_init`` space-filling points, then the
  acquisition); ``--design space-filling``: all of the budget in the space-filling initial design.

Prints per family: campaigns, the share where the composed law reached P >= 0.9 at some step (the benchmark's
"right at p >= 0.9") and the median step it first did; ``--campaigns`` lists each campaign.

    python tests/benchmarks/abduction_reference.py [--families two-transitions] [--weight equal|prior]
        [--design adaptive|space-filling] [--campaigns] [--only 0,3,5] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")

CONFIG = "deploy/sweeps/abduction.toml"


def one(job: tuple[str, str, int, str, str]) -> tuple[str, int, float, float]:
    """One campaign: ``(family, index, the first n at which the composed law had P >= 0.9 (NaN: never),
    its P at the end)``."""
    import torch

    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.rehearse.sweep import rehearsal_of
    from abduce.controller.rehearse.sweep_config import load_sweep
    from abduce.hypotheses.belief import Slot
    from abduce.hypotheses.grammar import depth_counts, enumerate_compositions, prior_weight

    torch.set_num_threads(1)
    config, family, index, weight, design = job
    cell = next(c for c in load_sweep(config).cells() if c["problem"]["name"] == family and c["campaign"] == index)
    p = cell["problem"]
    n_init = cell["budget"] if design == "space-filling" else cell["n_init"]
    campaign, instrument = rehearsal_of(cell, n_init=n_init, propose="off").build()
    declared = [slot.hypothesis for slot in campaign.belief.slots]
    every = enumerate_compositions(declared, campaign.space.d, cell["propose_depth"])
    law = next(h for h in every if h.name == p["composed"])
    w = 1.0 if weight == "equal" else prior_weight(law, depth_counts(every), cell["composition_cost"])
    campaign._admit(Slot(law), w)  # declared beside the set, before the first measurement
    first, last = [], [math.nan]

    def record(r) -> None:
        prob = r.probabilities.get(law.name, math.nan)
        last[0] = prob
        if prob >= 0.9 and not first:
            first.append(r.step + 1)

    run_campaign(campaign, instrument, [record])
    return family, index, first[0] if first else math.nan, last[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--families", default="two-transitions,sloped-transition,curved-phase-boundary")
    ap.add_argument("--weight", choices=("equal", "prior"), default="equal")
    ap.add_argument("--design", choices=("adaptive", "space-filling"), default="adaptive")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--campaigns", action="store_true", help="print every campaign")
    ap.add_argument("--only", default=None, help="only these campaign indices of each family (comma-separated)")
    args = ap.parse_args()
    from abduce.controller.rehearse.sweep_config import load_sweep

    families = args.families.split(",")
    cells = [c for c in load_sweep(args.config).cells() if c["problem"]["name"] in families]
    missing = set(families) - {c["problem"]["name"] for c in cells}
    if missing:
        raise SystemExit(f"no such family in {args.config}: {', '.join(sorted(missing))}")
    if args.only:
        only = {int(i) for i in args.only.split(",")}
        absent = only - {c["campaign"] for c in cells}
        if absent:
            raise SystemExit(f"no campaign {sorted(absent)} in {', '.join(families)} (--only)")
        cells = [c for c in cells if c["campaign"] in only]
    jobs = [(args.config, c["problem"]["name"], c["campaign"], args.weight, args.design) for c in cells]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, jobs))
    print(f"composed law declared from the start (weight {args.weight}, design {args.design}), {args.config}")
    print("| family | campaigns | composed law at P >= 0.9 (any step) | median n90 |")
    print("|---|---|---|---|")
    for family in families:
        rows = [r for r in results if r[0] == family]
        reached = [r[2] for r in rows if not math.isnan(r[2])]
        n90 = statistics.median(reached) if reached else math.nan
        print(f"| {family} | {len(rows)} | {len(reached) / len(rows):.2f} | {n90:.0f} |")
    if args.campaigns:
        for family, index, n90, p_end in sorted(results):
            print(f"{family} {index}: first P >= 0.9 at n = {n90}, P at the end {p_end:.3f}")


if __name__ == "__main__":
    main()
