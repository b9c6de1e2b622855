"""Head to head with GPax: the hypothesis-learning paper's own loop against abduce's policies, one run.

On the same problem, with the same seeds, the same simulator noise stream,
the same initial design, the same candidate grid and the same measurement
budget, runs

- ``gpax eps-greedy``: GPax's hypothesis-learning loop (``gpax.hypo``: its
  ``sample_next`` epsilon-greedy bandit over average rewards, ``step`` fitting
  the chosen structured GP by NUTS and returning its predictive variance over
  the unmeasured candidates, ``update_record`` for the running rewards), with
  the loop around them written as the GPax hypothesis-learning example does
  it (see "The GPax loop" below);
- ``abduce epsilon-greedy`` and ``abduce discriminate``: abduce campaigns
  (:class:`abduce.controller.rehearse.simulated.SimulatedRun`), driven ask/tell;

and prints per-step time (median), total time, the fraction of seeds whose
winner is the true hypothesis, the reconstruction error against the truth,
and the ratios (GPax median step / abduce median step; identifications side
by side). Results go to ``--out``: ``results.csv`` (one row per seed x
method), ``summary.csv`` (one row per method) and ``table.txt``.

    pip install -e '.[peers]'
    python tests/benchmarks/gpax_head_to_head.py [--seeds 5] [--budget 20] [--grid 101]
        [--warmup 200 --samples 200] [--epsilon 0.1] [--out DIR]

The problem. The ``transition-1d`` simulator (x_c = 0.6, beta = 0.5, noise 5%
of the amplitude), truth ``second-order``; hypotheses ``second-order``,
``first-order``, ``linear``, ``sigmoid``. GPax's structured GPs get the same
mean functions (written in jax.numpy below, with the kinks smoothed exactly as
:mod:`abduce.hypotheses.library` smooths them) and the same priors and bounds
on the same parameters, and the same residual kernel (Matern-5/2 with a scale)
with abduce's kernel and noise priors (:class:`abduce.hypotheses.model.KernelPriors`);
a log-normal prior truncated to bounds is sampled as a truncated normal on the
logarithm (the same distribution). abduce fits in a relative frame: inputs
scaled to the unit interval, outputs divided by ``s = max|y|`` of the data at
the time of the fit. GPax is given the same scaled data (the space here is
[0, 1], so x is unchanged; y is divided by ``s`` before every fit and
predictions are multiplied back), so the priors mean the same thing to both.
GPax runs in float64 (``gpax.utils.enable_x64``, as its examples do), as
abduce does.

Noise and design. Each method gets its own simulator built by
``SimulatedRun(seed=seed, ...).build()``: the same seed gives the same noise
stream, so every method's k-th measurement carries the same noise draw. The
initial design (``n_init`` points) is the abduce campaign's for that seed, for
every method: GPax's first ``n_init`` points are the first ``n_init``
requests of an abduce campaign with that seed.

The GPax loop (GPax 0.1.9 ships the pieces, not the loop; this follows its
hypothesis-learning example, arXiv 2112.06649):

- warm-up: each hypothesis drives one step, in order (as abduce's
  epsilon-greedy does with ``warmup = 1``);
- then ``gpax.hypo.sample_next(record[:, 1], "eps-greedy", eps=epsilon)``
  picks a hypothesis (``--epsilon``, default 0.1 like abduce's; GPax's own
  default is 0.4);
- ``gpax.hypo.step(..., gp_wrap=True, gp_kernel="Matern")`` fits it on all the
  data and returns its predictive variance over the unmeasured candidates;
  the next point is its argmax;
- reward: +1 when the median of that variance (in the data's units, so a
  change of ``s`` does not count) is below the previous step's, else -1 (the
  example's rule; no reward for the very first step);
  ``gpax.hypo.update_record`` keeps the running average. So the hypothesis
  that drives the first adaptive step (the first listed, here the truth) is
  never rewarded for its warm-up turn; read the identification column with
  that in mind.
- winner (GPax defines none; the paper's reading): the hypothesis with the
  highest average reward at the end, ties to the most chosen, then to the
  first listed (:func:`gpax_winner`). Its posterior mean for the error is from
  a final NUTS fit of the winner on all the data (counted in the total time,
  not in the per-step times; abduce's last ``tell`` is counted the same way).

For abduce the winner is ``campaign.leader()`` (highest posterior
probability) and the error is
:func:`abduce.controller.rehearse.reconstruction.score`'s ``relative`` (RMS error of the
leader's posterior mean against the noise-free truth over the grid, relative
to the truth's range); GPax's error is the same formula
(:func:`relative_rmse`).

A step is one decision with n points in hand: abduce's ``tell`` of the n-th
measurement plus the ``ask`` for the next; GPax's ``step`` plus the argmax.
There are ``budget - n_init`` of them per campaign.

NUTS settings. The paper and GPax's ``step`` default to 2000 warm-up and 2000
samples per fit (one chain); ARCHITECTURE.md measured a median of 16-25 s a
step at n ~ 30 with those here. The defaults below (200/200) cost about a
tenth of that so that the default run (5 seeds, budget 20) finishes in about
20 minutes on this 2-core machine (23.5 min measured with other jobs loading
it; results in deploy/benchmarks/gpax/); the GPax per-step times they give are
therefore a lower bound on the paper's setting. GPax's ``step`` shows numpyro's
progress bar (it does not pass ``progress_bar``); ``TQDM_DISABLE=1`` only hides
it.

Threads. JAX on this 2-core machine can stall for minutes when left to its
own thread pools next to torch's. Before jax is imported :func:`pin_threads` sets
(unless already set) ``XLA_FLAGS=--xla_force_host_platform_device_count=1
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` (one host
device, single-threaded Eigen in XLA's CPU backend), ``OMP_NUM_THREADS=1``
and ``OMP_WAIT_POLICY=PASSIVE``, and torch runs with one thread: both sides
get one core, so the comparison is of algorithms, not of thread pools, and
other jobs on the machine keep the second core.
"""

