"""The campaign recipe: ONE description of what a campaign learns, and the one place its defaults live.

Every way of starting a campaign builds from a :class:`Recipe`: the daemon's
``[campaign]`` section is one, ``abduce run`` (in-process and ``--listen``)
and a rehearsal (``abduce replay``, a sweep's cell) extend it with where the
readings come from, and a journal's config is read back into one
(:mod:`abduce.controller.recipe.spec`), so a resumed or rebuilt campaign is
built the same way it was first built.

Names are checked against the registries (policies, acquisitions, hypotheses;
a hypothesis may also be a dotted path to a user's own), never against a
list kept here. Reading a journal back skips those look-ups (they were made
when the campaign was built, and ``abduce inspect`` imports no torch): pass
``context={"journal": True}`` to ``model_validate``.

Example:
    >>> recipe = Recipe(hypotheses=("second-order", "linear"), budget=30)
    >>> campaign = recipe.build_campaign(Space.box([(0.0, 1.0)]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from abduce.controller.errors import AbduceError, ConfigError
from abduce.controller.recipe.transfer import Transfer

if TYPE_CHECKING:
    import torch

    from abduce.controller.core.settings import CampaignSettings
    from abduce.controller.core.space import Space
    from abduce.controller.core.state import CampaignState


TRANSITION_LAWS = ("second-order", "first-order", "linear", "sigmoid")
"""The laws ``abduce run`` and ``abduce demo`` weigh by default: the transition simulator's family."""


def _from_journal(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("journal"))


