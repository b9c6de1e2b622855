"""The driver interface an instrument agent wraps.

A driver for a real microscope implements :meth:`Driver.describe` and
:meth:`Driver.measure` (and, where the hardware allows, :meth:`Driver.abort`,
:meth:`Driver.safe_state` and :meth:`Driver.release`). The agent does everything else: the protocol,
the keys, heartbeats, limit checks, the result cache. ``measure`` may block
for as long as the measurement takes; it runs on the agent's worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abduce.instruments.protocol.models import Capabilities, Measure


@dataclass(frozen=True)
class SpectralAxis:
    """The axis an array channel is sampled along (a bias sweep, a frequency vector).

    Attributes:
        name: what varies along it (``"bias"``, ``"frequency"``).
        unit: its unit (``"V"``, ``"Hz"``); ``""`` when dimensionless.
        values: ``(m,)`` its values, in the order of the channel's last dimension.
    """

    name: str
    unit: str
    values: np.ndarray


@dataclass
class Reading:
    """What a driver measured for one request.

    Attributes:
        points: the points actually measured (one per requested point).
        values: scalar channels, one value per point (NaN for a failed reading).
        arrays: array channels (a spectrum, an image), one array per channel.
        state: instrument state worth recording (temperatures, currents...).
        sd: for scalar channels whose reading carries its own uncertainty: one standard
            deviation per point, same units as the value.
        axes: for array channels sampled along a spectral axis: that axis, by channel.
    """

    points: list[list[float]]
    values: dict[str, list[float]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    sd: dict[str, list[float]] = field(default_factory=dict)
    axes: dict[str, SpectralAxis] = field(default_factory=dict)


class Driver(ABC):
    """One instrument, as the agent sees it.

    Attributes:
        blocking: True (the default) when ``measure`` can take long (moving a
            stage, dwelling a beam): the agent then runs it on its worker
            thread. A driver whose ``measure`` returns in microseconds (a
            simulator) sets it False and is called inline, saving two thread
            hand-offs per request.
    """

    blocking: bool = True

    @abstractmethod
    def describe(self) -> Capabilities:
        """Axes with limits, optional candidate grid, channels, simulator flag."""

    @abstractmethod
    def measure(self, request: Measure) -> Reading:
        """Measure ``request.points`` (already checked against the declared limits); read the channels
        ``request.channels`` names (protocol 1.3; each one declared, checked by the agent), or every channel
        where it names none. Reading more than asked is allowed, but spends the instrument's time or dose."""

    def abort(self) -> bool:
        """Stop the running measurement if the hardware can; True if it did."""
        return False

    def safe_state(self) -> str:
        """Put the instrument in its safe state; returns what was done."""
        return "this driver has no safe-state action"

    def release(self) -> str:
        """Leave the safe state (protocol 1.1 ``release``); returns what was done. Raise if the hardware
        cannot: the agent then stays safe and says why."""
        return "this driver has no release action"
