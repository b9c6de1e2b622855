"""``abduce sweep CONFIG``: a grid of campaigns on Dask, one table of results, a summary and plots.

The grid is (problem x hypothesis set x policy x seed). A *problem* is a
source -- a simulator (``simulated:NAME`` with options) or a recorded data set
(``recorded:PATH``) -- with the hypothesis that is true for it, where known.
Each cell is one :class:`~abduce.controller.rehearsal.Rehearsal`, run as one
Dask task (a ``LocalCluster`` by default, or an existing scheduler).

Config (TOML, validated; a typo names the key)::

    [sweep]
    name = "policies-1d"
    policies = ["epsilon-greedy", "discriminate", "random", "grid", "plain-gp"]
    seeds = 20                 # seeds 0..19 (or a list)
    budget = 40
    n_init = 4
    threshold = 0.95           # identified: P(true hypothesis) >= threshold

    [hypothesis_sets]
    four = ["second-order", "first-order", "linear", "sigmoid"]

    [[problem]]
    name = "second-order"
    source = "simulated:transition-1d"
    options = { truth = "second-order", grid = 201 }
    truth = "second-order"     # the hypothesis that generated the data

Outputs (``--out DIR``): ``results.csv`` -- one row per campaign and step:
problem, hypothesis_set, policy, seed, n, p_true (probability of the true
hypothesis after n measurements), leader, and on the last step of each
campaign the reconstruction error (RMS of the leader's posterior mean minus
the truth over the space, relative to the truth's range) and the campaign's
wall time; ``summary.csv`` -- per problem, set and policy: measurements
from which on the truth is identified in 95% of seeds (``n95``), the fraction
identified at the budget, the median final error; ``identification.png`` --
the fraction of seeds identified against the number of measurements.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from abduce.controller.errors import ConfigError
from abduce.controller.settings import load_toml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepSection(_Strict):
    name: str = "sweep"
    policies: list[str] = Field(min_length=1)
    seeds: Annotated[int, Field(ge=1)] | list[int] = 10
    budget: Annotated[int, Field(ge=2)] = 40
    n_init: Annotated[int, Field(ge=1)] = 4
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.1
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.95

    @field_validator("policies")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        from abduce.controller.policies import POLICIES

        for n in names:
            POLICIES[n]  # UnknownNameError lists the known ones
        return names

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class Problem(_Strict):
    name: str
    source: str = Field(pattern=r"^(simulated|recorded):.+|^[\w.]+:\w+$")
    options: dict[str, Any] = {}
    truth: str | None = None
    channel: str | None = None
    reduction: str | None = None
    hypothesis_sets: list[str] | None = None  # default: every set


class SweepConfig(_Strict):
    sweep: SweepSection
    hypothesis_sets: dict[str, list[str]] = Field(min_length=1)
    problem: list[Problem] = Field(min_length=1)

    def cells(self) -> list[dict[str, Any]]:
        """Every campaign of the grid, as plain dicts (they travel to Dask workers)."""
        out = []
        for p in self.problem:
            sets = p.hypothesis_sets or list(self.hypothesis_sets)
            for s in sets:
                if s not in self.hypothesis_sets:
                    raise ConfigError(f"problem {p.name!r} names hypothesis set {s!r}; defined: {sorted(self.hypothesis_sets)}")
            for s, policy, seed in itertools.product(sets, self.sweep.policies, self.sweep.seed_list()):
                out.append({"problem": p.model_dump(), "hypothesis_set": s, "hypotheses": self.hypothesis_sets[s],
                            "policy": policy, "seed": seed, "budget": self.sweep.budget, "n_init": self.sweep.n_init,
                            "epsilon": self.sweep.epsilon})
        return out


def load_sweep(path: str | Path) -> SweepConfig:
    return load_toml(path, SweepConfig)


def run_cell(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """One campaign of the grid -> its rows of ``results.csv`` (runs on a Dask worker)."""
    import torch

    from abduce.controller.rehearsal import Rehearsal, reconstruction_error, truth_on

    torch.set_num_threads(1)  # one campaign per worker thread: measured fastest on small machines
    p = cell["problem"]
    rehearsal = Rehearsal(source=p["source"], options=p["options"], hypotheses=tuple(cell["hypotheses"]),
                          policy=cell["policy"], budget=cell["budget"], seed=cell["seed"], n_init=cell["n_init"],
                          epsilon=cell["epsilon"], channel=p["channel"], reduction=p["reduction"])
    t0 = time.perf_counter()
    campaign, instrument = rehearsal.build()
    rows = []
    truth_name = p["truth"]
    key = {"problem": p["name"], "hypothesis_set": cell["hypothesis_set"], "policy": cell["policy"], "seed": cell["seed"]}

    def record(r) -> None:
        p_true = r.probabilities.get(truth_name, math.nan) if truth_name in cell["hypotheses"] else math.nan
        leader = max(r.probabilities, key=r.probabilities.__getitem__) if r.probabilities else ""
        rows.append({**key, "n": r.step + 1, "p_true": p_true, "leader": leader, "error": math.nan, "seconds": math.nan})

    from abduce.controller.loop import run_campaign

    run_campaign(campaign, instrument, [record])
    truth = truth_on(instrument.driver, campaign.points(), p["reduction"])
    if rows:
        rows[-1]["error"] = reconstruction_error(campaign, truth) if truth is not None else math.nan
        rows[-1]["seconds"] = time.perf_counter() - t0
    return rows


def summarize(results, threshold: float = 0.95, quantile: float = 0.95):
    """Per problem, set and policy: ``n95`` (the fewest measurements from which on, to the
    budget, at least ``quantile`` of the seeds have P(true) >= ``threshold``; NaN if that
    never happens within the budget),
    the fraction identified at the budget, the median final error, the median seconds."""
    import pandas as pd

    out = []
    for (prob, hset, policy), g in results.groupby(["problem", "hypothesis_set", "policy"], sort=False):
        curve = identification_curve(g, threshold)
        below = curve < quantile - 1e-12
        # n95: from here on (to the budget) at least `quantile` of the seeds stay identified
        ok = curve[~below[::-1].cummax()[::-1]]
        last = g.sort_values("n").groupby("seed").tail(1)
        out.append({"problem": prob, "hypothesis_set": hset, "policy": policy, "seeds": g["seed"].nunique(),
                    "n95": int(ok.index[0]) if len(ok) else math.nan,
                    "identified_at_budget": float(curve.iloc[-1]) if len(curve) else math.nan,
                    "median_error": float(last["error"].median()),
                    "median_seconds": float(last["seconds"].median())})
    return pd.DataFrame(out)


def identification_curve(group, threshold: float = 0.95):
    """Fraction of seeds with P(true) >= threshold after n measurements, indexed by n.

    A campaign that stopped early keeps its last probability for the larger n."""
    wide = group.pivot_table(index="n", columns="seed", values="p_true").sort_index().ffill()
    return (wide >= threshold).mean(axis=1)


def plot(results, path: Path, threshold: float = 0.95) -> None:
    """One panel per (problem, hypothesis set): fraction identified vs n, a line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results.groupby(["problem", "hypothesis_set"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, ((prob, hset), g) in zip(axes[0], panels):
        for policy, gp in g.groupby("policy", sort=False):
            curve = identification_curve(gp, threshold)
            ax.plot(curve.index, curve.values, label=policy)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{prob} ({hset})")
        ax.set_xlabel("measurements")
        ax.set_ylabel(f"fraction of seeds with P(true) ≥ {threshold}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_sweep(config: SweepConfig, out: Path, scheduler: str | None = None, workers: int | None = None,
              progress=None):
    """Run every cell on Dask; write results.csv, summary.csv and identification.png under ``out``.

    Args:
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); None = a LocalCluster.
        workers: LocalCluster worker processes (default: the machine's cores).
        progress: optional ``f(done, total)`` called as campaigns finish.
    Returns:
        (results, summary) DataFrames.
    """
    import os

    import pandas as pd
    from distributed import Client, LocalCluster, as_completed

    cells = config.cells()
    out.mkdir(parents=True, exist_ok=True)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = client.map(run_cell, cells, pure=False)
        rows: list[dict] = []
        for done, future in enumerate(as_completed(futures), start=1):
            rows.extend(future.result())
            if progress is not None:
                progress(done, len(cells))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    results = pd.DataFrame(rows).sort_values(["problem", "hypothesis_set", "policy", "seed", "n"], kind="stable")
    results.to_csv(out / "results.csv", index=False)
    summary = summarize(results, config.sweep.threshold)
    summary.to_csv(out / "summary.csv", index=False)
    plot(results, out / "identification.png", config.sweep.threshold)
    return results, summary
