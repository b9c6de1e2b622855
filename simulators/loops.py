"""Piezoresponse hysteresis loops across a combinatorial composition spread.

In the spirit of the Sm-doped BiFeO3 library of Ziatdinov et al. (arXiv
2112.06649): a wafer whose composition ``x`` (the Sm fraction, ``[0, 0.25]``
by default) varies along one direction, crossing a ferroelectric ->
paraelectric-like structural transition at ``x_c`` (~0.14). At each
composition a probe applies one cycle of a triangular bias waveform and
records the piezoresponse: one spectrum of shape ``2 x m``, row 0 the bias,
row 1 the response.

Bias (one cycle, ``m`` points, ``m`` a multiple of 4 so that 0 and +-V_max are
sampled on both branches)::

    t_k = k / m,  k = 0 .. m-1
    V(t) = V_max * (4t for t < 1/4;  2 - 4t for 1/4 <= t < 3/4;  4t - 4 for t >= 3/4)

i.e. 0 -> +V_max -> -V_max -> 0 (the endpoint is not repeated).

Composition law: ``s(x)`` is one of :data:`~abduce.simulators.transition1d.TRUTHS`
(evaluated by a held :class:`Transition1D` with amplitude 1), normalised to 1 at
the wafer's start, optionally smeared by the local composition spread ``sigma``
(a Gaussian average over the probed volume, 64-point Gauss-Hermite quadrature)::

    s(x) = E[g(x + sigma z)] / g(lo),   z ~ N(0, 1),   g = the law
    R(x)  = R0 * s(x)            remanence        (second-order: R0 ((x_c - x) / (x_c - lo))^beta)
    Vc(x) = Vc0 * s(x)           coercive bias

Loop model (a phenomenological tanh switching loop plus a linear dielectric
term ``chi V``)::

    ascending  (dV > 0):  P(V) = Ps tanh((V - Vc) / w) + chi V
    descending (dV < 0):  P(V) = Ps tanh((V + Vc) / w) + chi V
    Ps(x) = R / tanh(Vc / w)   (-> R0 w / Vc0 as s -> 0)

The saturation ``Ps`` is chosen so that the loop's remanence (half the branch
difference at V = 0) is exactly ``R(x)``; with ``chi = 0`` its coercive bias
(half the distance between the branches' zero crossings) is exactly
``Vc(x)``; ``chi > 0`` moves each crossing inwards by about ``chi w Vc / Ps``.
Above ``x_c`` (s = 0) the two branches coincide: a slim, non-hysteretic
S-shaped (paraelectric) response with zero remanence, coercive bias and
area. ``V_max`` should exceed ``Vc0 + 3 w`` for the branches to close at the
tips. ``measure`` adds Gaussian noise (sd ``noise``, 5% of ``R0`` by default)
to the response row only; row 0 is the exact applied bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.base import Noise, as_points, check_units
from abduce.simulators.transition1d import Transition1D

_HERMITE = np.polynomial.hermite.hermgauss(64)


@dataclass
class Loops:
    """Hysteresis loops on a composition spread (a spectroscopic simulator, one axis).

    Attributes:
        law: composition law of remanence and coercive bias (a Transition1D law).
        x_c: critical composition.
        beta: exponent (second-order law).
        width: crossover width in composition (sigmoid law).
        lo, hi: the composition range of the wafer.
        grid: number of candidate compositions on ``[lo, hi]`` (0 = continuous).
        sigma: local composition spread smearing the law (0 = sharp).
        r0: remanence at ``x = lo`` (response units).
        vc0: coercive bias at ``x = lo`` (V).
        v_max: bias amplitude (V).
        w: switching width of the tanh branches (V).
        chi: linear dielectric (electrostatic) response per volt.
        m: points per loop (a multiple of 4).
        noise: response noise sd; ``None`` means 5% of ``r0``.
        seed: seeds the noise stream.
        axis_names, dwell_s, channel, noise_per_point: see :class:`~abduce.simulators.base.Simulator`.
        axis_units: ``("",)``: the Sm fraction is dimensionless.
        unit: ``""``: the ``2 x m`` channel holds the bias (V) and the response (response units) together,
            so it declares no single unit.

    Example:
        >>> sim = Loops(seed=0)
        >>> sim.truth(np.array([[0.05]])).shape
        (1, 2, 128)
    """

    law: str = "second-order"
    x_c: float = 0.14
    beta: float = 0.5
    width: float = 0.01
    lo: float = 0.0
    hi: float = 0.25
    grid: int = 101
    sigma: float = 0.0
    r0: float = 1.0
    vc0: float = 3.0
    v_max: float = 10.0
    w: float = 1.0
    chi: float = 0.01
    m: int = 128
    noise: float | None = None
    seed: int = 0
    axis_names: tuple[str, ...] = ("composition",)
    dwell_s: float = 0.0
    channel: str = "loop"
    noise_per_point: bool = False
    axis_units: tuple[str, ...] = ("",)
    unit: str = ""
    _law: Transition1D = field(init=False, repr=False, compare=False)
    _noise: Noise = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ConfigError(f"composition range [{self.lo}, {self.hi}] is empty")
        if self.m < 8 or self.m % 4:
            raise ConfigError(f"m must be a multiple of 4 and >= 8, got {self.m}")
        for name in ("vc0", "v_max", "w"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (self.r0 >= 0 and self.sigma >= 0):
            raise ConfigError(f"r0 and sigma must be >= 0, got {self.r0}, {self.sigma}")
        if len(self.axis_names) != 1:
            raise ConfigError(f"a 1D simulator has one axis name, got {self.axis_names}")
        self.axis_names = tuple(self.axis_names)
        self.axis_units = check_units(self.axis_names, self.axis_units)
        self.noise = 0.05 * self.r0 if self.noise is None else self.noise
        self._law = Transition1D(
            law=self.law,
            x_c=self.x_c,
            beta=self.beta,
            amplitude=1.0,
            width=self.width,
            noise=0.0,
            lo=self.lo,
            hi=self.hi,
            grid=0,
        )
        if not self._law.truth(np.array([self.lo]))[0] > 0:
            raise ConfigError(f"law {self.law!r} vanishes at the wafer's start x = {self.lo} (x_c = {self.x_c})")
        cands = self.candidates()
        self._noise = Noise(self.seed, cands, self.noise, self.dwell_s, self.noise_per_point, (self.m,))

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return ((self.lo, self.hi),)

    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        return (2, self.m)

    def candidates(self) -> np.ndarray | None:
        """The ``grid x 1`` candidate compositions, or None for a continuous range."""
        return np.linspace(self.lo, self.hi, self.grid)[:, None] if self.grid else None

    def bias(self) -> np.ndarray:
        """The applied bias waveform, ``m``: 0 -> +v_max -> -v_max -> 0 (triangular)."""
        t = np.arange(self.m) / self.m
        return self.v_max * np.where(t < 0.25, 4 * t, np.where(t < 0.75, 2 - 4 * t, 4 * t - 4))

    def order(self, x: np.ndarray) -> np.ndarray:
        """The normalised composition law ``s(x)`` (smeared by ``sigma``), ``n x 1`` or ``n`` -> ``n``."""
        c = as_points(x, 1)[:, 0]
        g0 = self._law.truth(np.array([self.lo]))[0]
        if self.sigma == 0:
            return self._law.truth(c) / g0
        z, wts = _HERMITE
        pts = c[:, None] + np.sqrt(2.0) * self.sigma * z[None, :]
        g = self._law.truth(pts.reshape(-1)).reshape(pts.shape)
        return g @ wts / np.sqrt(np.pi) / g0

    def remanence(self, x: np.ndarray) -> np.ndarray:
        """``R(x) = r0 s(x)``, the loop's remanence -> ``n``."""
        return self.r0 * self.order(x)

    def coercive_bias(self, x: np.ndarray) -> np.ndarray:
        """``Vc(x) = vc0 s(x)``, the loop's coercive bias (exact for ``chi = 0``) -> ``n``."""
        return self.vc0 * self.order(x)

    def saturation(self, x: np.ndarray) -> np.ndarray:
        """``Ps(x) = R / tanh(Vc / w)`` (``r0 w / vc0`` where ``s = 0``) -> ``n``."""
        u = self.vc0 * self.order(x) / self.w
        safe = np.maximum(u, 1e-12)
        return self.r0 * self.w / self.vc0 * np.where(u > 1e-12, safe / np.tanh(safe), 1.0)

    def truth(self, x: np.ndarray) -> np.ndarray:
        """Noise-free loops at compositions ``x`` (``n x 1`` or ``n``) -> ``n x 2 x m``."""
        v = self.bias()
        t = np.arange(self.m) / self.m
        sign = np.where((t >= 0.25) & (t < 0.75), -1.0, 1.0)  # descending branch: tanh((V + Vc) / w)
        vc, ps = self.coercive_bias(x), self.saturation(x)
        resp = ps[:, None] * np.tanh((v[None, :] - sign[None, :] * vc[:, None]) / self.w) + self.chi * v[None, :]
        return np.stack([np.broadcast_to(v, resp.shape), resp], axis=1)

    def measure(self, x: np.ndarray) -> np.ndarray:
        """Truth plus Gaussian noise on the response row (row 1) -> ``n x 2 x m``."""
        out = self.truth(x)
        out[:, 1, :] += self.noise * self._noise.standard(as_points(x, 1))
        return out
