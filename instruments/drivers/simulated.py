"""The ``simulated`` driver: any simulator served as an instrument."""

from __future__ import annotations

import numpy as np

from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure


class SimulatedDriver(Driver):
    """Serves a simulator with ``bounds``, ``candidates()`` and ``measure(x)`` (numpy, seeded).

    Args:
        simulator: e.g. a :class:`~abduce.simulators.transition1d.Transition1D`.
        channel: name of the scalar it returns.
    """

    blocking = False  # a numpy formula: microseconds, measured inline by the agent

    def __init__(self, simulator, channel: str = "y") -> None:
        self.simulator, self.channel = simulator, channel

    def describe(self) -> Capabilities:
        cands = self.simulator.candidates()
        return Capabilities(
            axes=[Axis(name=f"x{i}", min=lo, max=hi) for i, (lo, hi) in enumerate(self.simulator.bounds)],
            candidates=None if cands is None else cands.tolist(),
            channels=[Channel(name=self.channel)],
            simulator=True,
            idempotent=True,
        )

    def measure(self, request: Measure) -> Reading:
        x = np.asarray(request.points, dtype=float)
        y = self.simulator.measure(x)
        return Reading(points=x.tolist(), values={self.channel: [float(v) for v in y]})


def build(spec: str, **options) -> SimulatedDriver:
    """``simulated:NAME`` -> a driver around the named simulator, built with ``options``."""
    from abduce.simulators.registry import SIMULATORS

    _, _, name = spec.partition(":")
    return SimulatedDriver(SIMULATORS[name or "transition-1d"](**options))
