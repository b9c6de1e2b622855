"""What a hypothesis is: a name, a physical mean function, named parameters.

A hypothesis is declared in a few lines::

    from abduce.hypotheses import Hypothesis, Parameter, LogNormal

    def power_law(x, p):                      # x: n x d, physical units
        return p["A"] * x[..., 0] ** p["alpha"]

    POWER = Hypothesis(
        name="power-law",
        mean=power_law,
        parameters=(
            Parameter("A", unit="y", bounds=(0.0, 3.0)),
            Parameter("alpha", bounds=(0.1, 4.0), prior=LogNormal(median=1.0, sigma=0.7)),
        ),
        doc="A power law A x^alpha.",
    )

The mean function receives the inputs ``x`` (``n x d``, or ``b x n x d``) and
the parameters in *physical* units, and returns the mean at each point
(``n`` or ``b x n``). Parameters are declared in a *relative frame*, so one
declaration serves a wafer in atomic fraction and a sample stage in kelvin:

====== ====================================== =================================
unit   physical value from relative value r   meaning
====== ====================================== =================================
"1"    r                                      dimensionless or absolute
"x"    lo + r * span   (of axis ``axis``)     a location in the space
"dx"   r * span                               a width along an axis
"y"    r * s                                  an amplitude in the data's units
"y/dx" r * s / span                           a slope
"y*dx" r * s * span                           e.g. a Curie constant
"1/y"  r / s                                  a curvature in y (another channel's bend)
====== ====================================== =================================

where ``lo`` and ``span`` are the space's lower bound and width on the axis
and ``s`` is the data scale, ``max |y|`` over the measurements at the time of
the fit. Bounds and prior are stated on ``r``. A parameter with ``fixed`` set
is a constant with units (a smoothing width, say), not fitted.

Priors are proper densities on the bounds (truncated and renormalised): the
evidence compares hypotheses with different numbers of parameters, and that
comparison is only meaningful with normalised priors (the prior volume is
what makes extra parameters pay; see :mod:`abduce.hypotheses.evidence`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import torch
from torch import Tensor
from torch.distributions import Normal as _TorchNormal

from abduce.controller.errors import ConfigError

UNITS = ("1", "x", "dx", "y", "y/dx", "y*dx", "1/y")

MeanFunction = Callable[[Tensor, dict[str, Tensor]], Tensor]

_STD_NORMAL = _TorchNormal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))


class Prior:
    """A prior on one relative parameter, truncated to the parameter's bounds.

    Subclasses map the parameter to a space where the prior is a standard
    normal (or uniform) and back; that is all the truncation, the density and
    the inverse-CDF sampling need.
    """

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        """Log density of ``r`` under the prior truncated to ``[lo, hi]`` (normalised)."""
        raise NotImplementedError

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        """Inverse CDF of the truncated prior: ``u`` in (0, 1) -> a value in ``[lo, hi]``."""
        raise NotImplementedError

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        """CDF of the truncated prior at ``r`` (0 below ``lo``, 1 above ``hi``)."""
        raise NotImplementedError

    def gpytorch_prior(self):
        """The prior for MAP fitting (truncation constants do not matter there), or None if flat."""
        return None

    def framed(self, p: Parameter, frame: Frame) -> Prior:
        """This prior on ``p``'s relative value in ``frame``: itself, for every prior stated on the relative
        value; a prior held in physical units (:class:`abduce.hypotheses.transfer.Transferred`) converts."""
        return self

    @property
    def declared(self) -> Prior:
        """The prior as the law declared it: itself; a transferred one's declared part."""
        return self


