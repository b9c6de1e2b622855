"""How a journalled campaign was set up, from its journal's config event (any mode).

A journal's first event holds the config its campaign was built from, in one of four shapes
(``mode``): ``in-process`` (``abduce run`` against a simulator), ``listen`` (``abduce run
--listen``), ``daemon`` and ``rehearsal``. :func:`spec_of` reads any of them into one
:class:`RunSpec` -- the :class:`~abduce.controller.recipe.recipe.Recipe` the campaign was built
from, and where its readings came from. Reading one needs no torch (``abduce inspect``);
building its campaign does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.recipe import Recipe

if TYPE_CHECKING:
    from abduce.controller.core.space import Space
    from abduce.controller.core.state import CampaignState
    from abduce.instruments.protocol.models import Capabilities

MODES = ("in-process", "listen", "daemon", "rehearsal", "bluesky")  # bluesky: abduce.controller.beamline


class RunSpec(Recipe):
    """A journalled campaign's recipe, and where its readings came from.

    Attributes:
        mode: ``in-process``, ``listen``, ``daemon`` or ``rehearsal``.
        source, options: the driver it ran against where abduce built it
            (``simulated:transition-1d`` and its options), else None.
        truth: the hypothesis that generated the data, where known (a simulator's law).
        capabilities: what the instrument declared (runs over the protocol).
    """

    mode: Literal["in-process", "listen", "daemon", "rehearsal", "bluesky"]
    source: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    truth: str | None = None
    capabilities: dict[str, Any] | None = None

    def space(self) -> Space:
        """The campaign's space: the instrument's declared one, or the simulator's (axes and the explained
        channel named, with their units)."""
        from abduce.controller.intake.capabilities import space_of

        return space_of(self.capabilities_declared(), self.channel, self.reduction)

    def capabilities_declared(self) -> Capabilities:
        """What the instrument declared: journalled (runs over the protocol), or the simulator's or data set's
        own (runs abduce built).

        Raises:
            ConfigError: the journal records neither.
        """
        from abduce.instruments.protocol.models import Capabilities

        if self.capabilities is not None:
            return Capabilities.model_validate(self.capabilities)
        if self.source is None:
            raise ConfigError("the journal records neither the instrument's capabilities nor a simulator")
        from abduce.instruments.drivers.sources import build_seeded

        return build_seeded(self.source, self.options, self.seed).describe()

    def campaign(self, kind: type[CampaignState] | None = None) -> CampaignState:
        """A fresh campaign as the recipe built it (or, with ``kind``, a
        :class:`~abduce.controller.core.snapshot.Snapshot` to load)."""
        return self.build_campaign(self.space(), kind=kind)


_TRANSITION_OPTIONS = ("truth", "x_c", "beta", "noise", "grid")


# abduction's settings in journals that predate their keys (composition_cost: 0.1 until 2026-12-06;
# propose_admit: a composed law was admitted only once it beat every law, i.e. 1.0; commits e7a1d5c-eee5a11
# ran at 0.05 without journalling the key, and read back as 1.0: none left those development commits)
_BEFORE_THE_KEYS: dict[str, Any] = {"composition_cost": 0.1, "propose_admit": 1.0}


def spec_of(config: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a journal's config event (any mode).

    Raises:
        ConfigError: an unknown mode, or a config that does not describe a campaign.
    """
    mode = config.get("mode")
    if mode not in MODES:
        raise ConfigError(f"the journal's config has mode {mode!r}; known: {', '.join(MODES)}")
    c = config["campaign"] if mode == "daemon" else config
    where: dict[str, Any]
    if mode == "in-process":
        where = {
            "source": f"simulated:{c.get('simulator', 'transition-1d')}",
            "options": {k: c[k] for k in _TRANSITION_OPTIONS if k in c},
            "truth": c.get("truth"),
        }
    elif mode == "rehearsal":
        where = {"source": c.get("source"), "options": dict(c.get("options") or {}), "truth": c.get("truth")}
    else:
        where = {"capabilities": config.get("capabilities")}
    recipe = {k: c[k] for k in Recipe.model_fields if k in c}
    if recipe.get("propose", "off") != "off":  # every config journalled now holds these; an older one ran with
        recipe = {**_BEFORE_THE_KEYS, **recipe}  # what was the default before the key was journalled
    try:
        return RunSpec.model_validate({**recipe, **where, "mode": mode}, context={"journal": True})
    except ValidationError as exc:
        raise ConfigError(f"the journal's {mode} config does not describe a campaign: {exc}") from None
