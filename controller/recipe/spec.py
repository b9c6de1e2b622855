"""How a journalled campaign was set up, from its journal's config event (any mode).

A journal's first event holds the config its campaign was built from, in one of four shapes
(``mode``): ``in-process`` (``abduce run`` against a simulator), ``listen`` (``abduce run
--listen``), ``daemon`` and ``rehearsal``. :func:`spec_of` reads any of them into one
:class:`RunSpec`; reading one needs no torch (``abduce inspect``), building its campaign does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.settings import SCALE_KEYS

if TYPE_CHECKING:
    from abduce.controller.core.campaign import Campaign
    from abduce.controller.core.space import Space


@dataclass(frozen=True)
class RunSpec:
    """How a journalled campaign was set up.

    Attributes:
        mode: ``in-process``, ``listen``, ``daemon`` or ``rehearsal``.
        hypotheses, policy, acquisition, budget, seed, n_init, epsilon: the campaign.
        source, options: the driver it ran against where abduce built it
            (``simulated:transition-1d`` and its options), else None.
        truth: the hypothesis that generated the data, where known (a simulator's law).
        capabilities: what the instrument declared (runs over the protocol).
        channel, reduction: what the hypotheses explained.
        scale: device and large-n settings the config gave (:data:`SCALE_KEYS`).
    """

    mode: str
    hypotheses: tuple[str, ...]
    policy: str
    acquisition: str | None
    budget: int
    seed: int
    n_init: int
    epsilon: float
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    truth: str | None = None
    capabilities: dict[str, Any] | None = None
    channel: str | None = None
    reduction: str | None = None
    scale: dict[str, Any] = field(default_factory=dict)

    def space(self) -> Space:
        """The campaign's space: the instrument's declared one, or the simulator's."""
        from abduce.controller.intake.capabilities import space_of
        from abduce.instruments.protocol.models import Capabilities

        if self.capabilities is not None:
            return space_of(Capabilities.model_validate(self.capabilities))
        if self.source is None:
            raise ConfigError("the journal records neither the instrument's capabilities nor a simulator")
        from abduce.instruments.drivers.sources import build_driver

        return space_of(build_driver(self.source, {"seed": self.seed, **self.options}).describe())

    def campaign(self) -> Campaign:
        from abduce.controller.recipe.build import campaign_from_names

        return campaign_from_names(
            self.space(),
            self.hypotheses,
            self.policy,
            self.acquisition,
            self.budget,
            self.seed,
            self.n_init,
            self.epsilon,
            scale=self.scale,
        )


_TRANSITION_OPTIONS = ("truth", "x_c", "beta", "noise", "grid")


def spec_of(config: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a journal's config event (any mode)."""
    mode = config.get("mode")
    common = ("hypotheses", "policy", "acquisition", "budget", "seed", "n_init", "epsilon")
    if mode == "in-process":
        c = config
        options = {k: c[k] for k in _TRANSITION_OPTIONS if k in c}
        return RunSpec(
            mode,
            tuple(c["hypotheses"]),
            c["policy"],
            c.get("acquisition"),
            int(c["budget"]),
            int(c["seed"]),
            int(c["n_init"]),
            float(c["epsilon"]),
            source=f"simulated:{c.get('simulator', 'transition-1d')}",
            options=options,
            truth=c.get("truth"),
        )
    if mode == "listen":
        c = config
        return RunSpec(
            mode, *(c[k] if k != "hypotheses" else tuple(c[k]) for k in common), capabilities=c.get("capabilities")
        )
    if mode == "daemon":
        c = config["campaign"]
        return RunSpec(
            mode,
            *(c.get(k) if k != "hypotheses" else tuple(c[k]) for k in common),
            capabilities=config.get("capabilities"),
            channel=c.get("channel"),
            reduction=c.get("reduction"),
            scale={k: c[k] for k in SCALE_KEYS if k in c},
        )
    if mode == "rehearsal":
        c = config
        return RunSpec(
            mode,
            *(c[k] if k != "hypotheses" else tuple(c[k]) for k in common),
            source=c["source"],
            options=dict(c.get("options") or {}),
            truth=c.get("truth"),
            channel=c.get("channel"),
            reduction=c.get("reduction"),
        )
    raise ConfigError(f"the journal's config has mode {mode!r}; known: in-process, listen, daemon, rehearsal")
