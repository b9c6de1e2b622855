"""Abduction's cost against a decision's: one proposal round at depth 1 and 2 vs one decision at n = 50.

The issue's goal: enumerating and screening proposals at depth 2 over the six built-in laws costs at most
10 decision latencies at n = 50. This script measures both on one campaign, in one process:

1. a ``discriminate`` campaign over ``--laws`` (default the six built-ins: second-order, first-order,
   sigmoid, linear, constant, curie-weiss) measures a two-transition sample (transition-1d, law
   ``two-transitions``, ``x_c`` 0.75, ``x_c2`` 0.3, ``beta`` 0.3, 5% noise, ``--grid`` candidates) with
   ``propose = "off"`` up to ``n = --n - --decisions``;
2. the next ``--decisions`` steps, each ``tell`` of a measurement plus the ``ask`` for the next, are the
   decision latencies (refits as the campaign schedules them: every step below n = 100);
3. at ``n = --n``, one proposal round (:meth:`abduce.controller.core.abduction.Abduction.run`, as ``tell``
   runs it: enumerate, screen, check, fit the best ``propose_fits`` in full) is timed ``--rounds`` times
   at each depth, with ``propose = "suggest"`` and a fresh :class:`Abduction` each time so the campaign
   is not changed. The first round of each depth also pays the once-per-process range check
   (:func:`abduce.hypotheses.check.check_once`) of the laws it fits; it is printed apart (``first``).
   Its parts are timed apart too: the enumeration, the screen (:func:`abduce.hypotheses.proposals.screen`)
   and the rest (checks and full fits).

Prints one table: per depth, candidates, medians of the round and its parts, the decision median, and the
ratio round / decision (the goal: <= 10 at depth 2). ``--profile`` adds the top functions of one depth-2
round by cumulative time (cProfile).

    python tests/benchmarks/abduction_latency.py [--n 50] [--decisions 5] [--rounds 3] [--grid 201] [--draws 1024]
    python tests/benchmarks/abduction_latency.py --laws second-order,first-order,sigmoid,linear --profile
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

SIX = ("second-order", "first-order", "sigmoid", "linear", "constant", "curie-weiss")


def build(laws: tuple[str, ...], budget: int, grid: int, seed: int):
    """A propose-off discriminate campaign on a two-transition sample, and its instrument."""
    import numpy as np

    from abduce.controller.core.campaign import Campaign
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.core.settings import CampaignSettings
    from abduce.controller.core.space import Space
    from abduce.controller.decide.stopping import Budget
    from abduce.hypotheses.library import BUILTIN
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(law="two-transitions", x_c=0.75, x_c2=0.3, beta=0.3, noise_fraction=0.05, grid=grid, seed=seed)
    campaign = Campaign(
        Space.finite(sim.candidates()),
        [BUILTIN[name] for name in laws],
        "discriminate",
        None,
        Budget(budget),
        seed=seed,
        settings=CampaignSettings(propose="off"),
    )

    def measure(request):
        return Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))

    return campaign, measure


def one_round(campaign, depth: int, draws: int) -> tuple[float, float, float, int, int]:
    """Seconds of one round at ``depth`` (total, enumeration, screen), the candidates it screened and the
    proposals it made (suggested: the campaign is left as it was)."""
    import dataclasses

    from abduce.controller.core import abduction as abduction_module
    from abduce.controller.core.abduction import Abduction

    campaign.settings = dataclasses.replace(
        campaign.settings, propose="suggest", propose_depth=depth, propose_draws=draws
    )
    timings = {"enumerate": 0.0, "screen": 0.0, "candidates": 0}
    real_enumerate, real_screen = abduction_module.enumerate_compositions, abduction_module.screen

    def enumerate_timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = real_enumerate(*args, **kwargs)
        timings["enumerate"] += time.perf_counter() - t0
        return out

    def screen_timed(candidates, *args, **kwargs):
        t0 = time.perf_counter()
        out = real_screen(candidates, *args, **kwargs)
        timings["screen"] += time.perf_counter() - t0
        timings["candidates"] = len(candidates)
        return out

    abduction_module.enumerate_compositions, abduction_module.screen = enumerate_timed, screen_timed
    try:
        t0 = time.perf_counter()
        found = Abduction().run(campaign, campaign.n - 1, "benchmark", {})
        total = time.perf_counter() - t0
    finally:
        abduction_module.enumerate_compositions, abduction_module.screen = real_enumerate, real_screen
        campaign.settings = dataclasses.replace(campaign.settings, propose="off")
    return total, timings["enumerate"], timings["screen"], int(timings["candidates"]), len(found)


def main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    laws = tuple(args.laws.split(","))
    campaign, measure = build(laws, args.n + 1, args.grid, args.seed)
    t_start = time.perf_counter()
    while campaign.n < args.n - args.decisions:
        campaign.tell(measure(campaign.ask()))
    request = campaign.ask()
    decisions = []
    while campaign.n < args.n:
        t0 = time.perf_counter()
        campaign.tell(measure(request))
        request = campaign.ask()
        decisions.append(time.perf_counter() - t0)
    setup = time.perf_counter() - t_start
    decision = statistics.median(decisions)
    last = campaign.history[-1]
    lead = max(last.probabilities, key=last.probabilities.__getitem__)
    none = last.none["probability"] if last.none else float("nan")
    print(
        f"campaign: {len(laws)} laws ({', '.join(laws)}), two-transitions truth, n = {campaign.n}, "
        f"{args.grid} candidates; {setup:.1f} s to get there; leader {lead} "
        f"P = {last.probabilities[lead]:.3f}, none of these P = {none:.3f}"
    )
    print(
        f"decision (tell -> next ask) at n = {args.n - args.decisions + 1}..{args.n}: "
        f"median {decision * 1e3:.0f} ms over {len(decisions)} (min {min(decisions) * 1e3:.0f}, "
        f"max {max(decisions) * 1e3:.0f})"
    )
    print()
    header = (
        f"{'depth':>5} {'candidates':>10} {'first (s)':>9} {'median (s)':>10} {'enumerate (ms)':>14} "
        f"{'screen (s)':>10} {'checks+fits (s)':>15} {'decision (s)':>12} {'round/decision':>14} {'proposals':>9}"
    )
    print(header)
    print("-" * len(header))
    for depth in (1, 2):
        rows = [one_round(campaign, depth, args.draws) for _ in range(args.rounds)]
        first = rows[0][0]
        steady = rows[1:] or rows
        total = statistics.median(r[0] for r in steady)
        enum = statistics.median(r[1] for r in steady)
        scr = statistics.median(r[2] for r in steady)
        print(
            f"{depth:>5} {rows[0][3]:>10} {first:>9.2f} {total:>10.2f} {enum * 1e3:>14.1f} {scr:>10.2f} "
            f"{total - enum - scr:>15.2f} {decision:>12.3f} {total / decision:>14.1f} {rows[0][4]:>9}"
        )
    print()
    print(f"screen: {args.draws} prior draws per candidate (propose_draws); the round fits the best 6 in full")
    print("goal: depth 2 round <= 10 decisions at n = 50 (median round, checks cached; 'first' pays them once)")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        one_round(campaign, 2, args.draws)
        profiler.disable()
        print()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="measurements at the round (default 50)")
    parser.add_argument("--decisions", type=int, default=5, help="decisions timed, ending at n (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="proposal rounds timed per depth (default 3)")
    parser.add_argument("--grid", type=int, default=201, help="candidate points (default 201)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--laws", default=",".join(SIX), help="the campaign's laws, comma-separated (default: six)")
    parser.add_argument("--draws", type=int, default=1024, help="the screen's prior draws (propose_draws)")
    parser.add_argument("--profile", action="store_true", help="profile one depth-2 round (cProfile, top 30)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse())