from __future__ import annotations

import os


def pin_threads() -> None:
    """One host device and one thread for XLA, one OpenMP thread, passive waits (unless already set).

    Must run before jax (and torch) are imported to take effect: it runs first thing when this file is
    executed, and again at the top of :func:`main` for callers that import the module (it only sets
    what is unset). Importing the module (the tests do) changes no environment.
    """
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")


if __name__ == "__main__":
    pin_threads()

import argparse  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

TRUTH = "second-order"
HYPOTHESES = ("second-order", "first-order", "linear", "sigmoid")
ABDUCE_POLICIES = ("epsilon-greedy", "discriminate")
GPAX = "gpax eps-greedy"
INSTALL_HINT = "gpax is not installed: install the peers extra: pip install -e '.[peers]'"


# ------------------------------------------------------------------ pure helpers (no gpax, no torch)


def gpax_winner(record: np.ndarray) -> int:
    """The hypothesis GPax's bandit settles on: highest average reward, ties to the most chosen, then the first.

    Args:
        record: ``K x 2`` as ``gpax.hypo.update_record`` keeps it: times rewarded, average reward.
    """
    record = np.asarray(record, dtype=float)
    return min(range(len(record)), key=lambda i: (-record[i, 1], -record[i, 0], i))


def gpax_reward(previous: float | None, current: float) -> float | None:
    """+1 when the median predictive variance fell since the previous step, else -1; None on the first step."""
    if previous is None or not (math.isfinite(previous) and math.isfinite(current)):
        return None
    return 1.0 if current < previous else -1.0


