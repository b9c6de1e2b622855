"""A composition x temperature phase diagram with an order parameter.

Axes ``("composition", "temperature")``: ``x`` in ``[x_lo, x_hi]``, ``T`` in
kelvin in ``[t_lo, t_hi]``. The ordered phase lies below the phase boundary
``T_c(x)``, a quadratic in composition (linear when ``tc2 = 0``)::

    T_c(x) = tc0 + tc1 x + tc2 x^2            (must stay > 0 on [x_lo, x_hi])

The order parameter is a Transition1D law in the reduced temperature
``tau = T / T_c(x)`` with its critical point at ``tau = 1``::

    second-order  m = A (1 - T / T_c(x))^beta   below the boundary, 0 on and above it
    first-order   m = A                         below the boundary, 0 on and above it
    sigmoid       m = A / (1 + exp(-(1 - T / T_c(x)) / w))   (a rounded boundary)

(evaluated by a held :class:`~abduce.simulators.transition1d.Transition1D`,
never a copy of its formulas). A scalar channel; ``measure`` adds Gaussian
noise of sd ``noise`` (5% of ``A`` by default) from the seeded generator.
Candidates: a ``gx x gt`` grid, composition-major (the temperature index runs
fastest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.base import Noise, as_points, check_units
from abduce.simulators.transition1d import Transition1D

LAWS = ("second-order", "first-order", "sigmoid")


@dataclass
class Phase2D:
    """A seeded 2D phase-diagram simulator (a scalar simulator, two axes).

    Attributes:
        law: one of ``LAWS``.
        tc0, tc1, tc2: the boundary ``T_c(x) = tc0 + tc1 x + tc2 x^2`` (K).
        beta: order-parameter exponent (second-order).
        amplitude: A.
        width: crossover width in ``T / T_c`` (sigmoid).
        x_lo, x_hi: the composition range.
        t_lo, t_hi: the temperature range (K).
        grid: candidates per axis, an int (same on both) or ``(gx, gt)``; 0 = continuous.
        noise: measurement noise sd; ``None`` means 5% of the amplitude.
        seed: seeds the noise stream.
        axis_names, dwell_s, channel, noise_per_point: see :class:`~abduce.simulators.base.Simulator`.
        axis_units: ``("", "K")``: a composition fraction (dimensionless) and the temperature in kelvin.
        unit: the order parameter's unit (``""``: dimensionless, normalised by its saturation value).

    Example:
        >>> sim = Phase2D()
        >>> float(sim.truth(np.array([[0.0, 150.0]]))[0])  # (1 - 150 / 600)^0.5
        0.8660254037844386
    """

    spectrum_shape: ClassVar[tuple[int, ...]] = ()

    law: str = "second-order"
    tc0: float = 600.0
    tc1: float = -400.0
    tc2: float = 0.0
    beta: float = 0.5
    amplitude: float = 1.0
    width: float = 0.02
    x_lo: float = 0.0
    x_hi: float = 1.0
    t_lo: float = 100.0
    t_hi: float = 700.0
    grid: int | tuple[int, int] = 41
    noise: float | None = None
    seed: int = 0
    axis_names: tuple[str, ...] = ("composition", "temperature")
    dwell_s: float = 0.0
    channel: str = "y"
    noise_per_point: bool = False
    axis_units: tuple[str, ...] = ("", "K")
    unit: str = ""
    _law: Transition1D = field(init=False, repr=False, compare=False)
    _noise: Noise = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise ConfigError(f"unknown phase-2d law {self.law!r}; known: {', '.join(LAWS)}")
        if not (self.x_lo < self.x_hi and self.t_lo < self.t_hi):
            raise ConfigError(
                f"empty space: composition [{self.x_lo}, {self.x_hi}], temperature [{self.t_lo}, {self.t_hi}]"
            )
        if len(self.axis_names) != 2:
            raise ConfigError(f"a 2D simulator has two axis names, got {self.axis_names}")
        self.axis_names = tuple(self.axis_names)
        self.axis_units = check_units(self.axis_names, self.axis_units)
        g = (self.grid, self.grid) if isinstance(self.grid, int) else tuple(self.grid)
        if len(g) != 2 or (0 in g and g != (0, 0)) or min(g) < 0 or g[0] == 1 or g[1] == 1:
            raise ConfigError(f"grid must be 0 or an int >= 2 or a pair of them, got {self.grid}")
        self.grid = g
        tc = self.critical_temperature(np.linspace(self.x_lo, self.x_hi, 1001))
        if not tc.min() > 0:
            raise ConfigError(
                f"T_c(x) = {self.tc0} + {self.tc1} x + {self.tc2} x^2 is not > 0 on [{self.x_lo}, {self.x_hi}]"
            )
        self.noise = 0.05 * self.amplitude if self.noise is None else self.noise
        self._law = Transition1D(
            law=self.law, x_c=1.0, beta=self.beta, amplitude=self.amplitude, width=self.width, noise=0.0, grid=0
        )
        cands = self.candidates()
        self._noise = Noise(self.seed, cands, self.noise, self.dwell_s, self.noise_per_point)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return ((self.x_lo, self.x_hi), (self.t_lo, self.t_hi))

    def candidates(self) -> np.ndarray | None:
        """The ``gx * gt x 2`` grid (composition-major), or None for the continuous box."""
        gx, gt = self.grid
        if not gx:
            return None
        xs, ts = np.meshgrid(
            np.linspace(self.x_lo, self.x_hi, gx), np.linspace(self.t_lo, self.t_hi, gt), indexing="ij"
        )
        return np.column_stack([xs.ravel(), ts.ravel()])

    def critical_temperature(self, x: np.ndarray) -> np.ndarray:
        """The phase boundary ``T_c(x) = tc0 + tc1 x + tc2 x^2`` at compositions ``x`` (``n``) -> ``n``."""
        x = np.asarray(x, dtype=float)
        return self.tc0 + self.tc1 * x + self.tc2 * x**2

    def truth(self, x: np.ndarray) -> np.ndarray:
        """Noise-free order parameter at ``x`` (``n x 2``: composition, temperature) -> ``n``."""
        p = as_points(x, 2)
        return self._law.truth(p[:, 1] / self.critical_temperature(p[:, 0]))

    def measure(self, x: np.ndarray) -> np.ndarray:
        """Truth plus Gaussian noise: drawn from this simulator's stream, or frozen per candidate."""
        t = self.truth(x)
        return t + self.noise * self._noise.standard(as_points(x, 2))
