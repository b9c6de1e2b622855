"""Priors carried from a past campaign to the next sample: transfer between campaigns.

A week of beam time is a series of samples, each much like the last. What one campaign learnt becomes the
next one's prior, in two parts.

**The parameters.** Each law's posterior over a free parameter, summarised by its mean ``mu`` and sd ``sd``
in *physical* units, becomes a normal ``N_k = N_[lo, hi](r_k; mu_k, sd_k^2 / tau + (delta (hi - lo))^2)`` on the
parameter's relative value ``r_k``, with ``mu_k``, ``sd_k`` the moments in the new fit's relative frame,
``tau`` in (0, 1] the tempering (a normal raised to the power ``tau`` has its variance divided by ``tau``:
``tau = 1`` keeps the past posterior's width, smaller values widen it) and ``delta`` >= 0 the drift allowed
between samples. For a parameter whose declared prior is log-normal (an exponent, a width) the same holds in
``log r_k``: median ``mu_k``, ``sigma_k^2 = (sd_k / mu_k)^2 / tau + (delta log(hi / lo))^2``, a random walk in
the coordinate its declared prior is normal in. In linear units, the drift gave an exponent ``beta ~ 0.2`` an
sd of 0.2 (a tenth of its range 0.05-2): ``beta < 0.1``, where a power law is all but a jump, held 0.11 of
its mass against the declared prior's 0.003 (0.03 in the logarithm), and a sample whose law had become a
jump was taken for a power law.

The law's parameters then have the *joint* prior

    p_new(theta | h) = w_h prod_k p_declared(r_k) + (1 - w_h) prod_k N_k(r_k)

that is: either this sample is like the last (every parameter near where the last campaign left it), or it
is new (every parameter from the declared prior). ``w_h`` is the probability that the sample is new given
that ``h`` holds (below, with the laws). A mixture per parameter, tried first, gives a sample whose ``k``
parameters all moved only ``lambda^k`` of the declared prior's mass: a law with three parameters on a sample
that changed was charged ``3 log(1/lambda)``, 4.8 nats at ``lambda = 0.2`` (the transfer benchmark's
changed sample at that lambda, then the default: 16 of 20 identified within its budget, 17 with the joint
prior, 18 with the logarithm as well; README).

The drift is the predict step of a random walk, ``theta_k = theta_{k-1} + N(0, (delta (hi - lo))^2)``: a
series' parameters move from sample to sample by more than one campaign's posterior is wide, and a prior as
narrow as that posterior would charge the new sample for moving. It is a fraction of the parameter's declared
range ``hi - lo`` in the new fit's relative frame, as every declared prior is stated (so on a narrower space,
or with a larger data scale, it is narrower, or wider, in physical units).

Both parts are truncated to the parameter's bounds and normalised. The past posterior's correlations are
dropped (the product of its marginals is at least as wide as the joint).

Physical units because the next campaign's relative frame is not the last one's: another grid or range
moves ``x`` (``r = (x - lo) / span``), and the data scale ``s`` (``max |y|``) that amplitudes are relative to
is only known once the new campaign has data, and changes as they come in. A :class:`Transferred` prior
therefore holds the physical moments and becomes a relative :class:`Mixture` wherever a fit's frame is
known (:meth:`~abduce.hypotheses.declaration.Hypothesis.in_frame`, called where a structured GP is built
and where prior draws are screened). Where the past posterior's normal holds no mass within the new bounds
(a critical point outside the new range), that parameter takes its declared prior in both parts.

**The laws.** With probability ``lambda`` (in (0, 1]; ``--transfer-share``) the sample is new, and its
law is drawn from the declared prior ``beta_h`` (each declared law alike, a composed law its complexity
prior's weight); otherwise it is the last sample's, with the past probabilities tempered the same way,
``q_h = p_h^tau / sum_h' p_h'^tau`` over the laws the past campaign weighed (``p_h``: its probabilities at
its end, "none of these" left out; ``q_h = 0`` for a law it did not weigh). So

    pi_h = lambda beta_h + (1 - lambda) q_h,        w_h = lambda beta_h / pi_h,

the law's prior and, given the law, the probability that its parameters are the declared prior's. The
evidence of a law is then that of the joint prior above, and ``pi_h Z_h = lambda beta_h Z_h^declared +
(1 - lambda) q_h Z_h^past``: the hierarchical model's two branches, weighed by the data. "None of these"
keeps its own prior (``none_prior``), so a sample whose law changed can still be flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from gpytorch.priors import Prior as GPyTorchPrior
from torch import Tensor
from torch.distributions import Distribution

from abduce.controller.errors import ConfigError
from abduce.hypotheses.declaration import Frame, Hypothesis, LogNormal, Normal, Parameter, Prior, truncated_mass

MIN_MASS = 1e-9  # a transferred normal holding less of its mass within the new bounds is dropped


@dataclass(frozen=True)
class Mixture(Prior):
    """``share * base + (1 - share) * Normal(mean, sd)``, each truncated to ``[lo, hi]``, on a relative value
    (``base``: the parameter's declared prior; :attr:`declared` gives it back): one parameter's marginal of its
    law's joint prior (:func:`joint_log_prob`), and its density in the MAP fit.

    ``share``: the law's ``w_h``, alike for all its parameters. ``outside``: the past normal holds (next to)
    nothing within the bounds, and the declared prior stands alone. ``log``: the past part is normal in
    ``log r`` (``mean`` its median, ``sd`` its sigma), for a parameter whose declared prior is log-normal.
    ``lo``, ``hi``: the parameter's bounds (the MAP fit's density needs them; every method is also given
    them)."""

    base: Prior
    mean: float
    sd: float
    share: float
    lo: float
    hi: float
    outside: bool = False
    log: bool = False

    @property
    def declared(self) -> Prior:
        return self.base

    @property
    def _normal(self) -> Normal | LogNormal:
        """The past part: ``Normal(mean, sd)``, or where ``log``, ``LogNormal(median=mean, sigma=sd)``."""
        return LogNormal(median=self.mean, sigma=self.sd) if self.log else Normal(mean=self.mean, sd=self.sd)

    @property
    def alone(self) -> bool:
        """The declared prior stands alone (the past normal is outside the bounds, or its weight is 0)."""
        return self.outside or self.share >= 1.0

    def past_log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        """The density of the sample-like-the-last part: the past normal's (the declared one's where alone)."""
        return self.base.log_prob(r, lo, hi) if self.outside else self._normal.log_prob(r, lo, hi)

    def past_from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        return self.base.from_unit(u, lo, hi) if self.outside else self._normal.from_unit(u, lo, hi)

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        if self.alone:  # the past normal may hold nothing within the bounds: not evaluated
            return self.base.log_prob(r, lo, hi)
        declared = self.base.log_prob(r, lo, hi) + math.log(self.share)
        return torch.logaddexp(declared, self._normal.log_prob(r, lo, hi) + math.log1p(-self.share))

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        if self.alone:
            return self.base.cdf(r, lo, hi)
        return self.share * self.base.cdf(r, lo, hi) + (1.0 - self.share) * self._normal.cdf(r, lo, hi)

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        """A draw of this marginal from each uniform ``u``: below ``share`` from the declared prior, above it from
        the past part, ``u`` stretched back to (0, 1) within either (as :func:`joint_from_unit` draws)."""
        if self.alone:
            return self.base.from_unit(u, lo, hi)
        new, v = _pick(u, self.share)
        return torch.where(new, self.base.from_unit(v, lo, hi), self.past_from_unit(v, lo, hi))

    def gpytorch_prior(self):
        return GPyTorchMixture(self)


class GPyTorchMixture(GPyTorchPrior):
    """A :class:`Mixture` as a GPyTorch prior, for the MAP fit's ``register_prior``."""

    def __init__(self, mixture: Mixture) -> None:
        torch.nn.Module.__init__(self)
        Distribution.__init__(self, batch_shape=torch.Size(), event_shape=torch.Size(), validate_args=False)
        self._transform = None
        self.mixture = mixture

    def log_prob(self, x: Tensor) -> Tensor:
        return self.mixture.log_prob(x, self.mixture.lo, self.mixture.hi)


