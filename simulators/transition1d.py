"""A 1D phase transition: an order parameter against composition or temperature.

Ground truth written in numpy, apart from the hypotheses' torch models (so a
wrong formula in a hypothesis cannot hide behind the same formula here). The
truth is one of the built-in laws with chosen parameters; ``measure`` adds
Gaussian noise of standard deviation ``noise`` (5% of the amplitude by
default) from the simulator's own seeded generator.

    second-order  A (x_c - x)^beta  for x < x_c, 0 above
    first-order   A                 for x < x_c, 0 above
    sigmoid       A / (1 + exp(-(x_c - x) / w))
    linear        A (1 - (x - lo) / (hi - lo))   (a second-order law with beta = 1, x_c = hi)
    constant      A / 2
    curie-weiss   A * 0.1 / (x - lo + 0.1)

Out-of-set truths (``OUT_OF_SET``): shapes that no built-in law explains, for
benchmarks of "none of these" (what a campaign says when the true law is not
among its hypotheses). With ``u = relu(x_c - x)``, ``u2 = relu(x_c2 - x)``::

    two-transitions    A/2 u^beta + A/2 u2^beta     two second-order transitions, at x_c and x_c2
    peak               A exp(-(x - x_c)^2 / (2 width^2))   a Gaussian peak of sd ``width``
    staircase          A/steps * #{k : x < e_k},  e_k = lo + (x_c - lo) k / steps,  k = 1..steps
                       ``steps`` equal steps down, the last at x_c (steps = 1 is first-order)
    sloped-transition  A u^beta + background A (x - lo) / (hi - lo)
                       a second-order law on a linear background that rises by
                       ``background`` x A across the space

Noise: ``noise`` is the sd in the data's units. Instead, ``noise_fraction``
gives it as a fraction of the truth's range over the space (``max - min`` of
the noise-free truth on 2001 points of ``[lo, hi]``), what "5% noise" means
when the truth's shape varies (a second-order law with ``x_c`` near ``lo``
spans far less than ``A``). Give one of the two; neither means 5% of ``A``.

The other simulators reuse these laws by composition (a ``Transition1D`` held
inside them), never by copying the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.base import Noise, as_points, check_units

TRUTHS = ("second-order", "first-order", "sigmoid", "linear", "constant", "curie-weiss")
OUT_OF_SET = ("two-transitions", "peak", "staircase", "sloped-transition")
LAWS = TRUTHS + OUT_OF_SET


@dataclass(init=False)
class Transition1D:
    """A seeded 1D transition simulator on ``[lo, hi]`` (a scalar simulator, one axis).

    Attributes:
        law: which law generates the data (one of ``LAWS``: the built-in ``TRUTHS`` or the
            ``OUT_OF_SET`` shapes; default "second-order"). The constructor
            also takes it as ``truth=`` (the name it had before ``truth`` became
            the noise-free method).
        x_c: critical composition/temperature.
        beta: order-parameter exponent (second-order, two-transitions, sloped-transition).
        amplitude: A.
        width: crossover width (sigmoid), the peak's sd (peak); > 0.
        x_c2: the second critical point (two-transitions).
        steps: number of equal steps (staircase), >= 1.
        background: the linear background's rise across the space in units of A (sloped-transition).
        noise: measurement noise sd; ``None`` means 5% of the amplitude (or ``noise_fraction``).
        noise_fraction: noise sd as a fraction of the truth's range over the space (instead of ``noise``).
        lo, hi: the space.
        grid: number of candidate points on ``[lo, hi]`` (0 = a continuous space).
        seed: seeds the noise stream.
        axis_names: the axis's name.
        axis_units: the axis's unit (``""``: dimensionless, a composition fraction on ``[0, 1]``, the default).
        dwell_s: wall time per measured point (slept by the simulated driver).
        channel: name of the measured scalar.
        unit: its unit (``""``: dimensionless, an order parameter normalised by its saturation value, the default).
        noise_per_point: frozen noise, one draw per candidate (needs ``grid > 0``).

    Example:
        >>> sim = Transition1D(law="second-order", x_c=0.6, beta=0.5, seed=1)
        >>> float(sim.truth(np.array([[0.35]]))[0])
        0.5
    """

    spectrum_shape: ClassVar[tuple[int, ...]] = ()

    law: str
    x_c: float
    beta: float
    amplitude: float
    width: float
    x_c2: float
    steps: int
    background: float
    noise: float
    lo: float
    hi: float
    grid: int
    seed: int
    axis_names: tuple[str, ...]
    axis_units: tuple[str, ...]
    dwell_s: float
    channel: str
    unit: str
    noise_per_point: bool
    _noise: Noise = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        law: str | None = None,
        x_c: float = 0.6,
        beta: float = 0.5,
        amplitude: float = 1.0,
        width: float = 0.05,
        noise: float | None = None,
        lo: float = 0.0,
        hi: float = 1.0,
        grid: int = 501,
        seed: int = 0,
        axis_names: tuple[str, ...] = ("x",),
        dwell_s: float = 0.0,
        channel: str = "y",
        noise_per_point: bool = False,
        x_c2: float = 0.3,
        steps: int = 3,
        background: float = 0.5,
        noise_fraction: float | None = None,
        axis_units: tuple[str, ...] = ("",),
        unit: str = "",
        *,
        truth: str | None = None,
    ) -> None:
        if law is not None and truth is not None and law != truth:
            raise ConfigError(f"give the law once: law={law!r} and truth={truth!r} disagree")
        self.law = law or truth or "second-order"
        self.x_c, self.beta, self.amplitude, self.width = x_c, beta, amplitude, width
        self.x_c2, self.steps, self.background = x_c2, steps, background
        self.lo, self.hi, self.grid, self.seed = lo, hi, grid, seed
        self.axis_names, self.dwell_s, self.channel = tuple(axis_names), dwell_s, channel
        self.noise_per_point = noise_per_point
        if self.law not in LAWS:
            raise ConfigError(f"unknown law {self.law!r}; known: {', '.join(LAWS)}")
        if not self.lo < self.hi:
            raise ConfigError(f"space [{self.lo}, {self.hi}] is empty")
        for name in ("x_c", "beta", "amplitude", "x_c2", "background"):
            if not np.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be finite, got {getattr(self, name)}")
        if not self.width > 0:
            raise ConfigError(f"width must be > 0, got {self.width}")
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise ConfigError(f"steps must be an integer >= 1, got {self.steps!r}")
        self.steps = int(self.steps)
        if noise is not None and noise_fraction is not None:
            raise ConfigError(
                f"give noise or noise_fraction, not both (noise={noise}, noise_fraction={noise_fraction})"
            )
        if noise_fraction is not None:
            if not noise_fraction >= 0:
                raise ConfigError(f"noise_fraction must be >= 0, got {noise_fraction}")
            noise = noise_fraction * self.span()
        self.noise = 0.05 * amplitude if noise is None else noise
        if len(self.axis_names) != 1:
            raise ConfigError(f"a 1D simulator has one axis name, got {self.axis_names}")
        self.axis_units, self.unit = check_units(self.axis_names, axis_units), str(unit)
        cands = self.candidates()
        self._noise = Noise(self.seed, cands, self.noise, dwell_s, noise_per_point)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return ((self.lo, self.hi),)

    def candidates(self) -> np.ndarray | None:
        """The ``grid x 1`` candidate compositions, or None for a continuous space."""
        return np.linspace(self.lo, self.hi, self.grid)[:, None] if self.grid else None

    def truth(self, x: np.ndarray) -> np.ndarray:
        """Noise-free order parameter at ``x`` (``n x 1`` or ``n``) -> ``n``."""
        t = np.asarray(x, dtype=float).reshape(len(x), -1)[:, 0]
        a, xc = self.amplitude, self.x_c
        match self.law:
            case "second-order":
                return a * np.clip(xc - t, 0.0, None) ** self.beta
            case "first-order":
                return np.where(t < xc, a, 0.0)
            case "sigmoid":
                return a / (1.0 + np.exp(-(xc - t) / self.width))
            case "linear":
                return a * (1.0 - (t - self.lo) / (self.hi - self.lo))
            case "constant":
                return np.full_like(t, a / 2)
            case "curie-weiss":
                return a * 0.1 / (t - self.lo + 0.1)
            case "two-transitions":
                return (
                    0.5 * a * (np.clip(xc - t, 0.0, None) ** self.beta + np.clip(self.x_c2 - t, 0.0, None) ** self.beta)
                )
            case "peak":
                return a * np.exp(-0.5 * ((t - xc) / self.width) ** 2)
            case "staircase":
                edges = self.lo + (xc - self.lo) * np.arange(1, self.steps + 1) / self.steps
                return a / self.steps * (t[:, None] < edges[None, :]).sum(axis=1)
            case "sloped-transition":
                return a * np.clip(xc - t, 0.0, None) ** self.beta + self.background * a * (t - self.lo) / (
                    self.hi - self.lo
                )
        raise AssertionError(self.law)

    def span(self) -> float:
        """The noise-free truth's range (``max - min``) over 2001 evenly spaced points of ``[lo, hi]``."""
        return float(np.ptp(self.truth(np.linspace(self.lo, self.hi, 2001)[:, None])))

    def measure(self, x: np.ndarray) -> np.ndarray:
        """Truth plus Gaussian noise: drawn from this simulator's stream, or frozen per candidate."""
        t = self.truth(x)
        return t + self.noise * self._noise.standard(as_points(x, 1))
