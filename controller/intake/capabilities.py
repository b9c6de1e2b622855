"""What an instrument declares -> the space a campaign measures in."""

from __future__ import annotations

from abduce.controller.core.space import Space
from abduce.instruments.protocol.models import Capabilities


def space_of(capabilities: Capabilities) -> Space:
    """The campaign space an instrument declares: its candidate grid, else the box of its axis limits."""
    names = [a.name for a in capabilities.axes]
    if capabilities.candidates is not None:
        return Space.finite(capabilities.candidates, names=names)
    return Space.box([(a.min, a.max) for a in capabilities.axes], names=names)