@dataclass(frozen=True)
class Uniform(Prior):
    """Flat on the bounds."""

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        inside = (r >= lo) & (r <= hi)
        return torch.where(inside, torch.full_like(r, -math.log(hi - lo)), torch.full_like(r, -math.inf))

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        return lo + u * (hi - lo)

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        return ((r - lo) / (hi - lo)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class _Gaussianised(Prior):
    """A prior that is standard normal in z = (g(r) - loc) / scale for a monotone g."""

    def _g(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def _g_inv(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def _log_jac(self, r: Tensor) -> Tensor:  # log |dg/dr|
        raise NotImplementedError

    @property
    def _loc_scale(self) -> tuple[float, float]:
        raise NotImplementedError

    def _z_bounds(self, lo: float, hi: float) -> tuple[Tensor, Tensor]:
        loc, scale = self._loc_scale
        zl = (self._g(torch.tensor(lo, dtype=torch.float64)) - loc) / scale
        zh = (self._g(torch.tensor(hi, dtype=torch.float64)) - loc) / scale
        return zl, zh

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        loc, scale = self._loc_scale
        mass = _truncated_mass(self, lo, hi)
        inside = (r >= lo) & (r <= hi)
        rc = r.clamp(lo, hi)
        z = (self._g(rc) - loc) / scale
        lp = _STD_NORMAL.log_prob(z) - math.log(scale) + self._log_jac(rc) - torch.log(mass)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        loc, scale = self._loc_scale
        zl, zh = self._z_bounds(lo, hi)
        cl, ch = _STD_NORMAL.cdf(zl), _STD_NORMAL.cdf(zh)
        p = (cl + u * (ch - cl)).clamp(1e-15, 1 - 1e-15)
        return self._g_inv(loc + scale * _STD_NORMAL.icdf(p)).clamp(lo, hi)

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        loc, scale = self._loc_scale
        zl, zh = self._z_bounds(lo, hi)
        cl, ch = _STD_NORMAL.cdf(zl), _STD_NORMAL.cdf(zh)
        z = (self._g(r.clamp(lo, hi)) - loc) / scale
        return ((_STD_NORMAL.cdf(z) - cl) / (ch - cl)).clamp(0.0, 1.0)


def truncated_mass(prior: _Gaussianised, lo: float, hi: float) -> Tensor:
    """The mass of ``prior``'s normal within ``[lo, hi]`` (a log density's normaliser)."""
    zl, zh = prior._z_bounds(lo, hi)
    return _STD_NORMAL.cdf(zh) - _STD_NORMAL.cdf(zl)


# once per prior and bounds for the declared priors: a MAP fit evaluates their density thousands of times
_truncated_mass = lru_cache(maxsize=4096)(truncated_mass)


@dataclass(frozen=True)
class Normal(_Gaussianised):
    """Normal(mean, sd) truncated to the bounds."""

    mean: float = 0.0
    sd: float = 1.0

    def _g(self, r: Tensor) -> Tensor:
        return r

    def _g_inv(self, z: Tensor) -> Tensor:
        return z

    def _log_jac(self, r: Tensor) -> Tensor:
        return torch.zeros_like(r)

    @property
    def _loc_scale(self) -> tuple[float, float]:
        return self.mean, self.sd

    def gpytorch_prior(self):
        from gpytorch.priors import NormalPrior

        return NormalPrior(self.mean, self.sd)


@dataclass(frozen=True)
class LogNormal(_Gaussianised):
    """log r ~ Normal(log median, sigma), truncated to the (positive) bounds."""

    median: float = 1.0
    sigma: float = 1.0

    def _g(self, r: Tensor) -> Tensor:
        return torch.log(r)

    def _g_inv(self, z: Tensor) -> Tensor:
        return torch.exp(z)

    def _log_jac(self, r: Tensor) -> Tensor:
        return -torch.log(r)

    @property
    def _loc_scale(self) -> tuple[float, float]:
        return math.log(self.median), self.sigma

    def gpytorch_prior(self):
        from gpytorch.priors import LogNormalPrior

        return LogNormalPrior(math.log(self.median), self.sigma)


@dataclass(frozen=True)
class Parameter:
    """One named physical parameter of a hypothesis.

    Attributes:
        name: a Python identifier; the key in the mean function's dict.
        bounds: ``(lo, hi)`` on the relative value (see the module docstring).
        prior: a :class:`Prior` on the relative value; uniform on the bounds by default.
        unit: how the relative value maps to physical units, one of ``UNITS``.
        axis: the input axis that ``"x"``, ``"dx"`` and ``"y/dx"`` refer to.
        fixed: if set, a constant (relative value) that is never fitted.
    """

    name: str
    bounds: tuple[float, float] = (0.0, 1.0)
    prior: Prior = field(default_factory=Uniform)
    unit: str = "1"
    axis: int = 0
    fixed: float | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"parameter name {self.name!r} is not an identifier")
        if self.unit not in UNITS:
            raise ConfigError(f"parameter {self.name!r}: unit {self.unit!r} is not one of {UNITS}")
        lo, hi = self.bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"parameter {self.name!r}: bounds {self.bounds} must be finite with lo < hi")
        if isinstance(self.prior, LogNormal) and lo <= 0:
            raise ConfigError(f"parameter {self.name!r}: a LogNormal prior needs bounds above 0")
        if self.fixed is not None and not (lo <= self.fixed <= hi):
            raise ConfigError(f"parameter {self.name!r}: fixed value {self.fixed} is outside its bounds")


@dataclass(frozen=True)
class KernelPriors:
    """Priors of the residual kernel and the noise, in the relative frame.

    The kernel models smooth deviations from the physics, so its variance
    prior is centred on a residual of 3% of the data scale (at most 15%: a law
    that needs more does not explain the data, and "none of these" takes over;
    chosen on the identification benchmark's families against 5%/50%, which let
    every law absorb a peak, and 2%/10%, which cost in-set identifications), and
    its lengthscale is at least 5% of the space: features sharper than that
    are the physics' job. Without these bounds a handful of points lets the
    residual GP interpolate everything (noise at its floor, lengthscale at
    1%), and every hypothesis then fits equally well. A hypothesis that needs
    a large residual pays for it in the marginal likelihood. The noise
    variance is at least 1e-5 of the data scale squared. Each prior is a
    log-normal given by its median and sigma.
    """

    outputscale_median: float = 0.03**2
    outputscale_sigma: float = 1.0
    outputscale_bounds: tuple[float, float] = (1e-6, 0.15**2)
    lengthscale_median: float = 0.3
    lengthscale_sigma: float = 0.6
    lengthscale_bounds: tuple[float, float] = (0.05, 10.0)
    noise_median: float = 1e-3
    noise_sigma: float = 2.0
    noise_bounds: tuple[float, float] = (1e-5, 1.0)


@dataclass(frozen=True)
class Symmetry:
    """Parts of a hypothesis that can be swapped without changing its mean (two copies of one law in a sum).

    The mean is the same for every relabelling of the parts, so its posterior has ``m!`` mirror modes
    (``m`` parts); an importance sampler centred on one would count ``1 / m!`` of the evidence. The
    parameters are therefore *ordered*: a draw counts only where ``keys`` are non-decreasing (the first
    part's critical point lowest), and the prior density there is multiplied by ``m!`` (the parts' priors
    are identical, so the ordered region holds ``1 / m!`` of their mass). :func:`canonical` puts a fitted
    point into that region by swapping whole parts.

    Attributes:
        keys: one parameter per part, the ordering key (e.g. ``("x_c_1", "x_c_2")``).
        groups: per part, its parameters aligned across parts (``(("A_1", "x_c_1"), ("A_2", "x_c_2"))``).
    """

    keys: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.groups) or len({len(g) for g in self.groups}) > 1:
            raise ConfigError(f"a symmetry needs one key and one aligned group per part, got {self}")

    def log_volume(self) -> float:
        """``log m!``: the ordered region holds ``1 / m!`` of the parts' prior mass."""
        return math.lgamma(len(self.keys) + 1)


