"""A named physical quantity with its unit: one axis of a space, or the value the hypotheses explain.

Torch-free, so ``abduce inspect`` (which imports no torch) labels its tables with the same objects the
campaign's :class:`~abduce.controller.core.space.Space` carries.
"""

from __future__ import annotations

from dataclasses import dataclass

DIMENSIONLESS = ("", "1")  # no unit declared, or CF's "1" for a dimensionless quantity (a fraction, a ratio)


@dataclass(frozen=True)
class Quantity:
    """A name and a unit, as an instrument declares them (``Axis.unit``, ``Channel.unit``).

    Attributes:
        name: what it is (``"temperature"``, ``"loop-area"``).
        unit: its unit (``"K"``, ``"V"``); ``""`` when not declared, ``"1"`` for a dimensionless quantity.

    Example:
        >>> Quantity("temperature", "K").label()
        'temperature (K)'
        >>> Quantity("composition", "1").label()
        'composition'
    """

    name: str
    unit: str = ""

    def label(self) -> str:
        """``name (unit)`` for plots and tables; the name alone when it has no unit (``""`` or ``"1"``)."""
        return self.name if self.unit in DIMENSIONLESS else f"{self.name} ({self.unit})"