def relative_rmse(mean: np.ndarray | None, truth: np.ndarray | None) -> float:
    """RMS error of ``mean`` against ``truth``, relative to the truth's range (score's ``relative``)."""
    if mean is None or truth is None:
        return float("nan")
    span = float(np.ptp(truth)) or 1.0
    return float(np.sqrt(np.mean((np.asarray(mean) - np.asarray(truth)) ** 2)) / span)


def summarise(rows: Sequence[dict]) -> list[dict]:
    """One row per method (in first-seen order): seeds, identified, medians of step/total time and error."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        steps = [s for r in mine for s in r["step_times"]]
        errors = [r["recon_error"] for r in mine if math.isfinite(r["recon_error"])]
        out.append(
            {
                "method": m,
                "seeds": len(mine),
                "identified": sum(bool(r["identified"]) for r in mine),
                "identified_frac": sum(bool(r["identified"]) for r in mine) / len(mine),
                "median_step_s": statistics.median(steps) if steps else float("nan"),
                "median_total_s": statistics.median(r["total_s"] for r in mine),
                "median_recon_error": statistics.median(errors) if errors else float("nan"),
            }
        )
    return out


def ratios(summary: Sequence[dict], peer: str = GPAX) -> list[dict]:
    """For each method but ``peer``: peer's median step / its median step, and identifications side by side."""
    by = {s["method"]: s for s in summary}
    if peer not in by:
        return []
    p = by[peer]
    return [
        {
            "method": s["method"],
            "step_ratio": p["median_step_s"] / s["median_step_s"] if s["median_step_s"] > 0 else float("inf"),
            "identified": f"{p['identified']}/{p['seeds']} vs {s['identified']}/{s['seeds']}",
        }
        for s in summary
        if s["method"] != peer
    ]


def format_table(summary: Sequence[dict], header: str = "") -> str:
    """The summary and the ratios as plain text."""
    lines = [header] if header else []
    lines.append(f"{'method':<24}{'identified':>12}{'median step s':>15}{'median total s':>16}{'median rel. RMSE':>18}")
    for s in summary:
        ident = f"{s['identified']}/{s['seeds']}"
        lines.append(
            f"{s['method']:<24}{ident:>12}{s['median_step_s']:>15.3f}"
            f"{s['median_total_s']:>16.1f}{s['median_recon_error']:>18.3f}"
        )
    rs = ratios(summary)
    if rs:
        lines.append("")
        lines.append(f"{'vs ' + GPAX:<24}{'GPax step / step':>18}{'identified (GPax vs it)':>26}")
        for r in rs:
            lines.append(f"{r['method']:<24}{r['step_ratio']:>18.1f}{r['identified']:>26}")
    return "\n".join(lines)


# ------------------------------------------------------------------ the runs


def _abduce_run(policy: str, seed: int, budget: int, grid: int, n_init: int, epsilon: float):
    from abduce.controller.rehearse.simulated import SimulatedRun

    return SimulatedRun(
        truth=TRUTH,
        hypotheses=HYPOTHESES,
        policy=policy,
        budget=budget,
        grid=grid,
        seed=seed,
        n_init=n_init,
        epsilon=epsilon,
    )


def run_abduce(policy: str, seed: int, budget: int, grid: int, n_init: int, epsilon: float) -> dict:
    """One abduce campaign driven ask/tell, each decision timed."""
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.rehearse.reconstruction import Truth, score

    t_start = time.perf_counter()
    campaign, sim = _abduce_run(policy, seed, budget, grid, n_init, epsilon).build()
    step_times = []
    request = campaign.ask()
    while True:
        m = Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))
        t0 = time.perf_counter()
        campaign.tell(m)
        if campaign.done:
            break
        request = campaign.ask()
        if campaign.n >= n_init:
            step_times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_start
    truth = sim.truth(campaign.points())
    leader = campaign.leader()
    return {
        "method": f"abduce {policy}",
        "seed": seed,
        "winner": leader,
        "identified": leader == TRUTH,
        "recon_error": score(campaign, Truth(truth, "simulator", ""))["relative"],
        "step_times": step_times,
        "total_s": total,
        "n": campaign.n,
        "chosen": {h["name"]: h["times_chosen"] for h in campaign.summary()["hypotheses"]},
    }


