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

Draws (:func:`draw`): campaign ``i`` of family ``F`` draws each ranged option
from its own generator, ``SeedSequence(entropy=h(F), spawn_key=(i, h(option)))``
(``h`` = the first 8 bytes of SHA-256), and seeds its campaign and simulator
with ``SeedSequence(entropy=h(F), spawn_key=(i, 0))``. So campaign ``i`` has
the same truth and noise stream under every policy (paired comparisons), a
smaller count is a prefix of a larger one, and adding a range leaves the
other options' draws unchanged. ``uniform`` is ``lo + (hi - lo) u``,
``log_uniform`` is ``lo (hi / lo)^u``, ``u ~ U[0, 1)``.

One family alone: ``run_sweep(config, out, families=[NAME])`` (:meth:`SweepConfig.only`), or
``tests/benchmarks/identification_benchmark.py --family NAME``; a smaller run of the same truths:
:meth:`SweepConfig.reduced`; the time a config will take: :func:`estimate`.

Outputs (``--out DIR``):

``results.csv``: one row per campaign and step: ``problem`` (the problem's or
family's name), ``hypothesis_set``, ``policy``, ``seed``, ``campaign`` (the
index in its family; the seed for problems), ``truth`` (the true hypothesis,
``"none"`` out of the set, empty where unknown), ``n``, ``p_true`` (NaN out
of the set), ``leader`` (argmax of the laws' probabilities; empty while a law
is unfitted), ``p_leader``, ``p_none`` (P("none of these")). On the last step
of each campaign only: ``error`` (RMS of the leader's posterior mean minus
the truth over the space, relative to the truth's range), ``space`` (``finite``
or ``box``), ``seconds`` (wall) and ``cpu_seconds`` (the worker's CPU time:
what a dedicated core would take), ``coverage`` (fraction of the campaign's points where the true law's
95% band ``mean +- 1.96 sd`` covers the noise-free truth), ``xc_error`` (the
true law's fitted ``x_c`` minus the true one) and ``xc_sd``, ``wrong_at_09``
(1 when the final leader is not the truth and has ``P >= 0.9``; out of the
set, when any law has ``P >= 0.9``), ``noise_z`` (how lucky the campaign's noise
was: ``sum_i (y_i - truth(x_i)) / (sigma sqrt(n))`` over its readings, N(0, 1)
for a fair draw; NaN where the simulator declares no scalar ``noise``) and
``truth_NAME`` for each drawn option.

``summary.csv``: per problem (family), set and policy (:func:`summarize`).
``calibration.csv``: reliability of the leader's probability over every
(campaign, step) of the in-set campaigns (:func:`calibration`), per policy and
pooled, with the expected calibration error. ``summary.md``: the table for the
README (:func:`markdown`). ``identification.png``: the fraction of campaigns
identified against the number of measurements (out of the set: the fraction
in which "none of these" leads). ``reliability.png``: the reliability diagram.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.settings import load_toml

OUT_OF_SET = "none"
"""A family's ``truth`` when no hypothesis of its set generated the data."""

CALIBRATION_BINS = ((0.5, 0.7), (0.7, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.0))
"""Bins of the leader's probability, ``[lo, hi)`` (the last one ``[0.99, 1]``)."""

BAND_Z = 1.959963984540054  # the 95% two-sided normal quantile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_policies(names) -> None:
    from abduce.controller.decide.policies import POLICIES

    for n in names:
        POLICIES[n]  # UnknownNameError lists the known ones


Counts = dict[str, Annotated[int, Field(ge=1)]]


class SweepSection(_Strict):
    name: str = "sweep"
    policies: list[str] | None = Field(None, min_length=1)
    seeds: Annotated[int, Field(ge=1)] | list[int] = 10
    campaigns: Counts | None = Field(None, min_length=1)
    budget: Annotated[int, Field(ge=2)] = 40
    n_init: Annotated[int, Field(ge=1)] = 4
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.1
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.95

    @field_validator("policies")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        _known_policies(names or [])
        return names

    @field_validator("campaigns")
    @classmethod
    def _known_counts(cls, counts: dict[str, int] | None) -> dict[str, int] | None:
        _known_policies(counts or {})
        return counts

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


class Draw(_Strict):
    """How one option is drawn per campaign: exactly one of the four keys."""

    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None
    choice: list[Any] | None = Field(None, min_length=1)
    cycle: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Draw:
        given = [k for k in ("uniform", "log_uniform", "choice", "cycle") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uniform, log_uniform, choice, cycle (got {given or 'none'})")
        if self.uniform is not None and not (
            math.isfinite(self.uniform[0]) and self.uniform[0] <= self.uniform[1] < math.inf
        ):
            raise ValueError(f"uniform needs finite lo <= hi, got {list(self.uniform)}")
        if self.log_uniform is not None and not 0 < self.log_uniform[0] <= self.log_uniform[1] < math.inf:
            raise ValueError(f"log_uniform needs 0 < lo <= hi, got {list(self.log_uniform)}")
        return self

    def sample(self, rng: np.random.Generator, index: int) -> Any:
        """One value: from ``rng`` (one uniform draw), or ``cycle[index % len]``."""
        if self.cycle is not None:
            return self.cycle[index % len(self.cycle)]
        u = rng.random()
        if self.uniform is not None:
            lo, hi = self.uniform
            return float(lo + (hi - lo) * u)
        if self.log_uniform is not None:
            lo, hi = self.log_uniform
            return float(lo * (hi / lo) ** u)
        return self.choice[min(int(u * len(self.choice)), len(self.choice) - 1)]


class Family(_Strict):
    """Campaigns against one source whose truth parameters each campaign draws (see the module docstring)."""

    name: str = Field(min_length=1)
    source: str = Field(pattern=r"^(simulated|recorded):.+|^[\w.]+:\w+$")
    options: dict[str, Any] = {}
    ranges: dict[str, Draw] = {}
    truth: str
    hypothesis_set: str
    channel: str | None = None
    reduction: str | None = None
    budget: Annotated[int, Field(ge=2)] | None = None
    campaigns: Counts | None = Field(None, min_length=1)

    @field_validator("campaigns")
    @classmethod
    def _known_counts(cls, counts: dict[str, int] | None) -> dict[str, int] | None:
        _known_policies(counts or {})
        return counts

    @model_validator(mode="after")
    def _disjoint(self) -> Family:
        both = sorted(set(self.options) & set(self.ranges))
        if both:
            raise ValueError(f"options and ranges both set {', '.join(both)}: give each option once")
        return self


class SweepConfig(_Strict):
    sweep: SweepSection
    hypothesis_sets: dict[str, list[str]] = Field(min_length=1)
    problem: list[Problem] = []
    family: list[Family] = []

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        if not self.problem and not self.family:
            raise ValueError("give at least one [[problem]] or [[family]]")
        if self.problem and not self.sweep.policies:
            raise ValueError("sweep.policies: [[problem]] campaigns need the policies to run")
        names = [f.name for f in self.family]
        for i, f in enumerate(self.family):
            where = f"family.{i} ({f.name!r})"
            if f.name in names[:i]:
                raise ValueError(f"{where}.name: family.{names.index(f.name)} is called {f.name!r} too")
            if f.hypothesis_set not in self.hypothesis_sets:
                raise ValueError(
                    f"{where}.hypothesis_set: {f.hypothesis_set!r} is not defined; "
                    f"defined: {sorted(self.hypothesis_sets)}"
                )
            if f.truth != OUT_OF_SET and f.truth not in self.hypothesis_sets[f.hypothesis_set]:
                raise ValueError(
                    f"{where}.truth: {f.truth!r} is not in set {f.hypothesis_set!r} "
                    f"({', '.join(self.hypothesis_sets[f.hypothesis_set])}); "
                    f"out of the set, write truth = {OUT_OF_SET!r}"
                )
            if not (f.campaigns or self.sweep.campaigns):
                raise ValueError(f"{where}.campaigns: give campaigns per policy here or under [sweep]")
        return self

    def counts(self, family: Family) -> dict[str, int]:
        """Campaigns per policy of ``family`` (its own, else [sweep]'s)."""
        return dict(family.campaigns or self.sweep.campaigns or {})

    def budget(self, family: Family) -> int:
        return family.budget or self.sweep.budget

    def only(self, families: Sequence[str]) -> SweepConfig:
        """The families named (in config order) and no problems: one family run alone.

        Raises:
            ConfigError: a name that is not a family of this config (lists the families).
        """
        known = [f.name for f in self.family]
        unknown = [n for n in families if n not in known]
        if unknown:
            raise ConfigError(
                f"no family {', '.join(map(repr, unknown))} in sweep {self.sweep.name!r}; families: {', '.join(known)}"
            )
        return self.model_copy(update={"problem": [], "family": [f for f in self.family if f.name in families]})

    def reduced(
        self, campaigns: int | None = None, budget: int | None = None, policies: Sequence[str] | None = None
    ) -> SweepConfig:
        """A smaller run of the families: at most ``campaigns`` per policy and family (the first ones, so
        the same truths as the full run), another ``budget``, only ``policies``.

        Raises:
            ConfigError: ``policies`` leaves a family with none.
        """
        fams = []
        for f in self.family:
            counts = {
                p: min(c, campaigns) if campaigns else c
                for p, c in self.counts(f).items()
                if policies is None or p in policies
            }
            if not counts:
                raise ConfigError(
                    f"family {f.name!r} runs none of the policies {list(policies or [])}; "
                    f"it runs {', '.join(self.counts(f))}"
                )
            fams.append(f.model_copy(update={"campaigns": counts, "budget": budget or self.budget(f)}))
        sweep = self.sweep.model_copy(update={"budget": budget or self.sweep.budget})
        return self.model_copy(update={"family": fams, "sweep": sweep})

    def cells(self) -> list[dict[str, Any]]:
        """Every campaign, as plain dicts (they travel to Dask workers)."""
        out = []
        common = {"n_init": self.sweep.n_init, "epsilon": self.sweep.epsilon}
        for p in self.problem:
            sets = p.hypothesis_sets or list(self.hypothesis_sets)
            for s in sets:
                if s not in self.hypothesis_sets:
                    raise ConfigError(
                        f"problem {p.name!r} names hypothesis set {s!r}; defined: {sorted(self.hypothesis_sets)}"
                    )
            for s, policy, seed in itertools.product(sets, self.sweep.policies or [], self.sweep.seed_list()):
                out.append(
                    {
                        "problem": p.model_dump(exclude={"hypothesis_sets"}),
                        "hypothesis_set": s,
                        "hypotheses": self.hypothesis_sets[s],
                        "policy": policy,
                        "seed": seed,
                        "campaign": seed,
                        "budget": self.sweep.budget,
                        "drawn": {},
                        "kind": "problem",
                        **common,
                    }
                )
        for f in self.family:
            for policy, count in self.counts(f).items():
                for i in range(count):
                    drawn = draw(f.name, i, f.ranges)
                    problem = {
                        "name": f.name,
                        "source": f.source,
                        "options": {**f.options, **drawn},
                        "truth": f.truth,
                        "channel": f.channel,
                        "reduction": f.reduction,
                    }
                    out.append(
                        {
                            "problem": problem,
                            "hypothesis_set": f.hypothesis_set,
                            "hypotheses": self.hypothesis_sets[f.hypothesis_set],
                            "policy": policy,
                            "seed": campaign_seed(f.name, i),
                            "campaign": i,
                            "budget": self.budget(f),
                            "drawn": drawn,
                            "kind": "family",
                            **common,
                        }
                    )
        return out


def load_sweep(path: str | Path) -> SweepConfig:
    return load_toml(path, SweepConfig)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def campaign_seed(family: str, index: int) -> int:
    """The seed of campaign ``index`` of ``family`` (campaign and simulator): the same under every policy."""
    return int(np.random.SeedSequence(_h(family), spawn_key=(index, 0)).generate_state(1)[0])


def draw(family: str, index: int, ranges: Mapping[str, Draw]) -> dict[str, Any]:
    """The options campaign ``index`` of ``family`` draws: one generator per (family, index, option)."""
    out = {}
    for name, spec in ranges.items():
        rng = np.random.default_rng(np.random.SeedSequence(_h(family), spawn_key=(index, _h(name))))
        out[name] = spec.sample(rng, index)
    return out


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
    """The step's leading law and its probability; ("", NaN) while a law is unfitted or before a fit."""
    if record.unfitted or not record.probabilities:
        return "", math.nan
    name = max(record.probabilities, key=record.probabilities.__getitem__)
    return name, float(record.probabilities[name])


def run_cell(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """One campaign -> its rows of ``results.csv`` (runs on a Dask worker)."""
    import torch

    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.rehearse.rehearsal import Rehearsal, reconstruction_error, truth_on

    torch.set_num_threads(1)  # one campaign per worker thread: measured fastest on small machines
    p = cell["problem"]
    rehearsal = Rehearsal(
        source=p["source"],
        options=p["options"],
        hypotheses=tuple(cell["hypotheses"]),
        policy=cell["policy"],
        budget=cell["budget"],
        seed=cell["seed"],
        n_init=cell["n_init"],
        epsilon=cell["epsilon"],
        channel=p["channel"],
        reduction=p["reduction"],
    )
    t0, c0 = time.perf_counter(), time.process_time()
    campaign, instrument = rehearsal.build()
    rows = []
    truth_name = p["truth"]
    in_set = truth_name in cell["hypotheses"]
    key = {
        "problem": p["name"],
        "hypothesis_set": cell["hypothesis_set"],
        "policy": cell["policy"],
        "seed": cell["seed"],
        "campaign": cell["campaign"],
        "truth": truth_name or "",
    }
    last = []

    def record(r) -> None:
        leader, p_leader = _leader(r)
        check = r.checks.get(leader) if leader else None
        rows.append(
            {
                **key,
                "n": r.step + 1,
                "p_true": r.probabilities.get(truth_name, math.nan) if in_set else math.nan,
                "leader": leader,
                "p_leader": p_leader,
                "p_none": float(r.none["probability"]) if r.none else math.nan,
                "leader_misfit": math.nan if check is None else float(check["misfit"]),
            }
        )
        last[:] = [r]

    run_campaign(campaign, instrument, [record])
    if not rows:
        return rows
    points = campaign.points()
    truth = truth_on(instrument.driver, points, p["reduction"])
    end = rows[-1]
    end.update(
        {
            "error": reconstruction_error(campaign, truth) if truth is not None else math.nan,
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
        leader, p_leader = _leader(last[0])
        wrong = p_leader >= 0.9 and (leader != truth_name)  # out of the set, every law is wrong
        end["wrong_at_09"] = float(wrong)
    end["space"] = "finite" if campaign.space.is_finite else "box"
    end.update({f"truth_{k}": v for k, v in cell["drawn"].items()})
    end["seconds"] = time.perf_counter() - t0
    end["cpu_seconds"] = time.process_time() - c0
    return rows


def _col(frame, name: str):
    """A column, or all-NaN where the frame has none (hand-made or older results)."""
    import pandas as pd

    return frame[name] if name in frame else pd.Series(math.nan, index=frame.index)


def _fraction(values) -> float:
    v = values.dropna()
    return float(v.mean()) if len(v) else math.nan


def _campaign_key(frame) -> str:
    return "campaign" if "campaign" in frame else "seed"


def summarize(results, threshold: float = 0.95, quantile: float = 0.95):
    """Per problem (family), set and policy, at the budget (each campaign's last step):

    ``seeds`` (campaigns); ``n95`` (the fewest measurements from which on, to the budget, at least
    ``quantile`` of the campaigns have P(true) >= ``threshold``; NaN if that never happens, or out of
    the set); ``identified_at_budget`` (fraction with P(true) >= ``threshold``); ``wrong_at_09``
    (fraction where a wrong law leads with P >= 0.9; out of the set, any law); ``p_none_median``
    (median P("none of these")); ``none_leads`` (fraction where it is more probable than every law);
    ``flagged`` (fraction the user is told that the set does not explain the data: "none of these"
    leads, or the leading law fails its posterior predictive checks, ``leader_misfit``);
    ``coverage_mean`` / ``coverage_min`` (the true law's 95% band over the points); ``coverage_fair_noise``
    (its mean over the campaigns whose ``noise_z`` is within 2: what the band does when the data are not
    the tail of their own noise; NaN without the column); ``xc_within_2sd``
    (fraction with ``|x_c error| <= 2 sd``) and ``xc_err_over_sd_median`` (median ``|error| / sd``);
    the median final ``error``, ``seconds`` and ``cpu_seconds``.
    """
    import pandas as pd

    out = []
    camp = _campaign_key(results)
    for (prob, hset, policy), g in results.groupby(["problem", "hypothesis_set", "policy"], sort=False):
        curve = identification_curve(g, threshold)
        below = curve < quantile - 1e-12
        # n95: from here on (to the budget) at least `quantile` of the campaigns stay identified
        ok = curve[~below[::-1].cummax()[::-1]]
        last = g.sort_values("n").groupby(camp).tail(1)
        truth = str(last["truth"].fillna("").iloc[0]) if "truth" in last else ""  # empty (NaN read back): unknown
        # in the set: a named truth other than "none" (older results without the column: any P(true) at all)
        in_set = truth not in ("", OUT_OF_SET) if "truth" in last else bool(last["p_true"].notna().any())
        xc_err, xc_sd = _col(last, "xc_error"), _col(last, "xc_sd")
        has_xc = xc_err.notna() & xc_sd.notna()
        ratio = (xc_err[has_xc].abs() / xc_sd[has_xc]).replace(np.inf, np.nan)
        p_none, p_leader = _col(last, "p_none"), _col(last, "p_leader")
        misfit = _col(last, "leader_misfit")
        none_leads = p_none > p_leader.fillna(0.0)
        out.append(
            {
                "problem": prob,
                "hypothesis_set": hset,
                "policy": policy,
                "truth": truth,
                "seeds": last[camp].nunique(),
                "n95": int(ok.index[0]) if in_set and len(ok) else math.nan,
                "identified_at_budget": float(curve.iloc[-1]) if in_set and len(curve) else math.nan,
                "wrong_at_09": _fraction(_col(last, "wrong_at_09")),
                "p_none_median": float(p_none.median()) if p_none.notna().any() else math.nan,
                "none_leads": float(none_leads.mean()) if p_none.notna().any() else math.nan,
                "flagged": float((none_leads | (misfit == 1.0)).mean())
                if p_none.notna().any() or misfit.notna().any()
                else math.nan,
                "coverage_mean": float(_col(last, "coverage").mean()),
                "coverage_min": float(_col(last, "coverage").min()),
                "coverage_fair_noise": float(_col(last, "coverage")[_col(last, "noise_z").abs() <= 2.0].mean()),
                "xc_within_2sd": float((ratio <= 2.0).mean()) if has_xc.any() else math.nan,
                "xc_err_over_sd_median": float(ratio.median()) if has_xc.any() else math.nan,
                "median_error": float(_col(last, "error").median()),
                "median_seconds": float(_col(last, "seconds").median()),
                "median_cpu_seconds": float(_col(last, "cpu_seconds").median()),
            }
        )
    return pd.DataFrame(out)


def identification_curve(group, threshold: float = 0.95):
    """Fraction of campaigns with P(true) >= threshold after n measurements, indexed by n.

    A campaign that stopped early keeps its last probability for the larger n."""
    wide = group.pivot_table(index="n", columns=_campaign_key(group), values="p_true", dropna=False)
    return (wide.sort_index().ffill() >= threshold).mean(axis=1)


def none_curve(group):
    """Fraction of campaigns in which "none of these" is more probable than every law, by n."""
    g = group.assign(_none_leads=(group["p_none"] > group["p_leader"].fillna(0.0)).astype(float))
    wide = g.pivot_table(index="n", columns=_campaign_key(group), values="_none_leads", dropna=False)
    return wide.sort_index().ffill().mean(axis=1)


def calibration(results, bins: Sequence[tuple[float, float]] = CALIBRATION_BINS):
    """Reliability of the leader's probability over every (campaign, step) of in-set campaigns.

    A case is one step of a campaign whose truth is in its set, with a leader (no unfitted law) of
    probability >= the first bin's lower edge. Per policy and pooled (``policy = "all"``), per bin
    ``[lo, hi)`` (the last closed): ``count``, ``confidence`` (mean P(leader)), ``accuracy`` (fraction
    in which the leader is the truth); and per group ``ece`` = sum over bins of
    ``count / cases |accuracy - confidence|`` (``cases`` = the group's cases in any bin).

    Returns:
        DataFrame with columns policy, bin, lo, hi, count, confidence, accuracy, cases, ece.
    """
    import pandas as pd

    truth = results["truth"].fillna("").astype(str)
    leader = results["leader"].fillna("").astype(str)
    # P(true) is NaN out of the set, for a truth missing from the set, and while the truth is unfitted (no leader then)
    cases = results[
        (truth != "")
        & (truth != OUT_OF_SET)
        & results["p_true"].notna()
        & (leader != "")
        & (results["p_leader"] >= bins[0][0])
    ]
    edges = np.array([lo for lo, _ in bins])
    rows = []
    groups = [(pol, g) for pol, g in cases.groupby("policy", sort=False)] + [("all", cases)]
    for policy, g in groups:
        which = np.searchsorted(edges, g["p_leader"].to_numpy(), side="right") - 1
        correct = (g["leader"] == g["truth"]).to_numpy(dtype=float)
        conf = g["p_leader"].to_numpy(dtype=float)
        part = []
        for b, (lo, hi) in enumerate(bins):
            m = which == b
            label = f">{lo:g}" if b == len(bins) - 1 else f"{lo:g}-{hi:g}"
            part.append(
                {
                    "policy": policy,
                    "bin": label,
                    "lo": lo,
                    "hi": hi,
                    "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else math.nan,
                    "accuracy": float(correct[m].mean()) if m.any() else math.nan,
                }
            )
        total = sum(r["count"] for r in part)
        ece = (
            sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in part if r["count"])
            if total
            else math.nan
        )
        rows.extend({**r, "cases": total, "ece": ece} for r in part)
    return pd.DataFrame(rows, columns=["policy", "bin", "lo", "hi", "count", "confidence", "accuracy", "cases", "ece"])


def _fmt(v, spec: str = ".2f", missing: str = "—") -> str:
    return missing if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(summary, calib=None, budgets: Mapping[str, int] | None = None) -> str:
    """The README's table: one row per family (problem) and policy, and the calibration below it."""
    head = (
        "| family | policy | campaigns | identified (P ≥ 0.95) | wrong (P ≥ 0.9) | n95 | P(none) median "
        "| none leads | flagged | band coverage mean (min) | x_c within 2 sd | median \\|err\\|/sd |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in summary.itertuples(index=False):
        budget = f" ({budgets[r.problem]})" if budgets and r.problem in budgets else ""
        n95 = (
            _fmt(r.n95, ".0f")
            if not (isinstance(r.identified_at_budget, float) and math.isnan(r.identified_at_budget))
            else "n/a"
        )
        cov = "n/a" if math.isnan(r.coverage_mean) else f"{r.coverage_mean:.2f} ({r.coverage_min:.2f})"
        fair = getattr(r, "coverage_fair_noise", math.nan)
        if cov != "n/a" and not math.isnan(fair):
            cov += f"; {fair:.2f} fair noise"
        lines.append(
            f"| {r.problem}{budget} | {r.policy} | {r.seeds} | {_fmt(r.identified_at_budget, missing='n/a')} "
            f"| {_fmt(r.wrong_at_09)} | {n95} | {_fmt(r.p_none_median, '.3f')} | {_fmt(r.none_leads)} "
            f"| {_fmt(getattr(r, 'flagged', math.nan))} "
            f"| {cov} | {_fmt(r.xc_within_2sd, missing='n/a')} "
            f"| {_fmt(r.xc_err_over_sd_median, '.3g', missing='n/a')} |"
        )
    if calib is not None and len(calib):
        labels = list(dict.fromkeys(calib["bin"]))
        lines += [
            "",
            "| policy | " + " | ".join(f"P(leader) {b}" for b in labels) + " | ECE |",
            "|---|" + "---|" * (len(labels) + 1),
        ]
        for policy, g in calib.groupby("policy", sort=False):
            cells = [f"{_fmt(r.accuracy)} ({r.count})" for r in g.itertuples(index=False)]
            lines.append(f"| {policy} | " + " | ".join(cells) + f" | {_fmt(g['ece'].iloc[0], '.3f')} |")
    return "\n".join(lines) + "\n"


def plot(results, path: Path, threshold: float = 0.95) -> None:
    """One panel per (problem, hypothesis set): fraction identified vs n, a line per policy
    (out of the set: the fraction in which "none of these" leads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results.groupby(["problem", "hypothesis_set"], sort=False))
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, ((prob, hset), g) in zip(axes.flat, panels):
        out_of_set = "truth" in g and (g["truth"] == OUT_OF_SET).all()
        for policy, gp in g.groupby("policy", sort=False):
            curve = none_curve(gp) if out_of_set else identification_curve(gp, threshold)
            ax.plot(curve.index, curve.values, label=policy)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{prob} ({hset})", fontsize=9)
        ax.set_xlabel("measurements")
        ax.set_ylabel('fraction with "none" leading' if out_of_set else f"fraction with P(true) ≥ {threshold}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(calib, path: Path) -> None:
    """Accuracy against mean confidence per bin, a line per policy and the pooled one, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", lw=0.8, ls="--")
    for policy, g in calib.groupby("policy", sort=False):
        g = g[g["count"] > 0]
        pooled = policy == "all"
        ax.plot(
            g["confidence"],
            g["accuracy"],
            marker="o",
            lw=2.2 if pooled else 1.0,
            color="black" if pooled else None,
            label=f"{policy} (ECE {_fmt(g['ece'].iloc[0] if len(g) else math.nan, '.3f')})",
        )
        axc.plot(g["confidence"], g["count"], marker=".", lw=2.2 if pooled else 0.8, color="black" if pooled else None)
    ax.set_ylabel("fraction: leader is the truth")
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7)
    if calib["count"].sum():
        axc.set_yscale("log")
    else:
        ax.set_title("no in-set step with a leader of P >= 0.5", fontsize=9)
    axc.set_xlabel("P(leader), mean in bin")
    axc.set_ylabel("steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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

    last = results.sort_values("n").groupby(["problem", "policy", _campaign_key(results)]).tail(1)
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
        row["campaigns"] += 1
        row["seconds"] += per * cell["budget"]
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
    return results, summary
