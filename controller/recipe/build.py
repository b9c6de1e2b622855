"""A campaign from user-facing names (hypotheses, policy, acquisition, budget): the CLI's and the configs' path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.core.space import Space
from abduce.controller.decide.policies import POLICIES
from abduce.controller.decide.stopping import Budget
from abduce.controller.recipe.settings import SCALE_KEYS
from abduce.hypotheses.library import resolve_hypothesis


def campaign_from_names(
    space: Space,
    hypotheses: Sequence[str],
    policy: str,
    acquisition: str | None,
    budget: int,
    seed: int,
    n_init: int,
    epsilon: float,
    scale: Mapping[str, Any] | None = None,
) -> Campaign:
    """Resolve every name (clear errors for unknown ones) and build the campaign.

    ``scale``: any of :data:`SCALE_KEYS` (device and the large-n switch), as a config
    file's ``[campaign]`` section gives them; the rest keep ``CampaignSettings``' defaults.
    """
    policy_cls = POLICIES[policy]
    chosen = policy_cls(epsilon=epsilon) if policy == "epsilon-greedy" else policy_cls()
    return Campaign(
        space=space,
        hypotheses=[resolve_hypothesis(h) for h in hypotheses],
        policy=chosen,
        acquisition=acquisition,
        stopping=Budget(budget),
        seed=seed,
        settings=CampaignSettings(n_init=n_init, **{k: v for k, v in (scale or {}).items() if k in SCALE_KEYS}),
    )