def _gpax_hypotheses() -> dict[str, tuple[Callable, Callable]]:
    """name -> (mean function, prior) in the relative frame, for ``gpax.hypo.step``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.nn import sigmoid, softplus

    from abduce.hypotheses.library import BUILTIN

    def bounds(h: str, p: str) -> tuple[float, float]:
        return next(q.bounds for q in BUILTIN[h].parameters if q.name == p)

    def fixed(h: str, p: str) -> float:
        return next(q.fixed for q in BUILTIN[h].parameters if q.name == p)

    def uniform(h: str, p: str):
        return numpyro.sample(p, dist.Uniform(*bounds(h, p)))

    def truncated_lognormal(name: str, median: float, sigma: float, lo: float, hi: float):
        log = numpyro.sample(
            f"log_{name}", dist.TruncatedNormal(math.log(median), sigma, low=math.log(lo), high=math.log(hi))
        )
        return numpyro.deterministic(name, jnp.exp(log))

    def prior_of(h: str, p: str):
        q = next(q for q in BUILTIN[h].parameters if q.name == p)
        kind = type(q.prior).__name__
        if kind == "Uniform":
            return uniform(h, p)
        if kind == "LogNormal":
            return truncated_lognormal(p, q.prior.median, q.prior.sigma, *q.bounds)
        raise NotImplementedError(f"{h}.{p}: prior {kind}")

    d2, d1 = fixed("second-order", "delta"), fixed("first-order", "delta")

    def second_order(x, p):
        return p["A"] * (d2 * softplus((p["x_c"] - x[:, 0]) / d2)) ** p["beta"]

    def first_order(x, p):
        return p["A"] * sigmoid((p["x_c"] - x[:, 0]) / d1)

    def linear(x, p):
        return p["y_lo"] + (p["y_hi"] - p["y_lo"]) * x[:, 0]

    def sigmoid_(x, p):
        return p["A"] * sigmoid((p["x_c"] - x[:, 0]) / p["w"])

    def prior(h: str, names: tuple[str, ...]):
        return lambda: {p: prior_of(h, p) for p in names}

    return {
        "second-order": (second_order, prior("second-order", ("A", "x_c", "beta"))),
        "first-order": (first_order, prior("first-order", ("A", "x_c"))),
        "linear": (linear, prior("linear", ("y_lo", "y_hi"))),
        "sigmoid": (sigmoid_, prior("sigmoid", ("A", "x_c", "w"))),
    }


def _gpax_kernel_and_noise_priors() -> tuple[Callable, Callable]:
    """abduce's KernelPriors as numpyro priors (truncated log-normals) for GPax's Matern kernel and noise."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from abduce.hypotheses.model import KernelPriors

    kp = KernelPriors()

    def tln(name, median, sigma, lo, hi):
        log = numpyro.sample(
            f"log_{name}", dist.TruncatedNormal(math.log(median), sigma, low=math.log(lo), high=math.log(hi))
        )
        return numpyro.deterministic(name, jnp.exp(log))

    def kernel_prior():
        return {
            "k_length": tln("k_length", kp.lengthscale_median, kp.lengthscale_sigma, *kp.lengthscale_bounds),
            "k_scale": tln("k_scale", kp.outputscale_median, kp.outputscale_sigma, *kp.outputscale_bounds),
        }

    def noise_prior():
        return tln("noise", kp.noise_median, kp.noise_sigma, *kp.noise_bounds)

    return kernel_prior, noise_prior


