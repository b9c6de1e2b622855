"""Posterior predictive checks: does a fitted hypothesis explain its own data?

The evidence ranks the hypotheses against each other; it cannot say that the
best of them is still wrong. "None of these" (:data:`abduce.hypotheses.library.NONE_OF_THESE`)
answers that in the evidence, and these checks answer it for each hypothesis
on its own, from its fit, so that a user sees *which* law fails and how:

* **Leave-one-out residuals.** With the fit's hyperparameters and physical
  parameters, ``z_i = alpha_i / sqrt([K^-1]_ii)`` (``alpha = K^-1 (v - m)``) is the
  standardised error of predicting point ``i`` from the others, N(0, 1) for
  every point when the model is right (:meth:`~abduce.hypotheses.posterior.PosteriorAtPoints.loo_residuals`).
  A law whose residual kernel is too narrow to absorb a misfit shows it here:
  ``sum z_i^2`` is then far above its chi-square reference. The check fails
  when ``rms(z) = sqrt(mean z_i^2)`` exceeds ``sqrt(chi2_{0.999}(n) / n)``, the
  0.1% tail of ``n`` independent N(0, 1) residuals (1.35 at ``n = 40``). The ``z_i``
  are correlated, so this is a reference, not an exact test; the false-alarm rate
  on data drawn from the laws is measured in ``tests/hypotheses/test_criticism.py``.
* **The noise against the data's own.** A law can also call its misfit
  noise: fitted to a peak, a straight line passes both other checks with a
  noise variance as large as the peak. Every hypothesis sees the same
  instrument, so the reference is an estimate with no model at all, from the
  differences between each reading and its nearest measured neighbour's:
  ``sigma_d^2 = median_i (v_i - v_nn(i))^2 / (2 * 0.4549)`` (0.4549: the median
  of chi-square with 1 degree of freedom; the median ignores the few pairs that
  straddle a jump; each pair of mutual nearest neighbours counts once). A
  slope between neighbours only raises it (the difference picks up slope x
  spacing), which makes the check more lenient, never stricter; so does its
  floor, the noise variance's lower bound (``KernelPriors.noise_bounds``, in the
  data scale: no law can fit less noise than that). Both sides are compared in
  physical units, so a law whose posterior was updated since its last refit
  (a frame of an older data scale) is compared correctly. (The noise of "none of these" was
  tried first as the reference and failed: it interpolates small-noise data
  and put the true law at 70-100x its noise.) The check fails when the law's
  noise variance exceeds ``sigma_d^2`` by more than the 99.9% point of
  ``F(n, m / 2.7)`` for ``m`` distinct pairs (the median of ``m`` squares
  carries the information of about ``m / 2.7`` of their mean's; 11.4 at
  ``n = 30, m = 20``).
* **The residual against its prior.** A law whose residual kernel *does*
  absorb the misfit fits well and passes the first check, but only with a
  residual amplitude its prior puts little mass on. The check fails when the
  fitted outputscale lies above the 99.9% point of its log-normal prior
  (``KernelPriors``: median and sigma, relative frame). With the defaults
  (median 3% of the data scale, sigma 1, at most 15%) that point is a residual
  sd of 14.1%, so in practice it fires when the residual presses against its
  upper bound. "None of these" is exempt from this check and the noise check:
  its broad residual is the model, not a correction to one (its leave-one-out
  residuals are checked).

All three are plug-in (parameters at their fitted values), so they are slightly
optimistic; they are diagnostics shown beside the probabilities, never
inputs to them. Computed up to ``n = CampaignSettings.check_below`` points
(``O(n^3)``), and only for exact inference (inducing-point posteriors give no
leave-one-out residuals here).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from scipy.stats import chi2, f
from torch import Tensor

from abduce.hypotheses.declaration import KernelPriors
from abduce.hypotheses.posterior import PosteriorAtPoints

LOO_TAIL = 1e-3  # the chi-square tail beyond which rms(z) fails
RESIDUAL_TAIL = 1e-3  # the prior tail beyond which the residual amplitude fails
NOISE_TAIL = 1e-3  # the F tail beyond which the noise variance ratio to the reference fails
_CHI2_1_MEDIAN = 0.45493642311957283  # scipy.stats.chi2.median(1)
_MEDIAN_DOF = (
    2.7  # n squares' median weighs as about n / 2.7 of their mean (asymptotic variance 5.44 / n against 2 / n)
)


@dataclass(frozen=True)
class Criticism:
    """One hypothesis's checks against its data.

    Attributes:
        n: measurements checked.
        loo_rms: ``sqrt(mean z_i^2)`` of the standardised leave-one-out residuals (1 when right).
        loo_limit: the ``loo_rms`` above which the check fails, ``sqrt(chi2_{1-LOO_TAIL}(n) / n)``.
        loo_worst: ``max |z_i|``.
        residual_sd: the residual kernel's amplitude ``sqrt(outputscale)`` as a fraction of the data scale.
        residual_quantile: where that outputscale lies in its prior (its CDF), None for "none of these".
        noise_ratio: its noise variance over the model-free reference (:func:`difference_noise`, floored
            at the noise bound), None without one.
        noise_limit: the ``noise_ratio`` above which the check fails, ``F_{1-NOISE_TAIL}(n, m / 2.7)``.
        misfit: any of the checks failed.
        reasons: what failed, in words.
    """

    n: int
    loo_rms: float
    loo_limit: float
    loo_worst: float
    residual_sd: float
    residual_quantile: float | None
    noise_ratio: float | None
    noise_limit: float | None
    misfit: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


@lru_cache(maxsize=4096)
def loo_limit(n: int) -> float:
    """The rms of ``n`` standardised residuals above which the leave-one-out check fails."""
    return math.sqrt(float(chi2.ppf(1.0 - LOO_TAIL, n)) / n)


@lru_cache(maxsize=4096)
def noise_limit(n: int, pairs: int) -> float:
    """The ratio of a law's noise variance (``n`` points) to :func:`difference_noise` (``pairs``
    distinct squared differences) above which the check fails."""
    return float(f.ppf(1.0 - NOISE_TAIL, n, max(1.0, pairs / _MEDIAN_DOF)))


@dataclass(frozen=True)
class DifferenceNoise:
    """A model-free noise variance (physical units squared) and the distinct pairs it came from."""

    variance: float
    pairs: int


def difference_noise(u: Tensor, y: Tensor) -> DifferenceNoise | None:
    """A model-free noise variance of readings ``y`` (``n``) at ``u`` (``n x d``, unit coordinates):
    ``median (y_i - y_nn(i))^2 / (2 * 0.4549)`` over the distinct pairs of each point and its nearest
    other point ``nn(i)`` (module docstring), in ``y``'s units squared. None below 4 points."""
    n = len(y)
    if n < 4:
        return None
    with torch.no_grad():
        d = torch.cdist(u, u)
        d.fill_diagonal_(math.inf)
        i = torch.arange(n, device=u.device)
        j = d.argmin(1)
        pairs = torch.unique(torch.stack([torch.minimum(i, j), torch.maximum(i, j)]), dim=1)
        sq = (y[pairs[0]] - y[pairs[1]]).square()
        return DifferenceNoise(float(torch.quantile(sq, 0.5)) / (2.0 * _CHI2_1_MEDIAN), pairs.shape[1])


