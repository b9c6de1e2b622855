"""A sweep's config (:mod:`abduce.controller.rehearse.sweep`, where the format is described), validated, and
the truths its families draw: seeded by family and campaign, the same for every policy."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.recipe.settings import load_toml
from abduce.controller.registry import check_name

OUT_OF_SET = "none"
"""A family's ``truth`` when no hypothesis of its set generated the data."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(kind: str, name: str, dotted: bool = False) -> str:
    """``name`` when it is a built-in ``kind`` (or, with ``dotted``, a dotted path), read from the torch-free
    list (:func:`~abduce.controller.registry.check_name`), so a misspelt name fails before the sweep starts a
    cluster; as a ValueError, so the config's error names the file, the line and the key."""
    try:
        return check_name(kind, name, dotted)
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None


def _known_policies(names) -> None:
    for n in names:
        _known("policy", n)


def _known_source(source: str) -> str:
    """``simulated:NAME`` names a built-in simulator (``recorded:PATH`` and ``package.module:Driver`` are
    checked when a cell builds its driver)."""
    kind, _, name = source.partition(":")
    if kind == "simulated":
        _known("simulator", name)
    return source


def _known_reduction(spec: str | None) -> str | None:
    return None if spec is None else _known("reduction", spec, dotted=True)


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
    propose: Literal["off", "add", "suggest"] = "off"  # abduction in every campaign (controller/core/abduction.py)
    propose_depth: Annotated[int, Field(ge=1, le=3)] = 1
    composition_cost: Annotated[float, Field(gt=0, le=1)] = Recipe.model_fields["composition_cost"].default
    propose_admit: Annotated[float, Field(gt=0, le=1)] = Recipe.model_fields["propose_admit"].default

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


class _Source(_Strict):
    """A problem's or family's source and reduction, checked by name (no torch imported)."""

    @field_validator("source", check_fields=False)
    @classmethod
    def _known_source(cls, source: str) -> str:
        return _known_source(source)

    @field_validator("reduction", check_fields=False)
    @classmethod
    def _known_reduction(cls, spec: str | None) -> str | None:
        return _known_reduction(spec)


class Problem(_Source):
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


class Family(_Source):
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
    propose: Literal["off", "add", "suggest"] | None = None  # overrides the sweep's (a baseline family: "off")
    draws: str | None = None  # draw truths and seeds as the family of this name does (a paired baseline)
    composed: str | None = None  # the composition abduction should propose (the truth outside the declared set)
    critical: dict[str, str] = {}  # the composed law's critical points -> the simulator's attributes holding them
    # a chain of samples (source simulated:sample-series): sample 0 cold, each later one from the last by transfer,
    # with a cold start on the same sample beside it; the transfer's temper, declared share, drift and carry
    # (None: its defaults)
    series: Annotated[int, Field(ge=2, le=20)] | None = None
    temper: Annotated[float, Field(gt=0, le=1)] | None = None
    transfer_share: Annotated[float, Field(gt=0, le=1)] | None = None
    transfer_drift: Annotated[float, Field(ge=0, le=1)] | None = None
    transfer_carry: Annotated[float, Field(ge=0, lt=1)] | None = None
    # several channels with costs (README, "Several channels with costs"): the cheaper channels modelled beside
    # the explained one, each with its cost; the explained one's; a cost to stop at; the acquisition (None: the
    # policy's default, model-information with cheaper channels); its design points read on the explained channel
    cheap_channels: dict[str, Annotated[float, Field(gt=0)]] = {}
    cost: Annotated[float, Field(gt=0)] | None = None
    cost_budget: Annotated[float, Field(gt=0)] | None = None
    acquisition: str | None = None
    design_explained: Annotated[int, Field(ge=2)] | None = None

    @field_validator("acquisition")
    @classmethod
    def _known_acquisition(cls, name: str | None) -> str | None:
        return None if name is None else _known("acquisition", name)

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
        if self.series is not None and self.source != "simulated:sample-series":
            raise ValueError(
                f"series: a chain of samples needs source = 'simulated:sample-series', not {self.source!r}"
            )
        transfer = (self.temper, self.transfer_share, self.transfer_drift, self.transfer_carry)
        if self.series is None and any(v is not None for v in transfer):
            raise ValueError(
                "temper, transfer_share, transfer_drift and transfer_carry go with series (a chain of samples)"
            )
        if {"sample", "series_seed"} & (set(self.options) | set(self.ranges)):
            raise ValueError("sample and series_seed are set by the chain (series), not by options or ranges")
        return self


class SweepConfig(_Strict):
    sweep: SweepSection
    hypothesis_sets: dict[str, list[str]] = Field(min_length=1)
    problem: list[Problem] = []
    family: list[Family] = []

    @field_validator("hypothesis_sets")
    @classmethod
    def _known_hypotheses(cls, sets: dict[str, list[str]]) -> dict[str, list[str]]:
        for names in sets.values():
            for name in names:
                _known("hypothesis", name, dotted=True)
        return sets

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
        common = {
            "n_init": self.sweep.n_init,
            "epsilon": self.sweep.epsilon,
            "propose": self.sweep.propose,
            "propose_depth": self.sweep.propose_depth,
            "composition_cost": self.sweep.composition_cost,
            "propose_admit": self.sweep.propose_admit,
        }
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
                    drawn = draw(f.draws or f.name, i, f.ranges)
                    problem = {
                        "name": f.name,
                        "source": f.source,
                        "options": {**f.options, **drawn},
                        "truth": f.truth,
                        "channel": f.channel,
                        "reduction": f.reduction,
                        "composed": f.composed,
                        "critical": dict(f.critical),
                        "series": f.series,
                        "temper": f.temper,
                        "share": f.transfer_share,
                        "drift": f.transfer_drift,
                        "carry": f.transfer_carry,
                        "channels": {
                            k: v
                            for k, v in (
                                ("cheap_channels", dict(f.cheap_channels)),
                                ("cost", f.cost),
                                ("cost_budget", f.cost_budget),
                                ("acquisition", f.acquisition),
                                ("design_explained", f.design_explained),
                            )
                            if v
                        },
                    }
                    out.append(
                        {
                            "problem": problem,
                            "hypothesis_set": f.hypothesis_set,
                            "hypotheses": self.hypothesis_sets[f.hypothesis_set],
                            "policy": policy,
                            "seed": campaign_seed(f.draws or f.name, i),
                            "campaign": i,
                            "budget": self.budget(f),
                            "drawn": drawn,
                            "kind": "family",
                            **common,
                            **({"propose": f.propose} if f.propose is not None else {}),
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