def _initial_design(seed: int, budget: int, grid: int, n_init: int, epsilon: float, sim) -> tuple[list, list]:
    """The first ``n_init`` requests of an abduce campaign with this seed, measured on ``sim`` (no fit happens)."""
    from abduce.controller.core.measurements import Measurement

    campaign, _ = _abduce_run("epsilon-greedy", seed, budget, grid, n_init, epsilon).build()
    xs, ys = [], []
    for i in range(n_init):
        r = campaign.ask()
        y = float(sim.measure(np.array([r.x]))[0])
        xs.append(r.x[0])
        ys.append(y)
        if i < n_init - 1:  # the n_init-th tell would fit every hypothesis
            campaign.tell(Measurement(r.request_id, r.x, y))
    return xs, ys


def run_gpax(seed: int, budget: int, grid: int, n_init: int, epsilon: float, warmup: int, samples: int) -> dict:
    """GPax's hypothesis-learning loop on the same problem (see the module docstring)."""
    import warnings

    import jax.numpy as jnp
    from gpax import hypo

    hyps = _gpax_hypotheses()
    names = list(HYPOTHESES)
    kernel_prior, noise_prior = _gpax_kernel_and_noise_priors()
    np.random.seed(seed)  # sample_next draws from numpy's global generator

    t_start = time.perf_counter()
    _, sim = _abduce_run("epsilon-greedy", seed, budget, grid, n_init, epsilon).build()
    candidates = sim.candidates()[:, 0]
    xs, ys = _initial_design(seed, budget, grid, n_init, epsilon, sim)

    def fit(i: int, x_unmeasured):
        mean_fn, prior = hyps[names[i]]
        y = np.asarray(ys)
        s = float(np.max(np.abs(y))) or 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # noise_prior= is deprecated in GPax 0.1.9 but is what step() takes
            obj, model = hypo.step(
                mean_fn,
                prior,
                jnp.asarray(np.asarray(xs)[:, None]),
                jnp.asarray(y / s),
                x_unmeasured,
                gp_wrap=True,
                noise_prior=noise_prior,
                gp_kernel="Matern",
                gp_kernel_prior=kernel_prior,
                num_warmup=warmup,
                num_samples=samples,
                print_summary=False,
            )
        return obj, model, s

    record = np.zeros((len(names), 2))
    chosen = [0] * len(names)
    step_times: list[float] = []
    previous: float | None = None
    while len(ys) < budget:
        t0 = time.perf_counter()
        unmeasured = np.array([c for c in candidates if not np.any(np.isclose(c, xs))])
        warm = [i for i in range(len(names)) if chosen[i] == 0]
        idx = warm[0] if warm else int(hypo.sample_next(record[:, 1], method="eps-greedy", eps=epsilon))
        chosen[idx] += 1
        obj, _, s = fit(idx, jnp.asarray(unmeasured[:, None]))
        var = np.asarray(obj) * s**2  # back to the data's units
        current = float(np.nanmedian(var))
        r = gpax_reward(previous, current)
        if r is not None:
            record = hypo.update_record(record, idx, r)
        previous = current
        x_next = float(unmeasured[int(np.nanargmax(var))])
        step_times.append(time.perf_counter() - t0)
        xs.append(x_next)
        ys.append(float(sim.measure(np.array([[x_next]]))[0]))

    win = gpax_winner(record)
    _, model, s = fit(win, None)
    import jax

    mean, _ = model.predict(jax.random.PRNGKey(seed), jnp.asarray(candidates[:, None]), noiseless=True)
    total = time.perf_counter() - t_start
    return {
        "method": GPAX,
        "seed": seed,
        "winner": names[win],
        "identified": names[win] == TRUTH,
        "recon_error": relative_rmse(np.asarray(mean) * s, sim.truth(candidates[:, None])),
        "step_times": step_times,
        "total_s": total,
        "n": len(ys),
        "chosen": dict(zip(names, chosen)),
        "avg_reward": dict(zip(names, record[:, 1].tolist())),
    }


