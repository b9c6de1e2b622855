"""The ``simulated`` driver: any simulator served as an instrument."""

from __future__ import annotations

import threading

import numpy as np

from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure
from abduce.simulators.base import Simulator, check_simulator


class SimulatedDriver(Driver):
    """Serves a :class:`~abduce.simulators.base.Simulator` (numpy, seeded) as an instrument.

    Axes take the simulator's ``axis_names``, ``bounds`` and (where it declares them)
    ``axis_units``; the one channel is the simulator's ``channel``, in its ``unit``:
    a scalar (``Reading.values``) when its ``spectrum_shape`` is ``()``, else an array channel (``Reading.arrays``,
    ``n_points x *spectrum_shape``, float64) with no scalar value. The driver
    sleeps ``dwell_s`` per point (interrupted by :meth:`abort`); it is
    ``blocking`` (run on the agent's worker thread) only when it sleeps.

    Args:
        simulator: e.g. a :class:`~abduce.simulators.transition1d.Transition1D`.
        channel: overrides the simulator's channel name.

    Raises:
        ConfigError: ``simulator`` lacks part of the simulator interface.
    """

    def __init__(self, simulator: Simulator, channel: str | None = None) -> None:
        self.simulator = check_simulator(simulator)
        self.channel = channel or simulator.channel
        self.shape = tuple(int(s) for s in simulator.spectrum_shape)
        self.dwell_s = float(simulator.dwell_s)
        self.blocking = self.dwell_s > 0  # a bare numpy formula is microseconds: measured inline by the agent
        self._abort = threading.Event()

    def describe(self) -> Capabilities:
        sim = self.simulator
        cands = sim.candidates()
        units = getattr(sim, "axis_units", None) or ("",) * len(sim.axis_names)  # optional in the interface
        return Capabilities(
            axes=[
                Axis(name=name, unit=unit, min=lo, max=hi)
                for name, unit, (lo, hi) in zip(sim.axis_names, units, sim.bounds)
            ],
            candidates=None if cands is None else cands.tolist(),
            channels=[Channel(name=self.channel, unit=getattr(sim, "unit", ""), shape=list(self.shape))],
            simulator=True,
            idempotent=True,
        )

    def measure(self, request: Measure) -> Reading:
        x = np.asarray(request.points, dtype=float)
        if self.dwell_s > 0:
            self._abort.clear()
            self._abort.wait(self.dwell_s * len(x))
        y = self.simulator.measure(x)
        if not self.shape:
            return Reading(points=x.tolist(), values={self.channel: [float(v) for v in y]})
        return Reading(points=x.tolist(), arrays={self.channel: np.ascontiguousarray(y, dtype=np.float64)})

    def abort(self) -> bool:
        """Cut the dwell short (the simulated reading is still returned); True if there is a dwell to cut."""
        self._abort.set()
        return self.dwell_s > 0


def build(spec: str, **options) -> SimulatedDriver:
    """``simulated:NAME`` -> a driver around the named simulator, built with ``options``."""
    from abduce.simulators.registry import SIMULATORS

    _, _, name = spec.partition(":")
    return SimulatedDriver(SIMULATORS[name or "transition-1d"](**options))
