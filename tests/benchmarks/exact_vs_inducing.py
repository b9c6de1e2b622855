"""Where exact inference gives way to inducing points: fit and conditioning cost, and agreement, against n.

For each n, fits one structured GP (second-order law, transition-1d data with
5% noise) both ways from the same start (one L-BFGS start, ``--maxiter``
iterations), then conditions it on the data at ``--candidates`` points, and
prints side by side: the time of one likelihood evaluation with its gradient,
the fit, the conditioning, the candidate factor's memory, and how far the two
posteriors and fitted ``x_c`` are apart (in units of the data's range). The
campaign's default switch point (``CampaignSettings.exact_max_n``) is chosen
from this table: where the exact fit costs several times the inducing one and
the two agree to well under the noise.

    python tests/benchmarks/exact_vs_inducing.py [--sizes 500,1000,2000,4000] [--inducing 512]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def row(n: int, m: int, candidates: int, maxiter: int) -> dict:
    import torch

    from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
    from abduce.hypotheses.library import BUILTIN
    from abduce.hypotheses.posterior import CandidatePosterior
    from abduce.hypotheses.sparse import SparseCandidatePosterior, TitsiasMarginalLogLikelihood, inducing_points
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(seed=0)
    u = torch.rand(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    y = torch.tensor(sim.measure(u.numpy()))
    cand = torch.linspace(0, 1, candidates, dtype=torch.float64).unsqueeze(-1)
    settings = FitSettings(restarts=1, maxiter=maxiter)
    out: dict = {}
    for label, inducing in (("exact", 0), ("inducing", m)):
        t0 = time.perf_counter()
        fit = fit_hypothesis(
            FitProblem(BUILTIN["second-order"], u, y, (0.0,), (1.0,), seed=0, inducing=inducing), settings
        )
        out[f"{label}_fit_s"] = time.perf_counter() - t0
        model = fit.model(u, y)
        model.train()
        from gpytorch.mlls import ExactMarginalLogLikelihood

        mll = (
            ExactMarginalLogLikelihood(model.likelihood, model)
            if not inducing
            else TitsiasMarginalLogLikelihood(model.likelihood, model, inducing_points(u, m))
        )
        t0 = time.perf_counter()
        for _ in range(3):
            model.zero_grad()
            (-mll(model(u), y / fit.frame.s)).backward()
        out[f"{label}_eval_ms"] = (time.perf_counter() - t0) / 3 * 1e3
        model.eval()
        t0 = time.perf_counter()
        v = y / fit.frame.s
        post = (
            CandidatePosterior(model, u, v, cand)
            if not inducing
            else SparseCandidatePosterior(model, u, v, cand, z=inducing_points(u, m))
        )
        out[f"{label}_condition_s"] = time.perf_counter() - t0
        rows = n if not inducing else m
        out[f"{label}_factor_gb"] = rows * candidates * 8 / 2**30
        out[f"{label}_mean"] = post.mean
        out[f"{label}_xc"] = float(model.physics.value("x_c").detach())
    scale = float(y.max() - y.min())
    out["mean_gap"] = float((out["exact_mean"] - out["inducing_mean"]).abs().max()) / scale
    out["xc_gap"] = abs(out["exact_xc"] - out["inducing_xc"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,1000,2000,4000")
    ap.add_argument("--inducing", type=int, default=512)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--maxiter", type=int, default=40)
    args = ap.parse_args()
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, m = {args.inducing}, "
        f"N = {args.candidates}, one start, maxiter {args.maxiter}"
    )
    print(
        f"{'n':>6}{'eval ms exact':>15}{'inducing':>10}{'ratio':>7}{'fit s exact':>13}{'inducing':>10}{'ratio':>7}"
        f"{'condition s':>13}{'inducing':>10}{'factor GB':>11}{'inducing':>10}{'max |dmean|':>13}{'|dx_c|':>9}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        r = row(n, args.inducing, args.candidates, args.maxiter)
        print(
            f"{n:>6}{r['exact_eval_ms']:>15.1f}{r['inducing_eval_ms']:>10.1f}"
            f"{r['exact_eval_ms'] / r['inducing_eval_ms']:>7.1f}"
            f"{r['exact_fit_s']:>13.2f}{r['inducing_fit_s']:>10.2f}{r['exact_fit_s'] / r['inducing_fit_s']:>7.1f}"
            f"{r['exact_condition_s']:>13.2f}{r['inducing_condition_s']:>10.2f}"
            f"{r['exact_factor_gb']:>11.3f}{r['inducing_factor_gb']:>10.3f}{r['mean_gap']:>13.4f}{r['xc_gap']:>9.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
