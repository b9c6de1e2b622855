"""A journalled campaign's axes and explained value, named and with their units, from its config alone.

The instrument's declared capabilities say them: journalled with the config for runs over the protocol
(``listen``, ``daemon``), the simulator's or data set's own for runs abduce built (``in-process``,
``rehearsal``), as :meth:`abduce.controller.recipe.spec.RunSpec.capabilities_declared` finds them. No torch:
``abduce inspect`` labels its tables with these, and the figures and the report use the same.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from abduce.controller.core.quantity import Quantity
from abduce.controller.errors import AbduceError
from abduce.controller.intake.capabilities import quantities_of
from abduce.controller.recipe.spec import spec_of


class QuantityRow(BaseModel):
    """An axis, or the explained value, in ``abduce inspect --json``: its name, unit and ``name (unit)`` label."""

    model_config = ConfigDict(extra="forbid")
    name: str
    unit: str
    label: str

    @classmethod
    def of(cls, q: Quantity) -> QuantityRow:
        return cls(name=q.name, unit=q.unit, label=q.label())


@dataclass(frozen=True)
class Labels:
    """The axes (in the order points list their coordinates) and the value the hypotheses explain.

    Attributes:
        axes: one :class:`~abduce.controller.core.quantity.Quantity` per axis.
        explained: the explained channel (or reduction) and its unit.
        declared: whether they come from the instrument's declaration (False: it could not be described
            here, e.g. a recorded file since moved; names are then ``x0, x1, ...`` and units unknown).
    """

    axes: tuple[Quantity, ...]
    explained: Quantity
    declared: bool = True

    def axis(self, i: int) -> str:
        """The ``i``-th axis's label, ``name (unit)`` (``x{i}`` past the declared axes)."""
        return self.axes[i].label() if i < len(self.axes) else f"x{i}"


def labels_of(config: dict[str, Any], d: int = 1) -> Labels:
    """The labels of the campaign a journal's config event describes (``d``: its number of axes, used only
    when the instrument cannot be described here). Cached by config: a live page re-inspects a run
    every time its journal grows, and building a recorded data set to read its units costs a file read."""
    return _labels(json.dumps(config, sort_keys=True, default=str), d)


@functools.lru_cache(maxsize=64)
def _labels(config: str, d: int) -> Labels:
    c = json.loads(config)
    try:
        spec = spec_of(c)
        axes, explained = quantities_of(spec.capabilities_declared(), spec.channel, spec.reduction)
        return Labels(axes, explained)
    except (AbduceError, OSError, ValueError):  # not describable here (ValueError: bad capabilities): no units
        inner = c.get("campaign", c)
        what = inner.get("reduction") or inner.get("channel") or "y"
        return Labels(tuple(Quantity(f"x{i}") for i in range(d)), Quantity(what), declared=False)