class Recipe(BaseModel):
    """What a campaign learns, and how it decides.

    Attributes:
        name: a label for people (status, logs); request ids do not depend on it, so a renamed
            campaign still resumes from its journal.
        hypotheses: the competing laws, by registered name or ``package.module:name``.
        policy: the hypothesis-selection policy (a registered name).
        acquisition: an acquisition (a registered name); None = the policy's default.
        budget: measurements.
        seed: seeds every random choice of the campaign (and a simulator's noise where abduce builds it).
        n_init: space-filling measurements before the first fit.
        epsilon: epsilon-greedy's exploration probability.
        channel: the instrument channel the hypotheses explain (default: its first scalar channel).
        reduction: spectrum -> scalar, for an array channel: a registered name (``loop-area``, ...) or
            ``package.module:function``.
        device: where the maths runs: ``auto`` (CUDA when present), ``cpu`` or ``cuda``; resolved when
            the campaign is built (:func:`resolve_device`).
        exact_max_n, inducing, exact_memory_gb: when exact inference gives way to inducing points
            (:class:`~abduce.hypotheses.belief.InferenceSettings`; README, "Large campaigns").
        q: points per request, measured as one batch (``Campaign.ask(q=...)``; README, "Batches").
        propose, propose_depth, composition_cost, propose_admit: abduction
            (:mod:`abduce.controller.core.abduction`; README, "Abduction"): ``off``, ``add`` composed laws that
            beat every law, or ``suggest`` them for an operator; composition steps; the complexity prior's
            factor per step; below 1, the probability (were it added) from which a composed law is also added.
        transfer: what the campaign took from a past one (:class:`~abduce.controller.recipe.transfer.Transfer`;
            README, "Transfer between campaigns"), held whole so a journal resumes without the past run.
        cheap_channels, cost, cost_unit, cost_budget, design_explained: several channels with costs
            (:mod:`abduce.controller.core.channels`; README, "Several channels with costs"): the cheaper channels
            modelled beside ``channel``, each with the cost of one reading; what one reading of ``channel``
            costs; the costs' unit; a cost to stop at (besides ``budget``, which counts readings of every
            channel); how many design points are read on ``channel`` too. With cheaper channels the
            acquisition defaults to ``model-information`` (information about which law is true, per cost).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")] = "campaign"
    hypotheses: Annotated[tuple[str, ...], Field(min_length=1)]
    policy: str = "discriminate"
    acquisition: str | None = None
    budget: Annotated[int, Field(ge=1)] = 40
    seed: int = 0
    n_init: Annotated[int, Field(ge=1)] = 5
    epsilon: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    channel: str | None = None
    reduction: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    exact_max_n: Annotated[int, Field(ge=1)] = 1000
    inducing: Annotated[int, Field(ge=1)] = 512
    exact_memory_gb: Annotated[float, Field(gt=0)] = 4.0
    q: Annotated[int, Field(ge=1, le=64)] = 1
    propose: Literal["off", "add", "suggest"] = "off"
    propose_depth: Annotated[int, Field(ge=1, le=3)] = 1
    composition_cost: Annotated[float, Field(gt=0, le=1)] = 1.0
    propose_admit: Annotated[float, Field(gt=0, le=1)] = 1.0
    transfer: Transfer | None = None
    cheap_channels: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[float, Field(gt=0, allow_inf_nan=False)]
    ] = {}
    cost: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    cost_unit: Annotated[str, Field(max_length=32)] = ""
    cost_budget: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    design_explained: Annotated[int, Field(ge=2)] = 2

    @model_validator(mode="after")
    def _channels_fit(self, info: ValidationInfo) -> Self:
        """Cheaper channels: one scalar channel explained, one point at a time, no proposals."""
        if not self.cheap_channels:
            return self
        if self.reduction is not None:
            raise ValueError("cheap_channels: the explained channel must be a scalar channel (no reduction)")
        if self.channel is not None and self.channel in self.cheap_channels:
            raise ValueError(f"cheap_channels names the explained channel {self.channel!r}")
        if self.q != 1:
            raise ValueError(
                f"cheap_channels: a campaign over several channels asks one point at a time, not q={self.q}"
            )
        if self.propose != "off":
            raise ValueError("cheap_channels: proposals (propose) are not built for a campaign over several channels")
        if self.n_init < 2:
            raise ValueError("cheap_channels: n_init must be >= 2 (the cheap channel's scale needs two pairs)")
        if not _from_journal(info):
            from abduce.controller.decide.policies import POLICIES, Policy

            chosen = POLICIES[self.policy] if self.policy in POLICIES else None
            if chosen is not None and chosen.select is not Policy.select:  # a baseline: no acquisition, no costs
                raise ValueError(
                    f"cheap_channels: policy {self.policy!r} picks points without the channels' costs; use one "
                    "that scores them (discriminate, epsilon-greedy)"
                )
        return self

    @field_validator("hypotheses")
    @classmethod
    def _known_hypotheses(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("hypothesis names must be unique")
        if not _from_journal(info):
            from abduce.hypotheses.library import BUILTIN

            for name in names:
                if name not in BUILTIN and "." not in name and ":" not in name:
                    raise ValueError(
                        f"unknown hypothesis {name!r}; built-ins: {', '.join(sorted(BUILTIN))}, or a dotted path"
                    )
        return names

    @field_validator("reduction")
    @classmethod
    def _known_reduction(cls, spec: str | None, info: ValidationInfo) -> str | None:
        if spec is not None and not _from_journal(info) and "." not in spec and ":" not in spec:
            from abduce.controller.intake.reduction import REDUCTIONS  # numpy only: no torch

            _look_up(REDUCTIONS, spec)
        return spec

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, name: str, info: ValidationInfo) -> str:
        if not _from_journal(info):
            from abduce.controller.decide.policies import POLICIES

            _look_up(POLICIES, name)
        return name

    @field_validator("acquisition")
    @classmethod
    def _known_acquisition(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and not _from_journal(info):
            from abduce.controller.decide.acquisition import ACQUISITIONS

            _look_up(ACQUISITIONS, name)
        return name

    @classmethod
    def of(cls, **fields: Any) -> Self:
        """Validated, with a :class:`~abduce.controller.errors.ConfigError` naming each bad field (what the
        CLI and other edges show a person) instead of pydantic's ``ValidationError``."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(map(str, e['loc'])) or cls.__name__}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            raise ConfigError("; ".join(problems)) from None

    def recipe(self) -> Recipe:
        """Just the recipe (of a run that extends it with its source)."""
        return Recipe.model_validate({k: getattr(self, k) for k in Recipe.model_fields}, context={"journal": True})

    def settings(self) -> CampaignSettings:
        """The campaign's settings: the recipe's; the rest keep ``CampaignSettings``' defaults."""
        from abduce.controller.core.settings import CampaignSettings

        return CampaignSettings(
            n_init=self.n_init,
            exact_max_n=self.exact_max_n,
            inducing=self.inducing,
            exact_memory_gb=self.exact_memory_gb,
            q=self.q,
            propose=self.propose,
            propose_depth=self.propose_depth,
            composition_cost=self.composition_cost,
            propose_admit=self.propose_admit,
        )

    def build_campaign(
        self, space: Space, kind: type[CampaignState] | None = None, device: torch.device | str | None = None
    ) -> CampaignState:
        """The campaign over ``space`` (every name resolved; a clear error for unknown ones).

        ``kind``: :class:`~abduce.controller.core.campaign.Campaign` (default) or a
        :class:`~abduce.controller.core.snapshot.Snapshot` to load; ``device``: overrides the recipe's.
        """
        from abduce.controller.core.campaign import Campaign
        from abduce.controller.decide.policies import POLICIES
        from abduce.controller.decide.stopping import Budget, CostBudget
        from abduce.hypotheses.library import resolve_hypothesis

        policy_cls = POLICIES[self.policy]
        policy = policy_cls(epsilon=self.epsilon) if self.policy == "epsilon-greedy" else policy_cls()
        hypotheses, weights = [resolve_hypothesis(h) for h in self.hypotheses], None
        if self.transfer is not None:  # the past campaign's posteriors as priors, its composed laws joining
            hypotheses, weights = self.transfer.apply(hypotheses, space, self.composition_cost)
        stopping, channels, acquisition = Budget(self.budget), self.channels(space), self.acquisition
        if self.cost_budget is not None:
            stopping = stopping | CostBudget(self.cost_budget, self.cost_unit)
        if channels is not None and acquisition is None:
            acquisition = "model-information"  # which law is true, per unit cost (the function's detail is not)
        return (kind or Campaign)(
            space=space,
            hypotheses=hypotheses,
            weights=weights,
            policy=policy,
            acquisition=acquisition,
            stopping=stopping,
            seed=self.seed,
            settings=self.settings(),
            device=resolve_device(self.device if device is None else device),
            channels=channels,
        )

    def channels(self, space: Space):
        """The campaign's :class:`~abduce.controller.core.channels.Channels` (the explained one, named by
        ``space.explained``, first), or None without cheaper channels."""
        if not self.cheap_channels:
            return None
        from abduce.controller.core.channels import Channels

        return Channels(
            names=(space.explained.name, *self.cheap_channels),
            costs=(self.cost, *self.cheap_channels.values()),
            unit=self.cost_unit,
            design_explained=self.design_explained,
        )


def resolve_device(name: str | torch.device) -> torch.device:
    """Where a campaign's maths runs: ``"auto"`` -> CUDA when available, else the CPU; or ``"cpu"``, ``"cuda"``.
    The edge that builds a campaign chooses; the campaign never probes."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _look_up(registry: Any, name: str) -> None:
    try:
        registry[name]
    except AbduceError as exc:
        raise ValueError(exc.args[0]) from None
