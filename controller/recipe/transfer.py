"""What a campaign carries from a past one: the :class:`Transfer` in its recipe (README, "Transfer between
campaigns"; the priors it makes: :mod:`abduce.hypotheses.transfer`).

A transfer is read once, at the edge (``abduce run --prior-from RUN``, ``prior_from`` in a daemon config,
:meth:`Transfer.of` in Python), from the past campaign's end: each law's probability and each free
parameter's posterior mean and sd in physical units, the composed laws it had added (their trees), and its
space's units. It is then part of the new campaign's recipe, so the journal holds it whole: a resumed or
rebuilt campaign uses what was transferred, not the past run as it is now (which may be gone, or longer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from abduce.controller.errors import ConfigError

if TYPE_CHECKING:  # a recipe is read without torch (abduce inspect); applying a transfer needs it
    from abduce.controller.core.space import Space
    from abduce.controller.core.state import CampaignState
    from abduce.hypotheses.declaration import Hypothesis

TEMPER = 0.5  # the past posterior's variance doubled, and its probabilities' square roots
SHARE = 0.5  # a sample is new as often as like the last (README, the transfer benchmark: 0.2 measured too)
DRIFT = 0.1  # a sample may move a tenth of each parameter's declared range from the last (1 sd of a random walk)
CARRY = 0.0  # of a new sample's prior, the part whose quantities (x_c, A, ...) carry over (README: 0.5 measured)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PastLaw(_Strict):
    """One law at the end of the past campaign.

    Attributes:
        name: the law's name; tree: how it was composed (a law abduction added), None for a declared one.
        probability: its posterior probability at the end (of the laws and "none of these" together).
        parameters: per free parameter, ``(mean, sd)`` in physical units.
        units: per free parameter, ``(unit, axis)`` (:class:`~abduce.hypotheses.declaration.Parameter`).
    """

    name: str
    tree: dict[str, Any] | None = None
    probability: Annotated[float, Field(ge=0, le=1)]
    parameters: dict[str, tuple[float, float]]
    units: dict[str, tuple[str, int]]


class Transfer(_Strict):
    """What a campaign took from a past one, and how strongly (:mod:`abduce.hypotheses.transfer`).

    Attributes:
        source: the past run, as it was named (its folder), for people.
        campaign: the past campaign's name; measurements: how many it had made.
        temper: ``tau``: the past posteriors raised to it (variances divided by it, probabilities to its power).
        share: ``lambda``: the probability that the sample is new, its law and all of a law's parameters from
            their declared priors (each law's own share of its parameters' joint prior follows from it,
            :func:`~abduce.hypotheses.transfer.declared_shares`).
        drift: ``delta``: the sd a parameter may move from sample to sample, as a fraction of its declared range.
        carry: ``c``: of the new-sample branch, the part in which the law is drawn anew but the sample's
            quantities carry over: a parameter that the past campaign's declared laws had under the same name,
            unit and axis takes what they together said of it (:meth:`quantities`).
        axes: the past space's axis units; explained: the unit of the value its laws explained.
        laws: every law it weighed at its end.
    """

    source: str
    campaign: str = ""
    measurements: Annotated[int, Field(ge=0)] = 0
    temper: Annotated[float, Field(gt=0, le=1)] = TEMPER
    share: Annotated[float, Field(gt=0, le=1)] = SHARE
    drift: Annotated[float, Field(ge=0, le=1)] = 0.0  # DRIFT where made (of, the CLI, configs); 0 before the field
    carry: Annotated[float, Field(ge=0, lt=1)] = 0.0  # CARRY where made; 0 before the field
    axes: tuple[str, ...] = ()
    explained: str = ""
    laws: tuple[PastLaw, ...]

    @classmethod
    def of(
        cls,
        campaign: CampaignState,
        source: str,
        temper: float = TEMPER,
        share: float = SHARE,
        drift: float = DRIFT,
        carry: float = CARRY,
    ) -> Transfer:
        """The transfer from ``campaign`` at its last step (a live campaign, a rebuilt or snapshot one).

        Raises:
            ConfigError: ``temper`` or ``share`` outside (0, 1], ``drift`` outside [0, 1], ``carry`` outside
                [0, 1); the campaign has no fitted law to transfer (no step weighed yet).
        """
        from abduce.hypotheses.transfer import check_transfer

        check_transfer(temper, share, drift, carry)
        summary = campaign.summary()
        fitted = [h for h in summary["hypotheses"] if h["log_evidence"] is not None]  # weighed at the last step
        if not fitted:
            raise ConfigError(f"{source}: the past campaign has no fitted law to transfer (no step weighed)")
        laws = []
        channels = getattr(campaign, "channels", None)
        links = set()  # a campaign over several channels: its laws' links to the cheap ones belong to that instrument
        if channels is not None:
            from abduce.hypotheses.channels import link_parameters

            links = {p.name for p in link_parameters(channels.count, campaign.physical_space.d)}
        for h in fitted:
            law = campaign.belief.slot(h["name"]).hypothesis  # type: ignore[union-attr]
            # interchangeable parts keep their declared priors (hypotheses.transfer.transferred): not carried
            skip = law.interchangeable | links
            moments = {k: v for k, v in _moments(h["parameters"]).items() if k not in skip}
            laws.append(
                PastLaw(
                    name=h["name"],
                    tree=law.tree if law.depth > 0 else None,
                    probability=float(h["probability"]),
                    parameters=moments,
                    units={p.name: (p.unit, p.axis) for p in law.free if p.name in moments},
                )
            )
        space = getattr(campaign, "physical_space", campaign.space)  # without a channel axis
        return cls(
            source=source,
            campaign=campaign.name,
            measurements=campaign.n,
            temper=temper,
            share=share,
            drift=drift,
            carry=carry,
            axes=tuple(space.units or ("",) * space.d),
            explained=space.explained.unit,
            laws=tuple(laws),
        )

    def quantities(self) -> dict[tuple[str, str, int], tuple[float, float]]:
        """What the past campaign's declared laws together said of each quantity of the sample (:func:`pooled`;
        the composed laws left out: their parts' renamed parameters, ``x_c_1``, name different things in
        different sums); {} without a carry."""
        if not self.carry:
            return {}
        return pooled([(w.probability, w.parameters, w.units) for w in self.laws if w.tree is None], self.temper)

    def check_space(self, space: Space) -> None:
        """Raises ConfigError where the new space is not in the past one's units (another grid or range is
        fine: the priors are physical), naming the axis or the explained value."""
        if len(self.axes) != space.d:
            raise ConfigError(
                f"transfer from {self.source}: its space has {len(self.axes)} axes, this campaign's {space.d}"
            )
        for i, (past, now) in enumerate(zip(self.axes, space.units or ("",) * space.d)):
            if past and now and past != now:
                raise ConfigError(
                    f"transfer from {self.source}: axis {i} ({space.names[i]}) was in {past!r}, is in {now!r} "
                    "(physical values transfer in the same units only)"
                )
        now = space.explained.unit
        if self.explained and now and self.explained != now:
            raise ConfigError(
                f"transfer from {self.source}: the explained value was in {self.explained!r}, is in {now!r}"
            )

    def apply(self, declared: list[Hypothesis], space: Space, cost: float) -> tuple[list[Hypothesis], list[float]]:
        """The campaign's laws and their prior weights: ``declared`` and, after them, the composed laws the past
        campaign had added (built again from their trees on ``declared``), each with its transferred priors at
        its own declared share (:func:`~abduce.hypotheses.transfer.declared_shares`); the weights mix the
        declared prior (1 a declared law, a composed one its complexity prior's weight at ``cost``) with the
        past probabilities (:func:`~abduce.hypotheses.transfer.law_weights`).

        Raises:
            ConfigError: see :meth:`check_space`; a composed law built from a law this campaign does not
                declare; a transferred parameter the law does not have or of another unit.
        """
        from abduce.hypotheses.grammar import build, depth_counts, enumerate_compositions, prior_weight
        from abduce.hypotheses.transfer import declared_shares, law_weights, transferred

        self.check_space(space)
        by_name = {h.name: h for h in declared}

        def resolve(name: str) -> Hypothesis:
            if name not in by_name:
                raise ConfigError(
                    f"transfer from {self.source}: a composed law of the past campaign is built from {name!r}, "
                    "which this campaign does not declare"
                )
            return by_name[name]

        laws, base = list(declared), [1.0] * len(declared)
        for past in self.laws:
            if past.tree is None or past.name in by_name:
                continue
            h = build(past.tree, resolve)
            if h.name != past.name:
                raise ConfigError(f"transfer from {self.source}: {past.name!r}'s tree builds {h.name!r}")
            laws.append(h)
            base.append(prior_weight(h, depth_counts(enumerate_compositions(declared, space.d, h.depth)), cost))
        known = {past.name: past for past in self.laws}
        probabilities = [known[h.name].probability if h.name in known else None for h in laws]
        shares = declared_shares(base, probabilities, self.temper, self.share)
        carried = self.quantities()
        out = []
        for h, w in zip(laws, shares):
            past = known.get(h.name)
            moments, units = (past.parameters, past.units) if past is not None else ({}, {})
            if past is None and not self.carry:
                out.append(h)
                continue
            new, changed = w * (1.0 - self.carry), w * self.carry
            across = carried if h.depth == 0 else None  # a composed law's renamed parts (x_c_1) carry nothing
            out.append(transferred(h, moments, units, self.temper, new, self.drift, across, changed))
        return out, law_weights(base, probabilities, self.temper, self.share)


def pooled(
    laws: Sequence[tuple[float | None, Mapping[str, tuple[float, float]], Mapping[str, tuple[str, int]]]], temper: float
) -> dict[tuple[str, str, int], tuple[float, float]]:
    """What the past campaign's laws together say of each quantity of the sample: per ``(name, unit, axis)``,
    the mean and sd of the mixture of the laws' posteriors of a parameter so named, each law weighed by its
    tempered past probability ``p_h^tau`` (renormalised over the laws that have the parameter; a quantity
    only laws of probability 0 have is left out).

    Args:
        laws: per law, its past probability (None: not weighed), its parameters' ``(mean, sd)`` and their
            ``(unit, axis)``, physical units.
    """
    groups: dict[tuple[str, str, int], list[tuple[float, float, float]]] = {}
    for probability, moments, units in laws:
        weight = 0.0 if probability is None else max(float(probability), 0.0) ** temper
        for name, (mean, sd) in moments.items():
            if weight > 0 and name in units:
                groups.setdefault((name, *units[name]), []).append((weight, float(mean), float(sd)))  # type: ignore[arg-type]
    out = {}
    for key, rows in groups.items():
        total = sum(w for w, _, _ in rows)
        mean = sum(w * m for w, m, _ in rows) / total
        var = sum(w * (sd**2 + (m - mean) ** 2) for w, m, sd in rows) / total
        if var > 0 and math.isfinite(mean):
            out[key] = (mean, math.sqrt(var))
    return out


def checked_transfer(**given: float | None) -> None:
    """Raises ConfigError where a given ``temper``, ``share``, ``drift`` or ``carry`` (None: its default) is out
    of range: at the edge, before a past run is read."""
    from abduce.hypotheses.transfer import check_transfer

    defaults = {"temper": TEMPER, "share": SHARE, "drift": DRIFT, "carry": CARRY}
    check_transfer(**{k: given.get(k) if given.get(k) is not None else v for k, v in defaults.items()})  # type: ignore[arg-type]


def _moments(parameters: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """``{name: (mean, sd)}`` of the parameters whose posterior has a finite mean and an sd above 0 (one that
    collapsed onto a single draw says nothing about its width: its declared prior stands)."""
    out = {}
    for name, v in parameters.items():
        mean, sd = float(v["mean"]), float(v["sd"])
        if math.isfinite(mean) and math.isfinite(sd) and sd > 0:
            out[name] = (mean, sd)
    return out
