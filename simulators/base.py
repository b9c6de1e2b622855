"""The simulator interface, and the few helpers every simulator shares.

A simulator is ground truth in numpy with seeded noise. It keeps the
noise-free ``truth(x)`` apart from the noisy ``measure(x)`` so a test (or a
benchmark) can compare what a campaign concluded with what is really there.

Shapes: ``x`` is ``n x d`` (one row per point, ``d = len(bounds)``); a scalar
simulator returns ``n`` values, a spectroscopic one ``n x *spectrum_shape``
(for a hysteresis loop ``n x 2 x m``: row 0 the bias, row 1 the response).

Frozen noise (``noise_per_point=True``, grid simulators only): the noise of
candidate ``i`` is drawn once, at construction, from the simulator's seeded
generator, in candidate order::

    eps = rng.standard_normal((N, *spectrum_shape))     # N = number of candidates
    measure(x_i) = truth(x_i) + sd * eps[i]

so measuring a point twice, or the points in another order, gives the same
values: what a recorded data set is.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from abduce.controller.errors import ConfigError


@runtime_checkable
class Simulator(Protocol):
    """What a simulator offers (see the module docstring for shapes).

    Attributes:
        bounds: one ``(lo, hi)`` per axis.
        axis_names: one name per axis, e.g. ``("composition", "temperature")``.
        seed: seeds the noise stream.
        dwell_s: wall time per measured point (the simulated driver sleeps it).
        channel: name of what ``measure`` returns.
        spectrum_shape: ``()`` for a scalar simulator, else the shape of one point's spectrum.
        noise_per_point: frozen noise, one realisation per candidate (grid simulators only).

    Optional (the simulated driver declares them as the instrument's units; ``""``, none, without them):

    Attributes:
        axis_units: one unit per axis (``"K"``, ``"nm"``; ``""`` for a dimensionless fraction).
        unit: the unit of ``channel``.
    """

    bounds: tuple[tuple[float, float], ...]
    axis_names: tuple[str, ...]
    seed: int
    dwell_s: float
    channel: str
    spectrum_shape: tuple[int, ...]
    noise_per_point: bool

    def candidates(self) -> np.ndarray | None:
        """``N x d`` finite grid, or None for a continuous box."""

    def truth(self, x: np.ndarray) -> np.ndarray:
        """Noise-free values at ``x`` (``n x d``) -> ``n`` or ``n x *spectrum_shape``."""

    def measure(self, x: np.ndarray) -> np.ndarray:
        """``truth(x)`` plus seeded noise; same shape."""


INTERFACE = (
    "bounds",
    "axis_names",
    "seed",
    "dwell_s",
    "channel",
    "spectrum_shape",
    "noise_per_point",
    "candidates",
    "truth",
    "measure",
)


def check_simulator(obj: object) -> Simulator:
    """``obj`` itself if it offers the whole :class:`Simulator` interface.

    Raises:
        ConfigError: names what it lacks.
    """
    missing = [a for a in INTERFACE if not hasattr(obj, a)]
    if missing:
        raise ConfigError(f"{type(obj).__name__} is not a simulator: it lacks {', '.join(missing)}")
    return obj  # type: ignore[return-value]


def as_points(x: np.ndarray, d: int) -> np.ndarray:
    """``x`` as an ``n x d`` float array (a 1-D ``x`` is ``n`` points when ``d == 1``).

    Raises:
        ConfigError: ``x`` does not have ``d`` coordinates per point.
    """
    a = np.asarray(x, dtype=float)
    if a.ndim == 1 and d == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != d:
        raise ConfigError(f"points must be n x {d}, got shape {a.shape}")
    return a


def check_units(axis_names: tuple[str, ...], axis_units: tuple[str, ...]) -> tuple[str, ...]:
    """``axis_units`` as a tuple, one per axis name.

    Raises:
        ConfigError: not one unit per axis.
    """
    units = tuple(str(u) for u in axis_units)
    if len(units) != len(axis_names):
        raise ConfigError(f"give one unit per axis {list(axis_names)}, got {list(units)}")
    return units


def check_common(noise: float, dwell_s: float, noise_per_point: bool, candidates: np.ndarray | None) -> None:
    """The checks every simulator makes on its shared settings.

    Raises:
        ConfigError: negative noise or dwell, or frozen noise without a candidate grid.
    """
    if not noise >= 0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    if not dwell_s >= 0:
        raise ConfigError(f"dwell_s must be >= 0, got {dwell_s}")
    if noise_per_point and candidates is None:
        raise ConfigError("noise_per_point needs a candidate grid (grid > 0)")


class FrozenNoise:
    """One standard-normal noise realisation per candidate, drawn once.

    Args:
        candidates: ``N x d`` candidate points, in candidate order.
        rng: the simulator's seeded generator; ``N x *shape`` draws are taken from it now.
        shape: the shape of one point's noise (``()`` scalar, ``(m,)`` a response row...).

    Example:
        >>> noise = FrozenNoise(np.array([[0.0], [0.5], [1.0]]), np.random.default_rng(0))
        >>> bool(noise.at(np.array([[0.5]]))[0] == noise.eps[1])
        True
    """

    def __init__(self, candidates: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> None:
        cands = np.asarray(candidates, dtype=float)
        self.eps = rng.standard_normal((len(cands), *shape))
        self._index = {tuple(p): i for i, p in enumerate(cands.tolist())}

    def indices(self, x: np.ndarray) -> np.ndarray:
        """The candidate index of each point of ``x`` (``n x d``), by exact match.

        Raises:
            ConfigError: a point is not a candidate (names the point).
        """
        out = np.empty(len(x), dtype=int)
        for k, p in enumerate(np.asarray(x, dtype=float).tolist()):
            i = self._index.get(tuple(p))
            if i is None:
                raise ConfigError(f"point {p} is not a candidate: with noise_per_point only candidates can be measured")
            out[k] = i
        return out

    def at(self, x: np.ndarray) -> np.ndarray:
        """The frozen standard-normal noise of each point of ``x`` -> ``n x *shape``."""
        return self.eps[self.indices(x)]


class Noise:
    """A simulator's measurement noise: its seeded stream, or a frozen realisation per candidate.

    Args:
        seed: seeds ``numpy.random.default_rng(seed)``, the stream every draw comes from.
        candidates: ``N x d`` candidate grid (None for a continuous space).
        noise, dwell_s, noise_per_point: the simulator's settings (checked by :func:`check_common`).
        shape: the shape of one point's noise (``()`` a scalar, ``(m,)`` a response row).
    """

    def __init__(
        self,
        seed: int,
        candidates: np.ndarray | None,
        noise: float,
        dwell_s: float,
        noise_per_point: bool,
        shape: tuple[int, ...] = (),
    ) -> None:
        check_common(noise, dwell_s, noise_per_point, candidates)
        self._rng = np.random.default_rng(seed)
        self._frozen = FrozenNoise(candidates, self._rng, shape) if noise_per_point else None
        self._shape = shape

    def standard(self, x: np.ndarray) -> np.ndarray:
        """Standard-normal noise for the points ``x`` (``n x d``) -> ``n x *shape``."""
        if self._frozen is not None:
            return self._frozen.at(x)
        return self._rng.standard_normal((len(x), *self._shape))