@dataclass(frozen=True)
class Hypothesis:
    """A physical hypothesis: a parametric mean function and its parameters.

    ``formula`` is the mean written out for people (``m(x) = ...``); ``depth`` counts the composition steps
    that built it (0 for a declared law; :mod:`abduce.hypotheses.grammar`), ``tree`` how it was composed
    (JSON, what the journal keeps to build it again), ``symmetries`` its interchangeable parts.

    The structured GP built from it (:class:`abduce.hypotheses.model.StructuredGP`)
    adds a Matern-5/2 kernel (``nu``) for what the physics misses and a
    Gaussian noise term, with the priors in :class:`KernelPriors`: the
    campaign's (``FitSettings.priors``), or ``kernel`` where the declaration
    sets its own (the broad residual of "none of these",
    :data:`abduce.hypotheses.library.NONE_OF_THESE`).
    """

    name: str
    mean: MeanFunction
    parameters: tuple[Parameter, ...]
    doc: str = ""
    nu: float = 2.5
    kernel: KernelPriors | None = None
    formula: str = ""
    symmetries: tuple[Symmetry, ...] = ()
    depth: int = 0
    tree: dict | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ConfigError(f"hypothesis {self.name!r}: duplicate parameter names in {names}")
        free = {p.name for p in self.free}
        for sym in self.symmetries:
            if not set(sym.keys) <= free or not all(set(g) <= set(names) for g in sym.groups):
                raise ConfigError(f"hypothesis {self.name!r}: a symmetry names parameters it does not have")
        if self.nu not in (0.5, 1.5, 2.5):
            raise ConfigError(f"hypothesis {self.name!r}: Matern nu must be 0.5, 1.5 or 2.5")

    @property
    def free(self) -> tuple[Parameter, ...]:
        """The fitted parameters, in declaration order."""
        return tuple(p for p in self.parameters if p.fixed is None)

    @property
    def fixed(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.fixed is not None)

    @property
    def interchangeable(self) -> frozenset[str]:
        """The parameters of its interchangeable parts (every group of every :class:`Symmetry`)."""
        return frozenset(name for sym in self.symmetries for group in sym.groups for name in group)

    def as_declared(self) -> Hypothesis:
        """This hypothesis with its declared priors: itself, unless some were transferred from a past campaign
        (what the grammar composes from: a composed law's parameters may move to another axis or unit, where
        a physical prior of its part would not apply)."""
        if all(p.prior.declared is p.prior for p in self.parameters):
            return self
        return replace(self, parameters=tuple(replace(p, prior=p.prior.declared) for p in self.parameters))

    def in_frame(self, frame: Frame) -> Hypothesis:
        """This hypothesis with every prior on its relative values in ``frame`` (:meth:`Prior.framed`):
        itself, unless a prior is held in physical units (one transferred from a past campaign)."""
        priors = [p.prior.framed(p, frame) for p in self.parameters]
        if all(new is p.prior for new, p in zip(priors, self.parameters)):
            return self
        return replace(self, parameters=tuple(replace(p, prior=q) for p, q in zip(self.parameters, priors)))


