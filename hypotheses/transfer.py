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

**Carried quantities** (``carry`` ``c`` in [0, 1), 0 by default). A sample whose law changed is still the same
sample: its critical point and amplitude go on from the last. With ``c > 0`` the new-sample branch splits, and
``w_h`` with it: in ``c`` of it the law is drawn anew but every parameter that the past campaign's declared
laws had under the same name, unit and axis takes ``C_k`` (a composed law's renamed parts, ``x_c_1``, none),
a normal at what those laws together said of it (their
posteriors' mixture, each law weighed by ``p_h^tau``: the recipe's ``pooled``, in
``abduce.controller.recipe.transfer``; tempered and widened by the drift as
``N_k``), the others their declared prior::

    p_new(theta | h) = w_h (1 - c) prod_k p_declared(r_k) + w_h c prod_k C_k(r_k) + (1 - w_h) prod_k N_k(r_k)

So a jump that replaces a power law starts near the power law's critical point, as the power law does,
instead of paying the whole declared range for it; and every other law does as well on a sample like the
last, which is what that costs (README, the transfer benchmark's what-ifs).

Every part is truncated to the parameter's bounds and normalised. The past posterior's correlations are
dropped (the product of its marginals is at least as wide as the joint).

Physical units because the next campaign's relative frame is not the last one's: another grid or range
moves ``x`` (``r = (x - lo) / span``), and the data scale ``s`` (``max |y|``) that amplitudes are relative to
is only known once the new campaign has data, and changes as they come in. A :class:`Transferred` prior
therefore holds the physical moments and becomes a relative :class:`Mixture` wherever a fit's frame is
known (:meth:`~abduce.hypotheses.declaration.Hypothesis.in_frame`, called where a structured GP is built
and where prior draws are screened). Where the past posterior's normal (or the carried one) holds no mass
within the new bounds (a critical point outside the new range), the declared prior stands in for that part.

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
from collections.abc import Callable, Mapping, Sequence
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
    """``share * base + carry * C + (1 - share - carry) * Normal(mean, sd)``, each truncated to ``[lo, hi]``, on
    a relative value (``base``: the parameter's declared prior; :attr:`declared` gives it back; ``C``: the
    carried part, ``Normal(carried_mean, carried_sd)``, or the declared prior where the parameter carries
    nothing): one parameter's marginal of its law's joint prior (:func:`joint_log_prob`), and its density in
    the MAP fit.

    ``share``, ``carry``: the weights of the declared and the carried part, the law's ``w_h (1 - c)`` and
    ``w_h c`` (``c`` the transfer's carry), alike for all its parameters. ``outside``: the past
    normal holds (next to) nothing within the bounds (or there is none: a law the past campaign did not fit),
    and the declared prior stands in for it; ``carried_outside`` the same of the carried normal. ``log``: the
    normal parts are normal in ``log r`` (``mean`` their median, ``sd`` their sigma), for a parameter whose
    declared prior is log-normal. ``lo``, ``hi``: the parameter's bounds (the MAP fit's density needs them;
    every method is also given them)."""

    base: Prior
    mean: float
    sd: float
    share: float
    lo: float
    hi: float
    outside: bool = False
    log: bool = False
    carry: float = 0.0
    carried_mean: float | None = None
    carried_sd: float = 0.0
    carried_outside: bool = False

    @property
    def declared(self) -> Prior:
        return self.base

    def _normal(self, mean: float, sd: float) -> Normal | LogNormal:
        """A normal part: ``Normal(mean, sd)``, or where ``log``, ``LogNormal(median=mean, sigma=sd)``."""
        return LogNormal(median=mean, sigma=sd) if self.log else Normal(mean=mean, sd=sd)

    @property
    def _no_carried(self) -> bool:
        return self.carried_mean is None or self.carried_outside

    @property
    def alone(self) -> bool:
        """The declared prior stands alone (every other part is outside the bounds, absent or of weight 0)."""
        return (self.outside or self.share + self.carry >= 1.0) and (self._no_carried or self.carry <= 0.0)

    def past_log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        """The density of the sample-like-the-last part: the past normal's (the declared one's where outside)."""
        return self.base.log_prob(r, lo, hi) if self.outside else self._normal(self.mean, self.sd).log_prob(r, lo, hi)

    def past_from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        if self.outside:
            return self.base.from_unit(u, lo, hi)
        return self._normal(self.mean, self.sd).from_unit(u, lo, hi)

    def carried_log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        """The density of the law-changed part: the carried normal's (the declared one's where it has none)."""
        if self._no_carried:
            return self.base.log_prob(r, lo, hi)
        return self._normal(self.carried_mean, self.carried_sd).log_prob(r, lo, hi)  # type: ignore[arg-type]

    def carried_from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        if self._no_carried:
            return self.base.from_unit(u, lo, hi)
        return self._normal(self.carried_mean, self.carried_sd).from_unit(u, lo, hi)  # type: ignore[arg-type]

    def _parts(self, r: Tensor, lo: float, hi: float) -> list[Tensor]:
        """Each part's weighted log density at ``r``, the parts of weight 0 left out."""
        return _weighed(
            self.share,
            self.carry,
            lambda: self.base.log_prob(r, lo, hi),
            lambda: self.carried_log_prob(r, lo, hi),
            lambda: self.past_log_prob(r, lo, hi),
        )

    def log_prob(self, r: Tensor, lo: float, hi: float) -> Tensor:
        if self.alone:  # the other parts may hold nothing within the bounds: not evaluated
            return self.base.log_prob(r, lo, hi)
        return _log_sum(self._parts(r, lo, hi))

    def cdf(self, r: Tensor, lo: float, hi: float) -> Tensor:
        if self.alone:
            return self.base.cdf(r, lo, hi)
        past = self.base if self.outside else self._normal(self.mean, self.sd)
        carried = self.base if self._no_carried else self._normal(self.carried_mean, self.carried_sd)  # type: ignore[arg-type]
        rest = 1.0 - self.share - self.carry
        out = self.share * self.base.cdf(r, lo, hi) + self.carry * carried.cdf(r, lo, hi)
        return out + rest * past.cdf(r, lo, hi) if rest > 0 else out

    def from_unit(self, u: Tensor, lo: float, hi: float) -> Tensor:
        """A draw of this marginal from each uniform ``u``: below ``share`` from the declared prior, then below
        ``share + carry`` from the carried part, above from the past part, ``u`` stretched back to (0, 1)
        within the part it picked (as :func:`joint_from_unit` draws)."""
        if self.alone:
            return self.base.from_unit(u, lo, hi)
        part, v = _pick(u, self.share, self.carry)
        return _by_part(
            part, self.base.from_unit(v, lo, hi), self.carried_from_unit(v, lo, hi), self.past_from_unit(v, lo, hi)
        )

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
    """A past posterior's moments in physical units (``sd`` already tempered; ``mean`` None: the law's own past
    posterior gave none), and where ``carried`` the moments the past campaign's laws together give a parameter
    of this name (tempered), each widened by ``drift`` times the parameter's relative range and mixed with its
    declared prior (``past_declared``; :attr:`declared` gives it back) at ``share`` and ``carry``: a
    :class:`Mixture` once a fit's frame is known (:meth:`framed`); never evaluated before."""

    past_declared: Prior
    mean: float | None
    sd: float
    share: float
    drift: float = 0.0
    carry: float = 0.0
    carried: tuple[float, float] | None = None

    def _part(self, p: Parameter, frame: Frame, mean: float | None, sd: float, log: bool) -> tuple[float, float, bool]:
        """A normal part's relative ``(mean, sd, outside)`` in ``frame`` (in ``log r`` where ``log``, by the delta
        method), its drift included; ``outside`` where it holds less than ``MIN_MASS`` within the bounds."""
        lo, hi = p.bounds
        if mean is None:
            return 0.5 * (lo + hi), hi - lo, True
        r = frame.to_relative(p, torch.tensor([mean, mean + sd], dtype=torch.float64))
        m, w = float(r[0]), abs(float(r[1] - r[0]))
        if log:
            if m <= 0:
                return 0.5 * (lo + hi), 1.0, True
            sigma = max(math.hypot(w / m, self.drift * math.log(hi / lo)), 1e-6)
            return m, sigma, float(truncated_mass(LogNormal(median=m, sigma=sigma), lo, hi)) < MIN_MASS
        w = max(math.hypot(w, self.drift * (hi - lo)), 1e-6 * (hi - lo))
        return m, w, float(truncated_mass(Normal(mean=m, sd=w), lo, hi)) < MIN_MASS

    def framed(self, p: Parameter, frame: Frame) -> Prior:
        """A :class:`Mixture` in every frame, so a fit's state (its priors' buffers) is alike from step to step;
        a normal part that holds less than ``MIN_MASS`` within the bounds is ``outside`` (the declared prior
        stands in for it)."""
        lo, hi = p.bounds
        # the normal parts in log r where the declared prior is log-normal and the (own, else carried) mean is
        # above 0 in this frame; a linear normal otherwise (as before the carried part)
        anchor = self.mean if self.mean is not None else (self.carried[0] if self.carried is not None else None)
        log = (
            isinstance(self.past_declared, LogNormal)
            and lo > 0
            and anchor is not None
            and float(frame.to_relative(p, torch.tensor([anchor], dtype=torch.float64))[0]) > 0
        )
        mean, sd, outside = self._part(p, frame, self.mean, self.sd, log)
        carried = {}
        if self.carried is not None:
            c_mean, c_sd, c_out = self._part(p, frame, *self.carried, log)
            carried = {"carried_mean": c_mean, "carried_sd": c_sd, "carried_outside": c_out}
        return Mixture(
            self.past_declared, mean, sd, self.share, lo, hi, outside=outside, log=log, carry=self.carry, **carried
        )

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


def _pick(u: Tensor, share: float, carry: float = 0.0) -> tuple[Tensor, Tensor]:
    """Which part each uniform ``u`` picks (0: the declared, ``u < share``; 1: the carried, ``u < share +
    carry``; 2: the past), and ``u`` stretched back to (0, 1) within the part it picked."""
    edges = torch.tensor([share, share + carry], dtype=u.dtype, device=u.device)
    part = torch.bucketize(u.contiguous(), edges, right=True)
    start = torch.tensor([0.0, share, share + carry], dtype=u.dtype, device=u.device)[part]
    width = torch.tensor([share, carry, 1.0 - share - carry], dtype=u.dtype, device=u.device)[part]
    return part, ((u - start) / width.clamp_min(1e-300)).clamp(1e-12, 1.0 - 1e-12)


Part = Callable[[], Tensor]  # a part's log density, evaluated only where the part has weight


def _weighed(share: float, carry: float, declared: Part, carried: Part, past: Part) -> list[Tensor]:
    """The weighted log densities ``log share + declared``, ``log carry + carried`` and ``log(1 - share - carry) +
    past`` of a mixture's parts (one parameter's, :class:`Mixture`, or a law's joint, :func:`joint_log_prob`),
    the parts of weight 0 left out and never evaluated (they may hold nothing within the bounds)."""
    out = [declared() + math.log(share)] if share > 0 else []
    if carry > 0:
        out.append(carried() + math.log(carry))
    if share + carry < 1.0:
        out.append(past() + math.log1p(-(share + carry)))
    return out


def _log_sum(parts: list[Tensor]) -> Tensor:
    """``log sum exp`` of the parts' log densities (two, as before the carried part, by ``logaddexp``)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return torch.logaddexp(*parts)
    return torch.logsumexp(torch.stack(torch.broadcast_tensors(*parts)), dim=0)


def _by_part(part: Tensor, declared: Tensor, carried: Tensor, past: Tensor) -> Tensor:
    return torch.where(part == 0, declared, torch.where(part == 1, carried, past))


def _shares(mixed: Sequence[Parameter]) -> tuple[float, float]:
    shares = {(p.prior.share, p.prior.carry) for p in mixed}  # type: ignore[attr-defined]
    if len(shares) != 1:
        raise ValueError(f"one law's transferred parameters have different shares {sorted(shares)}")
    return shares.pop()


def joint_log_prob(free: Sequence[Parameter], relative: Mapping[str, Tensor]) -> Tensor:
    """The free parameters' log prior density at ``relative`` (by name, broadcast over draws): the sum of
    their own, the transferred ones' (:class:`Mixture`) taken jointly,
    ``log(w prod_k p_declared(r_k) + c prod_k C_k(r_k) + (1 - w - c) prod_k N_k(r_k))`` (module docstring)."""
    mixed = [p for p in free if isinstance(p.prior, Mixture)]
    total = sum(p.prior.log_prob(relative[p.name], *p.bounds) for p in free if not isinstance(p.prior, Mixture))
    if not mixed:
        return total  # type: ignore[return-value]
    share, carry = _shares(mixed)
    declared = sum(p.prior.base.log_prob(relative[p.name], *p.bounds) for p in mixed)  # type: ignore[attr-defined]
    parts = _weighed(
        share,
        carry,
        lambda: declared,
        lambda: sum(p.prior.carried_log_prob(relative[p.name], *p.bounds) for p in mixed),  # type: ignore[attr-defined]
        lambda: sum(p.prior.past_log_prob(relative[p.name], *p.bounds) for p in mixed),  # type: ignore[attr-defined]
    )
    if len(parts) == 1 and share >= 1.0:
        return total + declared  # type: ignore[return-value]
    return total + _log_sum(parts)  # type: ignore[return-value]


def joint_from_unit(free: Sequence[Parameter], unit: Tensor) -> Tensor:
    """``n x k`` draws of the free parameters from the prior :func:`joint_log_prob` is the density of, by the
    inverse CDF of the uniforms ``unit`` (``n x k``, within (0, 1)). For the transferred ones, the first one's
    uniform also picks the part (below ``w``: the declared prior; below ``w + c``: the carried one) and is
    stretched back to (0, 1) within it, so that scrambled-Sobol draws keep their spread in every coordinate."""
    mixed = [i for i, p in enumerate(free) if isinstance(p.prior, Mixture)]
    share, carry = _shares([free[i] for i in mixed]) if mixed else (1.0, 0.0)
    if share >= 1.0:
        mixed = []
    part, rescaled = _pick(unit[:, mixed[0]], share, carry) if mixed else (None, None)
    columns = []
    for i, p in enumerate(free):
        if i not in mixed:
            prior = p.prior.base if isinstance(p.prior, Mixture) else p.prior
            columns.append(prior.from_unit(unit[:, i], *p.bounds))
            continue
        u = rescaled if i == mixed[0] else unit[:, i]
        prior = p.prior  # type: ignore[assignment]
        columns.append(
            _by_part(
                part,  # type: ignore[arg-type]
                prior.base.from_unit(u, *p.bounds),  # type: ignore[attr-defined]
                prior.carried_from_unit(u, *p.bounds),  # type: ignore[attr-defined]
                prior.past_from_unit(u, *p.bounds),  # type: ignore[attr-defined]
            )
        )
    return torch.stack(columns, dim=-1) if columns else unit[:, :0]


def check_transfer(temper: float, share: float, drift: float = 0.0, carry: float = 0.0) -> None:
    """Raises ConfigError unless ``temper`` and ``share`` are in (0, 1], ``drift`` in [0, 1] and ``carry`` in
    [0, 1)."""
    for name, value in (("temper", temper), ("share", share)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 1.0):
            raise ConfigError(f"transfer {name} must be in (0, 1], got {value!r}")
    if not (isinstance(drift, (int, float)) and math.isfinite(drift) and 0.0 <= drift <= 1.0):
        raise ConfigError(f"transfer drift must be in [0, 1], got {drift!r}")
    if not (isinstance(carry, (int, float)) and math.isfinite(carry) and 0.0 <= carry < 1.0):
        raise ConfigError(f"transfer carry must be in [0, 1), got {carry!r}")


def _checked(h: Hypothesis, moments: Mapping[str, tuple[float, float]], units: Mapping[str, tuple[str, int]]) -> None:
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


def transferred(
    h: Hypothesis,
    moments: Mapping[str, tuple[float, float]],
    units: Mapping[str, tuple[str, int]],
    temper: float,
    share: float,
    drift: float = 0.0,
    carried: Mapping[tuple[str, str, int], tuple[float, float]] | None = None,
    carry: float = 0.0,
) -> Hypothesis:
    """``h`` with each free parameter named in ``moments`` (``name -> (mean, sd)``, physical units, the past
    posterior's) or found in ``carried`` given its transferred prior; the others keep their declared prior,
    and so do the parameters of interchangeable parts (a :class:`~abduce.hypotheses.declaration.Symmetry`: two
    copies of a law in a sum): their ordered prior counts ``m!`` only where the parts' priors are identical,
    which their own past posteriors are not.

    ``units``: each transferred parameter's ``(unit, axis)`` in the past campaign, checked against ``h``'s
    (a parameter of another unit or axis is a different quantity). ``share``: the declared prior's weight in
    its parameters' joint prior, ``w_h (1 - c)``; ``carry``: ``w_h c``, the weight of the part in which the law
    changed and the sample's quantities carried over: ``carried`` (by ``(name, unit, axis)``, the recipe's ``pooled``)
    where it has the parameter, the declared prior where not (``w_h``: :func:`declared_shares`; the recipe's
    :meth:`~abduce.controller.recipe.transfer.Transfer.apply` splits it).

    Raises:
        ConfigError: ``temper`` or ``share`` outside (0, 1], ``drift`` outside [0, 1], ``carry`` outside [0, 1)
            or ``share + carry`` above 1, a moment that is not finite or an sd not above 0, a parameter ``h``
            does not have or of another unit.
    """
    check_transfer(temper, share, drift, carry)
    if share + carry > 1.0 + 1e-12:
        raise ConfigError(f"transfer: {h.name!r} share {share!r} and carry {carry!r} sum above 1")
    _checked(h, moments, units)
    carried = carried if carry > 0 else None
    parameters = []
    for p in h.parameters:
        own = moments.get(p.name)
        across = carried.get((p.name, p.unit, p.axis)) if carried else None
        if (own is not None or across is not None) and p.fixed is None and p.name not in h.interchangeable:
            sd = float(own[1]) / math.sqrt(temper) if own is not None else 1.0
            across = None if across is None else (float(across[0]), float(across[1]) / math.sqrt(temper))
            prior = Transferred(
                p.prior, None if own is None else float(own[0]), sd, float(share), float(drift), float(carry), across
            )
            p = replace(p, prior=prior)
        parameters.append(p)
    if all(new is old for new, old in zip(parameters, h.parameters)):
        return h  # nothing transferred: the law itself
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