@dataclass(frozen=True)
class Transferred(Prior):
    """A past posterior's moments in physical units (``sd`` already tempered), widened by ``drift`` times the
    parameter's relative range and mixed with its declared prior (``past_declared``; :attr:`declared` gives it
    back) at ``share``: a :class:`Mixture` once a fit's frame is known (:meth:`framed`); never evaluated before."""

    past_declared: Prior
    mean: float
    sd: float
    share: float
    drift: float = 0.0

    def framed(self, p: Parameter, frame: Frame) -> Prior:
        """A :class:`Mixture` in every frame, so a fit's state (its priors' buffers) is alike from step to step;
        one whose past normal holds less than ``MIN_MASS`` within the bounds is ``outside``."""
        lo, hi = p.bounds
        r = frame.to_relative(p, torch.tensor([self.mean, self.mean + self.sd], dtype=torch.float64))
        mean, sd = float(r[0]), abs(float(r[1] - r[0]))
        if isinstance(self.past_declared, LogNormal) and mean > 0 and lo > 0:
            # a log-normal declared prior: the past part, its drift included, in log r (delta method)
            sigma = max(math.hypot(sd / mean, self.drift * math.log(hi / lo)), 1e-6)
            mass = float(truncated_mass(LogNormal(median=mean, sigma=sigma), lo, hi))
            return Mixture(self.past_declared, mean, sigma, self.share, lo, hi, outside=mass < MIN_MASS, log=True)
        sd = max(math.hypot(sd, self.drift * (hi - lo)), 1e-6 * (hi - lo))
        mass = float(truncated_mass(Normal(mean=mean, sd=sd), lo, hi))
        return Mixture(self.past_declared, mean, sd, self.share, lo, hi, outside=mass < MIN_MASS)

    @property
    def declared(self) -> Prior:
        return self.past_declared

    def _unframed(self) -> Tensor:
        raise ConfigError("a transferred prior is in physical units: evaluated in a fit's frame (Hypothesis.in_frame)")

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        return self._unframed()

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        return self._unframed()

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        return self._unframed()