@dataclass(frozen=True)
class Frame:
    """The affine map between relative and physical units for one fit.

    Attributes:
        lo: ``d`` lower bounds of the space.
        span: ``d`` widths of the space.
        s: the data scale (``max |y|``, or 1 where all y are 0).
    """

    lo: tuple[float, ...]
    span: tuple[float, ...]
    s: float

    def to_physical(self, p: Parameter, r: Tensor) -> Tensor:
        lo, span, s = self.lo[p.axis], self.span[p.axis], self.s
        match p.unit:
            case "1":
                return r
            case "x":
                return lo + r * span
            case "dx":
                return r * span
            case "y":
                return r * s
            case "y/dx":
                return r * s / span
            case "y*dx":
                return r * s * span
            case "1/y":
                return r / s
        raise AssertionError(p.unit)  # pragma: no cover - validated in Parameter

    def to_relative(self, p: Parameter, v: Tensor) -> Tensor:
        lo, span, s = self.lo[p.axis], self.span[p.axis], self.s
        match p.unit:
            case "1":
                return v
            case "x":
                return (v - lo) / span
            case "dx":
                return v / span
            case "y":
                return v / s
            case "y/dx":
                return v * span / s
            case "y*dx":
                return v / (s * span)
            case "1/y":
                return v * s
        raise AssertionError(p.unit)  # pragma: no cover
