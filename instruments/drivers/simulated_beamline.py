"""A simulated beamline in ``ophyd.sim``: a motor and a detector that reads a simulator's law at the motor.

For trying abduce's ophyd driver (:mod:`abduce.instruments.drivers.ophyd_driver`) before touching a real
beamline, and as the template of a factory::

    abduce instrument serve --driver ophyd:abduce.instruments.drivers.simulated_beamline:beamline \\
        -o truth=sigmoid -o seed=3 --connect tcp://127.0.0.1:5555 --key lab.key

The motor ``x`` is an ``ophyd.sim.SynAxis`` (its unit, ``egu``, is the device's own; a ``SynAxis`` has
no limits, so the factory gives the simulator's bounds; its readback is the target up to a rounding error,
within ``tolerance``). The detector ``y`` is an ``ophyd.sim.SynSignal``
whose trigger computes ``Transition1D.measure([[x]])``: the law plus seeded noise, one draw per trigger,
so a campaign served this way sees the same noise stream as ``abduce run`` with the same seed and options
(:class:`~abduce.simulators.transition1d.Transition1D`). Its candidates are the simulator's grid.
"""

from __future__ import annotations

from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from ophyd.sim import SynAxis, SynSignal

from abduce.instruments.drivers.ophyd_driver import OphydAxis, OphydInstrument
from abduce.simulators.transition1d import Transition1D


def beamline(
    truth: str = "second-order",
    seed: int = 0,
    grid: int = 501,
    delay: float = 0.0,
    park: float | None = None,
    callbacks: tuple = (),
    **law: Any,
) -> OphydInstrument:
    """The devices of a 1D transition beamline.

    Args:
        truth: the law the detector follows (:data:`~abduce.simulators.transition1d.LAWS`).
        seed: the noise stream's seed.
        grid: candidate points on the motor's range (0: a continuous range).
        delay: seconds each move takes (``SynAxis(delay=...)``).
        park: where the safe plan parks the motor (default: its lower limit).
        callbacks: ``f(name, doc)`` for the RunEngine's documents.
        law: more :class:`~abduce.simulators.transition1d.Transition1D` options (``x_c``, ``beta``, ``noise``...).

    Returns:
        axes ``[x]`` (unit mm), channels ``[y]``, a safe plan that parks ``x``.
    """
    sim = Transition1D(truth=truth, seed=seed, grid=grid, **law)
    ((lo, hi),) = sim.bounds
    x = SynAxis(name="x", delay=delay, egu="mm", value=lo)
    # built with no function, then given the law: SynSignal calls its function once at construction, which
    # would spend a draw of the noise stream before the first measurement
    y = SynSignal(name="y")
    y.sim_set_func(lambda: float(sim.measure(np.array([[x.position]]))[0]))
    target = lo if park is None else park

    def park_x():
        yield from bps.mv(x, target)

    return OphydInstrument(
        # a SynAxis reads back old + (target - old): the target give or take a rounding error (0.002 comes back
        # as 0.0020000000000000018); within 1e-9, the point is reported as the target, as asked
        axes=[OphydAxis(x, limits=(lo, hi), tolerance=1e-9)],
        channels=[y],
        callbacks=list(callbacks),
        safe_plan=park_x,
        metadata={"sample": f"simulated {truth} transition", "abduce_simulator": "transition-1d"},
        candidates=sim.candidates(),
        simulator=True,
    )