def _pick(u: Tensor, share: float) -> tuple[Tensor, Tensor]:
    """Which uniforms ``u`` pick the declared part (``u < share``), and ``u`` stretched back to (0, 1) within
    the part it picked."""
    new = u < share
    return new, torch.where(new, u / share, (u - share) / (1.0 - share)).clamp(1e-12, 1.0 - 1e-12)


def _share(mixed: Sequence[Parameter]) -> float:
    shares = {p.prior.share for p in mixed}  # type: ignore[attr-defined]
    if len(shares) != 1:
        raise ValueError(f"one law's transferred parameters have different shares {sorted(shares)}")
    return shares.pop()


def joint_log_prob(free: Sequence[Parameter], relative: Mapping[str, Tensor]) -> Tensor:
    """The free parameters' log prior density at ``relative`` (by name, broadcast over draws): the sum of
    their own, the transferred ones' (:class:`Mixture`) taken jointly,
    ``log(w prod_k p_declared(r_k) + (1 - w) prod_k N_k(r_k))`` (module docstring)."""
    mixed = [p for p in free if isinstance(p.prior, Mixture)]
    total = sum(p.prior.log_prob(relative[p.name], *p.bounds) for p in free if not isinstance(p.prior, Mixture))
    if not mixed:
        return total  # type: ignore[return-value]
    share = _share(mixed)
    declared = sum(p.prior.base.log_prob(relative[p.name], *p.bounds) for p in mixed)  # type: ignore[attr-defined]
    if share >= 1.0:
        return total + declared  # type: ignore[return-value]
    past = sum(p.prior.past_log_prob(relative[p.name], *p.bounds) for p in mixed)  # type: ignore[attr-defined]
    return total + torch.logaddexp(declared + math.log(share), past + math.log1p(-share))  # type: ignore[return-value]


def joint_from_unit(free: Sequence[Parameter], unit: Tensor) -> Tensor:
    """``n x k`` draws of the free parameters from the prior :func:`joint_log_prob` is the density of, by the
    inverse CDF of the uniforms ``unit`` (``n x k``, within (0, 1)). For the transferred ones, the first one's
    uniform also picks the part (below ``w``: the declared prior) and is stretched back to (0, 1) within it,
    so that scrambled-Sobol draws keep their spread in every coordinate."""
    mixed = [i for i, p in enumerate(free) if isinstance(p.prior, Mixture)]
    share = _share([free[i] for i in mixed]) if mixed else 1.0
    if share >= 1.0:
        mixed = []
    new, rescaled = _pick(unit[:, mixed[0]], share) if mixed else (None, None)
    columns = []
    for i, p in enumerate(free):
        if i not in mixed:
            prior = p.prior.base if isinstance(p.prior, Mixture) else p.prior
            columns.append(prior.from_unit(unit[:, i], *p.bounds))
            continue
        u = rescaled if i == mixed[0] else unit[:, i]
        declared, past = p.prior.base.from_unit(u, *p.bounds), p.prior.past_from_unit(u, *p.bounds)  # type: ignore[attr-defined]
        columns.append(torch.where(new, declared, past))
    return torch.stack(columns, dim=-1) if columns else unit[:, :0]


