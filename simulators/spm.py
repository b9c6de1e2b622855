"""A scanning-probe image: a local response over a sample with a hidden control variable.

The sample is a ``nx x ny`` pixel grid (128 x 128 = 16384 candidates by
default); axes ``("x", "y")`` in nanometres (``axis_units``), ``pixel_size``
nm per pixel (1.0 by default: a 127 nm scan; e.g. 39.0625 for a 5 um scan of
128 pixels), pixel ``(i, j)`` at ``(i * pixel_size, j * pixel_size)``. The
response is a piezoresponse amplitude in picometres (``unit``).

Hidden control variable, a film-thickness wedge along x, normalised to [0, 1]
across the image, with an optional ripple along y (off by default)::

    c(x, y) = x / X + ripple * sin(2 pi y / (ripple_period * Y))     X, Y = image width, height

Domains: ``domains`` Voronoi cells whose centres are drawn uniformly over the
image from the seed (a layout stream apart from the noise stream); a point
belongs to the cell of its nearest centre. Each domain ``k`` shifts the
response by ``d_k ~ N(0, domain_offset^2)`` (a small domain-dependent
contrast, e.g. a polarisation variant)::

    truth(x, y) = law(c(x, y)) + d_{domain(x, y)}
    measure     = truth + N(0, noise^2)          (noise: 5% of A by default)

``law`` is a Transition1D law on ``c`` in ``[0, 1]`` (a held
:class:`~abduce.simulators.transition1d.Transition1D`, never a copy of its
formulas), so the image shows the transition at the thickness ``c = x_c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.base import Noise, as_points, check_units
from abduce.simulators.transition1d import Transition1D


@dataclass
class SPMImage:
    """A seeded scanning-probe image simulator (a scalar simulator, two axes).

    Attributes:
        law: a Transition1D law of the control variable ``c``.
        x_c, beta, amplitude, width: that law's parameters (``x_c`` in units of ``c``).
        grid: pixels per side, an int or ``(nx, ny)`` (each >= 2).
        pixel_size: axis units per pixel (nm per pixel by default).
        domains: number of Voronoi domains (>= 1).
        domain_offset: sd of the per-domain response offsets.
        ripple: amplitude of the y ripple of ``c`` (0 = a pure wedge).
        ripple_period: the ripple's period as a fraction of the image height.
        noise: measurement noise sd; ``None`` means 5% of the amplitude.
        seed: seeds the domain layout and the noise stream.
        axis_names, dwell_s, channel, noise_per_point: see :class:`~abduce.simulators.base.Simulator`.
        axis_units: the units of ``x`` and ``y`` (``("nm", "nm")``).
        unit: the response's unit (``"pm"``, a piezoresponse amplitude).

    Example:
        >>> sim = SPMImage(grid=16, seed=0)
        >>> sim.candidates().shape
        (256, 2)
    """

    spectrum_shape: ClassVar[tuple[int, ...]] = ()

    law: str = "second-order"
    x_c: float = 0.6
    beta: float = 0.5
    amplitude: float = 1.0
    width: float = 0.05
    grid: int | tuple[int, int] = 128
    pixel_size: float = 1.0
    domains: int = 6
    domain_offset: float = 0.05
    ripple: float = 0.0
    ripple_period: float = 0.5
    noise: float | None = None
    seed: int = 0
    axis_names: tuple[str, ...] = ("x", "y")
    dwell_s: float = 0.0
    channel: str = "y"
    noise_per_point: bool = False
    axis_units: tuple[str, ...] = ("nm", "nm")
    unit: str = "pm"
    centres: np.ndarray = field(init=False, repr=False, compare=False)
    offsets: np.ndarray = field(init=False, repr=False, compare=False)
    _law: Transition1D = field(init=False, repr=False, compare=False)
    _noise: Noise = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        g = (self.grid, self.grid) if isinstance(self.grid, int) else tuple(self.grid)
        if len(g) != 2 or min(g) < 2:
            raise ConfigError(f"grid must be an int >= 2 or a pair of them, got {self.grid}")
        self.grid = g
        if not self.pixel_size > 0:
            raise ConfigError(f"pixel_size must be > 0, got {self.pixel_size}")
        if self.domains < 1 or not self.domain_offset >= 0 or not self.ripple_period > 0:
            raise ConfigError(
                "need domains >= 1, domain_offset >= 0 and ripple_period > 0, got "
                f"{self.domains}, {self.domain_offset}, {self.ripple_period}"
            )
        if len(self.axis_names) != 2:
            raise ConfigError(f"an image has two axis names, got {self.axis_names}")
        self.axis_names = tuple(self.axis_names)
        self.axis_units = check_units(self.axis_names, self.axis_units)
        self.noise = 0.05 * self.amplitude if self.noise is None else self.noise
        self._law = Transition1D(
            law=self.law,
            x_c=self.x_c,
            beta=self.beta,
            amplitude=self.amplitude,
            width=self.width,
            noise=0.0,
            lo=0.0,
            hi=1.0,
            grid=0,
        )
        layout = np.random.default_rng([self.seed, 1])
        (_, xmax), (_, ymax) = self.bounds
        self.centres = layout.uniform((0.0, 0.0), (xmax, ymax), size=(self.domains, 2))
        self.offsets = self.domain_offset * layout.standard_normal(self.domains)
        cands = self.candidates()
        self._noise = Noise(self.seed, cands, self.noise, self.dwell_s, self.noise_per_point)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        nx, ny = self.grid
        return ((0.0, (nx - 1) * self.pixel_size), (0.0, (ny - 1) * self.pixel_size))

    def candidates(self) -> np.ndarray:
        """The ``nx * ny x 2`` pixel centres, x-major (the y index runs fastest)."""
        nx, ny = self.grid
        xs, ys = np.meshgrid(np.arange(nx) * self.pixel_size, np.arange(ny) * self.pixel_size, indexing="ij")
        return np.column_stack([xs.ravel(), ys.ravel()])

    def control(self, x: np.ndarray) -> np.ndarray:
        """The hidden control variable ``c(x, y)`` at points ``x`` (``n x 2``) -> ``n``."""
        p = as_points(x, 2)
        (_, xmax), (_, ymax) = self.bounds
        return p[:, 0] / xmax + self.ripple * np.sin(2 * np.pi * p[:, 1] / (self.ripple_period * ymax))

    def domain(self, x: np.ndarray) -> np.ndarray:
        """The Voronoi domain (index of the nearest centre) of each point (``n x 2``) -> ``n`` ints."""
        p = as_points(x, 2)
        return np.argmin(((p[:, None, :] - self.centres[None, :, :]) ** 2).sum(-1), axis=1)

    def truth(self, x: np.ndarray) -> np.ndarray:
        """Noise-free response ``law(c) + d_domain`` at ``x`` (``n x 2``) -> ``n``."""
        return self._law.truth(self.control(x)) + self.offsets[self.domain(x)]

    def measure(self, x: np.ndarray) -> np.ndarray:
        """Truth plus Gaussian noise: drawn from this simulator's stream, or frozen per pixel."""
        t = self.truth(x)
        return t + self.noise * self._noise.standard(as_points(x, 2))
