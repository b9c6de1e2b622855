"""Choosing a batch of q points on a candidate set: abduce's kriging believer against BoTorch's
``optimize_acqf_discrete`` with a q-batch Monte Carlo acquisition.

Both choose q = 4 points for the integrated-variance criterion (``nipv``) of one fitted hypothesis
(second-order, transition-1d, after 20 seeded measurements): abduce through ``Campaign.ask(q=4)``
(:mod:`abduce.controller.core.batch`: closed-form scores on the cached factor, each later point after a
fantasised reading at the earlier ones), BoTorch through ``optimize_acqf_discrete(qNegIntegratedPosteriorVariance,
q=4, choices=unmeasured candidates)`` (sequential conditioning through ``X_pending`` and fantasy models),
with the same reference points. A batch's quality is exact and needs no reading: the mean posterior
variance over the reference points after conditioning on all four points (lower is better; the
variance of a GP does not depend on the values read). Prints, per candidate set, the quality and the
seconds of each (median of REPEATS), and the variance removed per second.

    python tests/benchmarks/batch_selection.py [--grids 501 2001] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch


def campaign_at(grid: int, n: int):
    from abduce.controller.core.campaign import Campaign, CampaignSettings
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.core.space import Space
    from abduce.controller.decide.stopping import Budget
    from abduce.hypotheses.library import BUILTIN
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(grid=grid, seed=0)
    c = Campaign(
        Space.finite(sim.candidates()),
        [BUILTIN["second-order"]],
        "epsilon-greedy",
        "nipv",
        Budget(10 * n),
        seed=0,
        settings=CampaignSettings(reference_size=512, none_prior=0.0),
    )
    while c.n < n:
        r = c.ask()
        c.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    return c


def iv_after(c, batch_u: torch.Tensor) -> float:
    """Mean latent posterior variance (physical units) over the campaign's reference points after
    conditioning the hypothesis on its data plus ``batch_u`` (``q x d`` unit points): one fresh factor."""
    from abduce.hypotheses.posterior import CandidatePosterior

    slot = c.belief.slots[0]
    u, y = c._data_tensors()
    model = slot.fit.model(u, y)
    uu = torch.cat([u, batch_u])
    vv = torch.cat([y / slot.fit.frame.s, torch.zeros(len(batch_u), dtype=y.dtype)])  # values: irrelevant
    ref = c._points[c._reference_idx]
    post = CandidatePosterior(model, uu, vv, ref)
    return float(post.var.mean())


def abduce_batch(c, q: int) -> torch.Tensor:
    c._pending = None  # ask afresh each repeat (same state, same answer)
    r = c.ask(q=q)
    c._pending, c._open = None, []
    return c.space.to_unit(torch.tensor(r.points, dtype=torch.float64))


def botorch_batch(c, q: int) -> torch.Tensor:
    from botorch.acquisition.active_learning import qNegIntegratedPosteriorVariance
    from botorch.optim import optimize_acqf_discrete

    u, y = c._data_tensors()
    model = c.belief.slots[0].fit.model(u, y)
    acq = qNegIntegratedPosteriorVariance(model, mc_points=c._points[c._reference_idx])
    free = torch.ones(len(c._points), dtype=torch.bool)
    free[c._measured_idx] = False
    with torch.no_grad():
        cand, _ = optimize_acqf_discrete(acq, q=q, choices=c._points[free], max_batch_size=256)
    return cand


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", type=int, nargs="+", default=[501, 2001])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--q", type=int, default=4)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    print(f"{'candidates':>10}{'method':>30}{'IV now':>11}{'IV after':>11}{'seconds':>10}{'IV removed/s':>14}")
    for grid in args.grids:
        c = campaign_at(grid, args.n)
        now = iv_after(c, torch.empty(0, 1, dtype=torch.float64))
        for name, choose in (
            ("kriging believer (abduce)", abduce_batch),
            ("optimize_acqf_discrete+qNIPV", botorch_batch),
        ):
            times, batch = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                batch = choose(c, args.q)
                times.append(time.perf_counter() - t0)
            secs = statistics.median(times)
            after = iv_after(c, batch)
            print(f"{grid:>10}{name:>30}{now:>11.3g}{after:>11.3g}{secs:>10.3f}{(now - after) / secs:>14.3g}")


if __name__ == "__main__":
    main()