# ------------------------------------------------------------------ output


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def result_row(r: dict, args: argparse.Namespace) -> dict:
    st = r["step_times"]
    return {
        "method": r["method"],
        "seed": r["seed"],
        "budget": args.budget,
        "n_init": args.n_init,
        "grid": args.grid,
        "nuts_warmup": args.warmup if r["method"] == GPAX else "",
        "nuts_samples": args.samples if r["method"] == GPAX else "",
        "winner": r["winner"],
        "identified": int(bool(r["identified"])),
        "recon_error": f"{r['recon_error']:.5f}",
        "steps": len(st),
        "median_step_s": f"{statistics.median(st):.4f}" if st else "",
        "mean_step_s": f"{statistics.fmean(st):.4f}" if st else "",
        "max_step_s": f"{max(st):.4f}" if st else "",
        "total_s": f"{r['total_s']:.2f}",
        "times_chosen": ";".join(f"{k}={v}" for k, v in r["chosen"].items()),
        "gpax_avg_reward": ";".join(f"{k}={v:+.3f}" for k, v in r.get("avg_reward", {}).items()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=20, help="measurements per campaign, initial design included")
    ap.add_argument("--warmup", type=int, default=200, help="NUTS warm-up per GPax fit (GPax/paper: 2000)")
    ap.add_argument("--samples", type=int, default=200, help="NUTS samples per GPax fit (GPax/paper: 2000)")
    ap.add_argument("--grid", type=int, default=101, help="candidate points on [0, 1]")
    ap.add_argument("--n-init", type=int, default=5)
    ap.add_argument("--epsilon", type=float, default=0.1, help="epsilon of both epsilon-greedy bandits")
    ap.add_argument("--out", type=Path, default=None, help="write results.csv, summary.csv, table.txt here")
    args = ap.parse_args(argv)

    pin_threads()
    try:
        import gpax
        import jax
        import numpyro
    except ImportError as exc:
        print(f"{INSTALL_HINT} ({exc})", file=sys.stderr)
        return 2
    import torch
    from gpax.utils import enable_x64

    enable_x64()
    torch.set_num_threads(1)
    header = (
        f"truth {TRUTH}; hypotheses {', '.join(HYPOTHESES)}; {args.seeds} seeds; budget {args.budget} "
        f"(n_init {args.n_init}); grid {args.grid}; epsilon {args.epsilon}; GPax NUTS {args.warmup}/{args.samples}\n"
        f"gpax {gpax.__version__}, jax {jax.__version__}, numpyro {numpyro.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread); XLA_FLAGS={os.environ.get('XLA_FLAGS')}"
    )
    print(header, flush=True)
    rows: list[dict] = []
    for seed in range(args.seeds):
        for policy in ABDUCE_POLICIES:
            rows.append(run_abduce(policy, seed, args.budget, args.grid, args.n_init, args.epsilon))
            r = rows[-1]
            print(
                f"  seed {seed} {r['method']:<24} winner {r['winner']:<13} err {r['recon_error']:.3f} "
                f"total {r['total_s']:.1f} s",
                flush=True,
            )
        rows.append(run_gpax(seed, args.budget, args.grid, args.n_init, args.epsilon, args.warmup, args.samples))
        r = rows[-1]
        print(
            f"  seed {seed} {r['method']:<24} winner {r['winner']:<13} err {r['recon_error']:.3f} "
            f"total {r['total_s']:.1f} s",
            flush=True,
        )
    summary = summarise(rows)
    table = format_table(summary, header)
    print()
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_csv(args.out / "results.csv", [result_row(r, args) for r in rows])
        rs = {r["method"]: r for r in ratios(summary)}
        write_csv(
            args.out / "summary.csv",
            [
                {
                    **{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in s.items()},
                    "gpax_step_over_this": f"{rs[s['method']]['step_ratio']:.2f}" if s["method"] in rs else "",
                }
                for s in summary
            ],
        )
        (args.out / "table.txt").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