def criticise(
    posterior: PosteriorAtPoints, priors: KernelPriors, flexible: bool = False, reference: DifferenceNoise | None = None
) -> Criticism | None:
    """The checks of one fitted hypothesis (module docstring), or None where the posterior gives
    no leave-one-out residuals (inducing points).

    Args:
        posterior: the hypothesis's posterior on its ``n`` measured points.
        priors: the kernel priors it was fitted under (its own or the campaign's).
        flexible: True for "none of these": its residual amplitude is not checked against its prior.
        reference: the model-free noise of the same data (:func:`difference_noise`, physical
            units), None to skip the noise check.
    """
    z = posterior.loo_residuals()
    if z is None or len(z) == 0:
        return None
    n = len(z)
    rms = float(z.square().mean().sqrt())
    limit = loo_limit(n)
    reasons = []
    if not rms <= limit:  # NaN fails too
        reasons.append(f"leave-one-out residuals rms {rms:.2f} > {limit:.2f} (n = {n})")
    quantile = None
    if not flexible:
        z_prior = (
            math.log(max(posterior.outputscale_rel, 1e-300)) - math.log(priors.outputscale_median)
        ) / priors.outputscale_sigma
        quantile = 0.5 * math.erfc(-z_prior / math.sqrt(2.0))
        if quantile > 1.0 - RESIDUAL_TAIL:
            reasons.append(
                f"residual amplitude {math.sqrt(posterior.outputscale_rel):.3f} of the data scale is beyond "
                f"its prior's {100 * (1 - RESIDUAL_TAIL):.1f}% point "
                f"({math.sqrt(priors.outputscale_median):.3f} median)"
            )
    ratio = ratio_limit = None
    if reference is not None and not flexible:
        floor = priors.noise_bounds[0] * posterior.s**2  # the least noise any law can fit, physical units
        ref = max(reference.variance, floor)
        if ref > 0 and math.isfinite(ref):
            ratio, ratio_limit = posterior.noise / ref, noise_limit(n, reference.pairs)
            if not ratio <= ratio_limit:
                reasons.append(
                    f"noise sd {math.sqrt(posterior.noise):.3g} is {math.sqrt(ratio):.1f}x the data's own "
                    f"({math.sqrt(ref):.3g}, from neighbouring readings): it calls the misfit noise"
                )
    return Criticism(
        n=n,
        loo_rms=rms,
        loo_limit=limit,
        loo_worst=float(z.abs().max()),
        residual_sd=math.sqrt(posterior.outputscale_rel),
        residual_quantile=quantile,
        noise_ratio=ratio,
        noise_limit=ratio_limit,
        misfit=bool(reasons),
        reasons=tuple(reasons),
    )