def check_transfer(temper: float, share: float, drift: float = 0.0) -> None:
    """Raises ConfigError unless ``temper`` and ``share`` are in (0, 1] and ``drift`` in [0, 1]."""
    for name, value in (("temper", temper), ("share", share)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 1.0):
            raise ConfigError(f"transfer {name} must be in (0, 1], got {value!r}")
    if not (isinstance(drift, (int, float)) and math.isfinite(drift) and 0.0 <= drift <= 1.0):
        raise ConfigError(f"transfer drift must be in [0, 1], got {drift!r}")


def transferred(
    h: Hypothesis,
    moments: Mapping[str, tuple[float, float]],
    units: Mapping[str, tuple[str, int]],
    temper: float,
    share: float,
    drift: float = 0.0,
) -> Hypothesis:
    """``h`` with each free parameter named in ``moments`` (``name -> (mean, sd)``, physical units, the past
    posterior's) given its transferred prior; the others keep their declared prior, and so do the parameters
    of interchangeable parts (a :class:`~abduce.hypotheses.declaration.Symmetry`: two copies of a law in a
    sum): their ordered prior counts ``m!`` only where the parts' priors are identical, which their own past
    posteriors are not.

    ``units``: each transferred parameter's ``(unit, axis)`` in the past campaign, checked against ``h``'s
    (a parameter of another unit or axis is a different quantity). ``share``: the law's ``w_h``
    (:func:`declared_shares`), the declared prior's weight in its parameters' joint prior.

    Raises:
        ConfigError: ``temper`` or ``share`` outside (0, 1], ``drift`` outside [0, 1], a moment that is not
            finite or an sd not above 0, a parameter ``h`` does not have or of another unit.
    """
    check_transfer(temper, share, drift)
    free = {p.name: p for p in h.free}
    for name in moments:
        if name not in free:
            raise ConfigError(f"transfer: {h.name!r} has no free parameter {name!r} (the past campaign's law has)")
        mean, sd = moments[name]
        if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
            raise ConfigError(f"transfer: {h.name!r} {name}: mean {mean!r}, sd {sd!r} (need finite, sd > 0)")
        p = free[name]
        if name in units and tuple(units[name]) != (p.unit, p.axis):
            raise ConfigError(
                f"transfer: {h.name!r} {name} is of unit {p.unit!r} on axis {p.axis}, the past campaign's "
                f"of {units[name][0]!r} on axis {units[name][1]}"
            )
    parameters = []
    for p in h.parameters:
        if p.name in moments and p.fixed is None and p.name not in h.interchangeable:
            mean, sd = moments[p.name]
            tempered = float(sd) / math.sqrt(temper)
            p = replace(p, prior=Transferred(p.prior, float(mean), tempered, float(share), float(drift)))
        parameters.append(p)
    return replace(h, parameters=tuple(parameters))


def law_weights(base: Sequence[float], past: Sequence[float | None], temper: float, share: float) -> list[float]:
    """The laws' prior weights after transfer, on the scale of ``base`` (their sum kept).

    Args:
        base: each law's weight without transfer (1 a declared law, a composed one its complexity prior's).
        past: each law's probability at the end of the past campaign; None where it did not weigh the law.

    Returns:
        ``sum(base) * (share * beta_h + (1 - share) * q_h)``, ``beta = base / sum(base)``,
        ``q_h = p_h^temper / sum p^temper`` over the laws with a past probability (``q = 0`` for the others;
        ``q = beta`` where none has one or all are 0).
    """
    total = float(sum(base))
    return [total * (d + p) for d, p in _branches(base, past, temper, share)]


def declared_shares(base: Sequence[float], past: Sequence[float | None], temper: float, share: float) -> list[float]:
    """Each law's ``w_h = lambda beta_h / pi_h``: given that it holds, the probability that the sample is new
    and its parameters are the declared prior's (the share of its transferred priors, :func:`transferred`);
    1 for a law the past campaign did not weigh while another had a probability above 0 (where none had,
    ``q = beta`` and every law's is ``lambda``). Arguments as :func:`law_weights`."""
    return [d / (d + p) if d + p > 0 else 1.0 for d, p in _branches(base, past, temper, share)]


def _branches(
    base: Sequence[float], past: Sequence[float | None], temper: float, share: float
) -> list[tuple[float, float]]:
    """Per law, ``(lambda beta_h, (1 - lambda) q_h)``: its prior in the new-sample and the like-the-last branch."""
    check_transfer(temper, share)
    total = float(sum(base))
    beta = [b / total for b in base]
    tempered = [0.0 if p is None else max(float(p), 0.0) ** temper for p in past]
    mass = sum(tempered)
    q = beta if mass <= 0 else [t / mass for t in tempered]
    return [(share * b, (1.0 - share) * qh) for b, qh in zip(beta, q)]
