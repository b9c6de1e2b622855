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
    ``axis_units``; the channel is the simulator's ``channel``, in its ``unit``:
    a scalar (``Reading.values``) when its ``spectrum_shape`` is ``()``, else an array channel (``Reading.arrays``,
    ``n_points x *spectrum_shape``, float64) with no scalar value. The driver
    sleeps ``dwell_s`` per point (interrupted by :meth:`abort`); it is
    ``blocking`` (run on the agent's worker thread) only when it sleeps.

    A simulator with several scalar channels (``channels``, read by ``measure_channel(x, name)``, with
    ``reading_sd(name)`` the sd a reading reports: :class:`~abduce.simulators.channels.TwoChannel`) is
    served with all of them; a request reads those it names (``Measure.channels``, 1.3), or all.

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
            channels=[Channel(name=name, unit=getattr(sim, "unit", ""), shape=list(self.shape)) for name in self.names],
            simulator=True,
            idempotent=True,
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The channels served: the simulator's ``channels`` where it has several, else its one channel."""
        several = getattr(self.simulator, "channels", None)
        return tuple(several) if several else (self.channel,)

    def measure(self, request: Measure) -> Reading:
        x = np.asarray(request.points, dtype=float)
        if self.dwell_s > 0:
            self._abort.clear()
            self._abort.wait(self.dwell_s * len(x))
        if len(self.names) > 1:  # several scalar channels: those asked for (all where none is named)
            sim, values, sd = self.simulator, {}, {}
            for name in request.channels or self.names:
                values[name] = [float(v) for v in sim.measure_channel(x, name)]  # type: ignore[attr-defined]
                spread = sim.reading_sd(name)  # type: ignore[attr-defined]
                if spread is not None:
                    sd[name] = [float(spread)] * len(x)
            return Reading(points=x.tolist(), values=values, sd=sd)
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
