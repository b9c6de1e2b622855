"""What an instrument declares -> the space a campaign measures in, with its axes' and channel's units.

:func:`quantities_of` (torch-free: ``abduce inspect`` labels its tables with it) names the axes and the
value the hypotheses explain; :func:`space_of` builds the campaign's :class:`~abduce.controller.core.space.Space`
with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abduce.controller.core.quantity import Quantity
from abduce.controller.errors import ConfigError
from abduce.controller.intake.readings import pick_channel
from abduce.instruments.protocol.models import Capabilities

if TYPE_CHECKING:  # the space holds torch tensors; naming the quantities needs none
    from abduce.controller.core.space import Space

KEEPS_UNIT = frozenset({"mean", "max"})  # reductions whose value is in the channel's own unit


def explained_of(capabilities: Capabilities, channel: str | None = None, reduction: str | None = None) -> Quantity:
    """The value the hypotheses explain: the channel :func:`~abduce.controller.intake.readings.pick_channel`
    picks, with its declared unit; with a reduction, the reduction's name, in the channel's unit where the
    reduction keeps it (``mean``, ``max``), else with no unit (a loop's area is in bias x response units,
    which a ``2 x m`` [bias; response] channel cannot declare).

    With neither ``channel`` nor ``reduction`` and no scalar channel (a spectral instrument whose reduction
    the caller has not said yet) it is ``y``: the campaign's own checks refuse that instrument, not this.

    Raises:
        ConfigError: a named channel the instrument lacks, or one that cannot work (as ``pick_channel``).
    """
    try:
        name = pick_channel(capabilities, channel, reduction)
    except ConfigError:
        if channel is None and reduction is None:
            return Quantity("y")
        raise
    unit = next(c.unit for c in capabilities.channels if c.name == name)
    if reduction is None:
        return Quantity(name, unit)
    return Quantity(reduction, unit if reduction in KEEPS_UNIT else "")


def quantities_of(
    capabilities: Capabilities, channel: str | None = None, reduction: str | None = None
) -> tuple[tuple[Quantity, ...], Quantity]:
    """The axes (name and unit, in the order points list their coordinates) and the explained value
    (:func:`explained_of`) an instrument declares."""
    axes = tuple(Quantity(a.name, a.unit) for a in capabilities.axes)
    return axes, explained_of(capabilities, channel, reduction)


def space_of(capabilities: Capabilities, channel: str | None = None, reduction: str | None = None) -> Space:
    """The campaign space an instrument declares: its candidate grid, else the box of its axis limits; named
    and with units as :func:`quantities_of` says (``channel``, ``reduction``: the campaign's, where set).

    Raises:
        ConfigError: see :func:`explained_of`; bad limits or candidates (:class:`Space`).
    """
    from abduce.controller.core.space import Space

    axes, explained = quantities_of(capabilities, channel, reduction)
    names, units = [a.name for a in axes], [a.unit for a in axes]
    if capabilities.candidates is not None:
        return Space.finite(capabilities.candidates, names=names, units=units, explained=explained)
    return Space.box([(a.min, a.max) for a in capabilities.axes], names=names, units=units, explained=explained)
