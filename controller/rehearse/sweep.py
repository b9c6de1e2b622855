"""``abduce sweep CONFIG``: campaigns on Dask, one table of results, a summary, calibration and plots.

A sweep runs two kinds of campaigns, each a
:class:`~abduce.controller.rehearse.rehearsal.Rehearsal` run as one Dask task (a
``LocalCluster`` by default, or an existing scheduler):

* **problems**: a source with fixed options -- a simulator (``simulated:NAME``
  with options) or a recorded data set (``recorded:PATH``) -- with the
  hypothesis that is true for it, where known; the grid is (problem x
  hypothesis set x policy x seed);
* **families**: a source whose truth parameters each campaign draws at random
  across the family's ranges (the identification benchmark,
  ``deploy/sweeps/identification.toml``). A family names its truth (a
  hypothesis of its set, or ``"none"`` when no law of the set generated the
  data) and how many campaigns each policy gets.

Config (TOML, validated; a typo names the key)::

    [sweep]
    name = "policies-1d"
    policies = ["epsilon-greedy", "discriminate", "random", "grid", "plain-gp"]  # for problems
    seeds = 20                 # seeds 0..19 (or a list), for problems
    campaigns = { discriminate = 40, random = 40, grid = 20 }  # per policy, for families
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

    [[family]]
    name = "second-order"
    source = "simulated:transition-1d"
    options = { law = "second-order" }           # fixed for every campaign
    truth = "second-order"                       # or "none": out of the set
    hypothesis_set = "four"
    budget = 40                                  # optional: else [sweep]'s
    campaigns = { discriminate = 40 }            # optional: else [sweep]'s
    [family.ranges]                              # drawn per campaign
    x_c = { uniform = [0.05, 0.95] }
    amplitude = { log_uniform = [0.1, 10.0] }
    steps = { choice = [2, 3, 4] }               # one of, at random
    grid = { cycle = [201, 0] }                  # campaign i takes values[i % len]

Draws (:func:`~abduce.controller.rehearse.sweep_config.draw`): campaign ``i`` of family ``F`` draws each ranged option
from its own generator, ``SeedSequence(entropy=h(F), spawn_key=(i, h(option)))``
(``h`` = the first 8 bytes of SHA-256), and seeds its campaign and simulator
with ``SeedSequence(entropy=h(F), spawn_key=(i, 0))``. So campaign ``i`` has
the same truth and noise stream under every policy (paired comparisons), a
smaller count is a prefix of a larger one, and adding a range leaves the
other options' draws unchanged. ``uniform`` is ``lo + (hi - lo) u``,
``log_uniform`` is ``lo (hi / lo)^u``, ``u ~ U[0, 1)``.

One family alone: ``run_sweep(config, out, families=[NAME])`` (:meth:`SweepConfig.only`), or
``tests/benchmarks/identification_benchmark.py --family NAME``; a smaller run of the same truths:
:meth:`~abduce.controller.rehearse.sweep_config.SweepConfig.reduced`; the time a config will take: :func:`estimate`.

Outputs (``--out DIR``):

``results.csv``: one row per campaign and step: ``problem`` (the problem's or
family's name), ``hypothesis_set``, ``policy``, ``seed``, ``campaign`` (the
index in its family; the seed for problems), ``truth`` (the true hypothesis,
``"none"`` out of the set, empty where unknown), ``n``, ``p_true`` (NaN out
of the set), ``leader`` (argmax of the laws' probabilities, as the campaign
names it; empty while a law is unfitted), ``p_leader``, ``p_none`` (P("none of these")). On the last step
of each campaign only: ``error`` (RMS of the leader's posterior mean minus
the truth over the space, relative to the truth's range), ``rmse`` and ``max_error`` (the same RMS, and
the largest difference, in the channel's unit) ``error_against`` (``simulator``: its noise-free truth;
``recorded grid``: a recorded data set's values at every grid point, NaNs left out; empty where no truth
is known; :mod:`~abduce.controller.rehearse.reconstruction`) and ``error_unit`` (the channel's), ``space`` (``finite``
or ``box``), ``seconds`` (wall) and ``cpu_seconds`` (the worker's CPU time:
what a dedicated core would take), ``coverage`` (fraction of the campaign's points where the true law's
95% band ``mean +- 1.96 sd`` covers the noise-free truth), ``xc_error`` (the
true law's fitted ``x_c`` minus the true one) and ``xc_sd``, ``wrong_at_09``
(1 when the final leader is not the truth and has ``P >= 0.9``; out of the
set, when any law has ``P >= 0.9``), ``noise_z`` (how lucky the campaign's noise
was: ``sum_i (y_i - truth(x_i)) / (sigma sqrt(n))`` over its readings, N(0, 1)
for a fair draw; NaN where the simulator declares no scalar ``noise``) and
``truth_NAME`` for each drawn option.

``summary.csv``: per problem (family), set and policy (:func:`~abduce.controller.rehearse.scoring.summarize`).
``calibration.csv``: reliability of the leader's probability over every
(campaign, step) of the in-set campaigns (:func:`~abduce.controller.rehearse.scoring.calibration`), per policy and
pooled, with the expected calibration error. ``summary.md``: the table for the
README (:func:`~abduce.controller.rehearse.scoring.markdown`). ``identification.png``: the fraction of campaigns
identified against the number of measurements (out of the set: the fraction
in which "none of these" leads). ``reliability.png``: the reliability diagram.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abduce.controller.core.verdict import leader
from abduce.controller.rehearse.abduction_table import abduction_markdown, abduction_rows
from abduce.controller.rehearse.channels_table import channel_markdown, channel_rows
from abduce.controller.rehearse.scoring import calibration, campaign_key, markdown, plot, plot_reliability, summarize
from abduce.controller.rehearse.sweep_config import OUT_OF_SET, SweepConfig
from abduce.controller.rehearse.transfer_table import transfer_markdown, transfer_rows

BAND_Z = 1.959963984540054  # the 95% two-sided normal quantile


def _simulator(driver):
    sim = getattr(driver, "simulator", None)
    while sim is not None and not hasattr(sim, "truth") and hasattr(sim, "simulator"):
        sim = sim.simulator  # through fault wrappers
    return sim


def band_coverage(mean: np.ndarray, sd: np.ndarray, truth: np.ndarray, z: float = BAND_Z) -> float:
    """Fraction of points where ``mean +- z sd`` covers ``truth`` (all ``N``)."""
    return float(np.mean(np.abs(np.asarray(mean) - np.asarray(truth)) <= z * np.asarray(sd)))


def noise_z(campaign, driver, reduction: str | None = None) -> float:
    """The standardised mean of the noise in ``campaign``'s readings, ``sum_i (y_i - truth(x_i)) / (sigma sqrt(n))``
    (N(0, 1) for a fair draw of the simulator's noise of sd ``sigma``): a band that is honest misses the
    truth across a whole plateau when this is beyond about 2, so coverage is read beside it. NaN where the
    simulator declares no scalar ``noise`` or the readings are reduced (the noise of a reduction is not ``sigma``)."""
    from abduce.controller.rehearse.rehearsal import truth_on

    sim = _simulator(driver)
    sigma = getattr(sim, "noise", None)
    x, y = campaign.data
    if reduction is not None or not isinstance(sigma, (int, float)) or not sigma > 0 or not y:
        return math.nan
    truth = truth_on(driver, np.asarray(x, dtype=float), None)
    if truth is None:
        return math.nan
    return float(np.sum(np.asarray(y, dtype=float) - truth) / (sigma * math.sqrt(len(y))))


def _leader(record) -> tuple[str, float]:
    """The step's leading law (:func:`~abduce.controller.core.verdict.leader`, as the campaign names it) and its
    probability; ("", NaN) while a law is unfitted or before a fit."""
    name = leader(record.probabilities, record.log_evidence, record.unfitted)
    return ("", math.nan) if name is None else (name, float(record.probabilities[name]))


def _critical_points(campaign, composed: str, critical: dict[str, str], sim) -> dict[str, float]:
    """How far the composed law's critical points lie from the truth, in posterior sds: ``critical_within_2sd``
    (1.0 when every one is within 2 sd, NaN when the law was never weighed), ``critical_max_z``, and
    ``critical_calibrated``, what ``critical_within_2sd`` would average were the posterior calibrated: the
    posterior's own mass with every critical point within 2 of its sds of its mean (about 0.954^k for ``k``
    independent, normal critical points; more where they are correlated)."""
    import torch

    nothing = {"critical_within_2sd": math.nan, "critical_max_z": math.nan, "critical_calibrated": math.nan}
    fitted = next((h["parameters"] for h in campaign.summary()["hypotheses"] if h["name"] == composed), None)
    slot = next((s for s in campaign.belief.slots if s.hypothesis.name == composed), None)
    if not fitted or not critical or sim is None or slot is None or slot.evidence is None:
        return nothing
    zs = []
    weights, draws = slot.evidence.physical_draws()
    within = torch.ones_like(weights, dtype=torch.bool)
    for name, attribute in critical.items():
        value = fitted.get(name)
        if value is None or name not in draws:
            return nothing
        mean, sd = float(value["mean"]), max(float(value["sd"]), 1e-12)
        zs.append(abs(mean - float(getattr(sim, attribute))) / sd)
        within &= (draws[name] - mean).abs() <= 2.0 * sd
    return {
        "critical_within_2sd": float(max(zs) <= 2.0),
        "critical_max_z": max(zs),
        "critical_calibrated": float(weights[within].sum()),
    }


def check_composed(cells: list[dict[str, Any]]) -> None:
    """Each family's ``composed`` law is one the grammar builds from its hypothesis set on its space, and its
    ``critical`` map names that law's parameters and the simulator's attributes: checked on the first
    campaign of each family, before any campaign runs (a typo would otherwise read as "never proposed").

    Raises:
        ConfigError: naming the family and what is wrong.
    """
    from abduce.controller.errors import ConfigError
    from abduce.controller.rehearse.rehearsal import Rehearsal
    from abduce.hypotheses.grammar import enumerate_compositions

    done: set[str] = set()
    for cell in cells:
        p = cell["problem"]
        if not p.get("composed") or p["name"] in done:
            continue
        done.add(p["name"])
        rehearsal = Rehearsal(
            source=p["source"], options=p["options"], hypotheses=tuple(cell["hypotheses"]), budget=2,
            seed=cell["seed"], channel=p["channel"], reduction=p["reduction"],
        )  # fmt: skip
        campaign, instrument = rehearsal.build()
        laws = [slot.hypothesis for slot in campaign.belief.slots]
        built = {h.name: h for h in enumerate_compositions(laws, campaign.space.d, cell.get("propose_depth", 1))}
        law = built.get(p["composed"])
        if law is None:
            raise ConfigError(
                f"family {p['name']!r}: composed law {p['composed']!r} is not one the grammar builds from "
                f"{', '.join(cell['hypotheses'])} at depth {cell.get('propose_depth', 1)}; "
                f"it builds: {', '.join(built)}"
            )
        sim = _simulator(instrument.driver)
        for name, attribute in (p.get("critical") or {}).items():
            if name not in {q.name for q in law.free}:
                raise ConfigError(f"family {p['name']!r}: {p['composed']!r} has no parameter {name!r} (critical)")
            if sim is None or not hasattr(sim, attribute):
                raise ConfigError(f"family {p['name']!r}: the simulator has no attribute {attribute!r} (critical)")


def rehearsal_of(cell: dict[str, Any], **changes: Any):
    """The :class:`~abduce.controller.rehearse.rehearsal.Rehearsal` a cell runs (``changes``: recipe fields
    to set otherwise, for a benchmark that reruns the cell's campaign another way)."""
    from abduce.controller.rehearse.rehearsal import Rehearsal

    p = cell["problem"]
    fields = {
        "source": p["source"],
        "options": p["options"],
        "hypotheses": tuple(cell["hypotheses"]),
        "policy": cell["policy"],
        "budget": cell["budget"],
        "seed": cell["seed"],
        "n_init": cell["n_init"],
        "epsilon": cell["epsilon"],
        "channel": p["channel"],
        "reduction": p["reduction"],
        "propose": cell["propose"],
        "propose_depth": cell["propose_depth"],
        "composition_cost": cell["composition_cost"],
        "propose_admit": cell["propose_admit"],
        **p.get("channels", {}),
    }
    return Rehearsal(**{**fields, **changes})


def run_cell(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """One campaign (a chain of them, for a family with ``series``) -> its rows of ``results.csv`` (runs on a
    Dask worker)."""
    import torch

    torch.set_num_threads(1)  # one campaign per worker thread: measured fastest on small machines
    if cell["problem"].get("series"):
        return _run_series(cell)
    return _run_one(cell, rehearsal_of(cell))[0]


def _run_series(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """A chain of ``series`` samples of one series (the cell's seed seeds its scatter): sample 0 cold, each
    later sample twice, from the last sample's campaign by transfer and cold; both on the same noise
    (the cell's seed + the sample's index), so the two starts differ only in what was transferred. Rows are
    those of :func:`_run_one` with ``problem`` ``"FAMILY k transfer"`` or ``"FAMILY k cold"`` and the columns
    ``sample`` and ``start``."""
    from abduce.controller.recipe.transfer import Transfer
    from abduce.simulators.series import SampleSeries

    p = cell["problem"]
    given = {k: p[k] for k in ("temper", "share", "drift", "carry") if p.get(k) is not None}
    rows: list[dict[str, Any]] = []
    previous = None
    for k in range(p["series"]):
        options = {**p["options"], "sample": k, "series_seed": cell["seed"]}
        law = SampleSeries(**options).law  # a changed sample's truth is the other law
        sample = dict(cell, problem=dict(p, options=options, truth=law), seed=cell["seed"] + k)
        starts = ["cold"] if previous is None else ["transfer", "cold"]
        for start in starts:
            transfer = Transfer.of(previous, f"sample {k - 1}", **given) if start == "transfer" else None
            out, campaign = _run_one(sample, rehearsal_of(sample, transfer=transfer), f"{p['name']} {k} {start}")
            for row in out:
                row.update(sample=k, start=start)
            rows.extend(out)
            if start == "transfer" or previous is None:
                next_previous = campaign
        previous = next_previous
    return rows


def _run_one(cell: dict[str, Any], rehearsal, problem: str | None = None) -> tuple[list[dict[str, Any]], Any]:
    """One campaign of ``rehearsal`` -> its rows and the campaign at its end (``problem``: the rows' problem
    name, the cell's by default)."""
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.rehearse.reconstruction import score, truth_of

    p = cell["problem"]
    t0, c0 = time.perf_counter(), time.process_time()
    campaign, instrument = rehearsal.build()
    rows = []
    truth_name = p["truth"]
    in_set = truth_name in cell["hypotheses"]
    key = {
        "problem": problem or p["name"],
        "hypothesis_set": cell["hypothesis_set"],
        "policy": cell["policy"],
        "seed": cell["seed"],
        "campaign": cell["campaign"],
        "truth": truth_name or "",
    }
    last = []
    composed = p.get("composed")
    declared = set(cell["hypotheses"])
    made: list[str] = []  # the proposals made (added or suggested), in order
    first_proposal: list[int] = []

    def record(r) -> None:
        lead, p_leader = _leader(r)
        check = r.checks.get(lead) if lead else None
        rows.append(
            {
                **key,
                "n": r.step + 1,
                "p_true": r.probabilities.get(truth_name, math.nan) if in_set else math.nan,
                "leader": lead,
                "p_leader": p_leader,
                "p_none": float(r.none["probability"]) if r.none else math.nan,
                "leader_misfit": math.nan if check is None else float(check["misfit"]),
                "p_composed": r.probabilities.get(composed, 0.0) if composed else math.nan,
                "p_proposed": max((v for k, v in r.probabilities.items() if k not in declared), default=0.0),
                "composed": composed or "",
                "cost": campaign.cost,
                "channel": campaign.channels.name(r.x) if campaign.channels is not None else "",
            }
        )
        made.extend(q["name"] for q in r.proposals if q.get("added") or q.get("suggested"))
        if r.proposals and not first_proposal:
            first_proposal.append(r.step + 1)
        last[:] = [r]

    run_campaign(campaign, instrument, [record])
    if not rows:
        return rows, campaign
    points = campaign.points()
    known = truth_of(instrument, points, p["reduction"])
    scored = score(campaign, known)
    truth = known.values if known is not None and known.source == "simulator" else None  # noise-free
    end = rows[-1]
    end.update(
        {
            "error": scored["relative"] if scored else math.nan,
            "rmse": scored["rmse"] if scored else math.nan,
            "max_error": scored["max"] if scored else math.nan,
            "error_against": scored["source"] if scored else "",
            "error_unit": scored["unit"] if scored else "",
            "coverage": math.nan,
            "xc_error": math.nan,
            "xc_sd": math.nan,
            "wrong_at_09": math.nan,
            "noise_z": noise_z(campaign, instrument.driver, p["reduction"]),
        }
    )
    if in_set:
        post = campaign.posterior(truth_name)
        if post is not None and truth is not None:
            end["coverage"] = band_coverage(post[0], post[1], truth)
        sim = _simulator(instrument.driver)
        fitted = next(h for h in campaign.summary()["hypotheses"] if h["name"] == truth_name)["parameters"]
        if "x_c" in fitted and sim is not None and hasattr(sim, "x_c"):
            end["xc_error"] = float(fitted["x_c"]["mean"]) - float(sim.x_c)
            end["xc_sd"] = float(fitted["x_c"]["sd"])
    if in_set or truth_name == OUT_OF_SET:
        lead, p_leader = _leader(last[0])
        wrong = p_leader >= 0.9 and (lead != truth_name)  # out of the set, every law is wrong
        end["wrong_at_09"] = float(wrong)
    end["proposals"] = ";".join(made)
    end["first_proposal_n"] = first_proposal[0] if first_proposal else math.nan
    if composed:
        end.update(_critical_points(campaign, composed, p.get("critical") or {}, _simulator(instrument.driver)))
    end["space"] = "finite" if campaign.space.is_finite else "box"
    end.update({f"truth_{k}": v for k, v in cell["drawn"].items()})
    end["seconds"] = time.perf_counter() - t0
    end["cpu_seconds"] = time.process_time() - c0
    return rows, campaign


def estimate(config: SweepConfig, results):
    """Worker seconds of every campaign of ``config``'s families, from measured campaigns.

    A campaign costs its budget x the median CPU seconds per measurement (``cpu_seconds / n`` at the
    last step) of the measured campaigns most like it: the same family, policy and space (``space``:
    finite or box; a cell's space is a box when its options say ``grid = 0``), else the same policy and
    space in any family, else the same policy. Linear in the budget, so measure near the budgets you
    estimate: a step's cost grows little with n up to about 60 and faster past it (discriminate on a
    grid of 201, one campaign: 0.31, 0.34, 0.35 and 0.48 CPU seconds a step over steps 1-20, 21-40,
    41-60 and 61-80).

    Returns:
        DataFrame (family, policy, space, campaigns, budget, seconds_per_campaign, seconds); its
        ``seconds.sum() / workers`` is the wall time on ``workers`` dedicated cores.
    """
    import pandas as pd

    last = results.sort_values("n").groupby(["problem", "policy", campaign_key(results)]).tail(1)
    last = last.assign(per_step=last["cpu_seconds"] / last["n"], space=last["space"] if "space" in last else "finite")
    tables = [
        last.groupby(keys)["per_step"].median().to_dict()
        for keys in (["problem", "policy", "space"], ["policy", "space"], ["policy"])
    ]
    rows: dict[tuple, dict] = {}
    for cell in config.cells():
        if cell["kind"] != "family":
            continue
        name, policy = cell["problem"]["name"], cell["policy"]
        space = "box" if cell["problem"]["options"].get("grid", None) == 0 else "finite"
        per = next((t[k] for t, k in zip(tables, ((name, policy, space), (policy, space), policy)) if k in t), math.nan)
        row = rows.setdefault(
            (name, policy, space),
            {
                "family": name,
                "policy": policy,
                "space": space,
                "campaigns": 0,
                "budget": cell["budget"],
                "seconds": 0.0,
            },
        )
        series = cell["problem"].get("series")
        count = 2 * series - 1 if series else 1  # a chain: sample 0 once, every later one by transfer and cold
        row["campaigns"] += count
        row["seconds"] += count * per * cell["budget"]
    out = pd.DataFrame(list(rows.values()))
    return out.assign(seconds_per_campaign=out["seconds"] / out["campaigns"])


def run_sweep(
    config: SweepConfig,
    out: Path,
    scheduler: str | None = None,
    workers: int | None = None,
    progress=None,
    families: Sequence[str] | None = None,
):
    """Run every cell on Dask; write the outputs under ``out`` (see the module docstring).

    Args:
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); None = a LocalCluster.
        workers: LocalCluster worker processes (default: the machine's cores).
        progress: optional ``f(done, total)`` called as campaigns finish.
        families: run only these families (:meth:`SweepConfig.only`).
    Returns:
        (results, summary) DataFrames.
    """
    import os

    import pandas as pd
    from distributed import Client, LocalCluster, as_completed

    if families:
        config = config.only(families)
    cells = config.cells()
    check_composed(cells)
    out.mkdir(parents=True, exist_ok=True)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
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
    return write_outputs(config, pd.DataFrame(rows), out)


def write_outputs(config: SweepConfig, results, out: Path):
    """results.csv, summary.csv, calibration.csv, summary.md and the plots, from the rows of every campaign."""
    order = [c for c in ("problem", "hypothesis_set", "policy", "campaign", "seed", "n") if c in results]
    results = results.sort_values(order, kind="stable").reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False, float_format="%.6g")
    summary = summarize(results, config.sweep.threshold)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    calib = calibration(results) if "truth" in results else None
    if calib is not None:
        calib.to_csv(out / "calibration.csv", index=False, float_format="%.6g")
        plot_reliability(calib, out / "reliability.png")
    budgets = {f.name: config.budget(f) for f in config.family} | {p.name: config.sweep.budget for p in config.problem}
    (out / "summary.md").write_text(markdown(summary, calib, budgets), encoding="utf-8")
    plot(results, out / "identification.png", config.sweep.threshold)
    if config.sweep.propose != "off" or any(f.propose not in (None, "off") for f in config.family):
        declared = {name: set(laws) for name, laws in config.hypothesis_sets.items()}
        rows = abduction_rows(results, declared)
        (out / "abduction.md").write_text(abduction_markdown(rows, budgets), encoding="utf-8")
    chains = {f.name for f in config.family if f.series}
    if chains:
        rows = transfer_rows(summary, chains, results, config.sweep.threshold)
        (out / "transfer.md").write_text(transfer_markdown(rows), encoding="utf-8")
    pairs = {f.name: (f.draws, f.cost or 1.0) for f in config.family if f.cheap_channels and f.draws}
    if pairs:
        rows = channel_rows(results, pairs, config.sweep.threshold)
        (out / "channels.md").write_text(channel_markdown(rows), encoding="utf-8")
    return results, summary
