"""A 1D phase transition: an order parameter against composition or temperature.

Ground truth written in numpy, apart from the hypotheses' torch models (so a
wrong formula in a hypothesis cannot hide behind the same formula here). The
truth is one of the built-in laws with chosen parameters; ``measure`` adds
Gaussian noise of standard deviation ``noise`` (5% of the amplitude by
default) from the simulator's own seeded generator.

    second-order  A (x_c - x)^beta  for x < x_c, 0 above
    first-order   A                 for x < x_c, 0 above
    sigmoid       A / (1 + exp(-(x_c - x) / w))
    linear        A (1 - x)         (a second-order law with beta = 1, x_c = 1)
    constant      A / 2
    curie-weiss   A * 0.1 / (x + 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abduce.controller.errors import ConfigError

TRUTHS = ("second-order", "first-order", "sigmoid", "linear", "constant", "curie-weiss")


@dataclass
class Transition1D:
    """A seeded 1D transition simulator on ``[lo, hi]``.

    Attributes:
        truth: which law generates the data (one of ``TRUTHS``).
        x_c: critical composition/temperature.
        beta: order-parameter exponent (second-order).
        amplitude: A.
        width: crossover width (sigmoid).
        noise: measurement noise sd; ``None`` means 5% of the amplitude.
        lo, hi: the space.
        grid: number of candidate points on ``[lo, hi]`` (0 = a continuous space).
        seed: seeds the noise stream.
    """

    truth: str = "second-order"
    x_c: float = 0.6
    beta: float = 0.5
    amplitude: float = 1.0
    width: float = 0.05
    noise: float | None = None
    lo: float = 0.0
    hi: float = 1.0
    grid: int = 501
    seed: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.truth not in TRUTHS:
            raise ConfigError(f"unknown truth {self.truth!r}; known: {', '.join(TRUTHS)}")
        if not self.lo < self.hi:
            raise ConfigError(f"space [{self.lo}, {self.hi}] is empty")
        if self.noise is None:
            self.noise = 0.05 * self.amplitude
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0, got {self.noise}")
        self._rng = np.random.default_rng(self.seed)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return ((self.lo, self.hi),)

    def candidates(self) -> np.ndarray | None:
        """The ``grid x 1`` candidate compositions, or None for a continuous space."""
        return np.linspace(self.lo, self.hi, self.grid)[:, None] if self.grid else None

    def truth_at(self, x: np.ndarray) -> np.ndarray:
        """Noise-free order parameter at ``x`` (``n x 1`` or ``n``) -> ``n``."""
        t = np.asarray(x, dtype=float).reshape(len(x), -1)[:, 0]
        a, xc = self.amplitude, self.x_c
        match self.truth:
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
        raise AssertionError(self.truth)

    def measure(self, x: np.ndarray) -> np.ndarray:
        """Truth plus Gaussian noise, drawn from this simulator's stream."""
        t = self.truth_at(x)
        return t + self.noise * self._rng.standard_normal(t.shape)
