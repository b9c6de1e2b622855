"""The structured GP: a BoTorch ``SingleTaskGP`` whose mean is a hypothesis.

The model lives in the relative frame: inputs ``u = (x - lo) / span`` in the
unit cube, outputs ``v = y / s`` with ``s = max|y|``. The physics is written in
physical units; :class:`PhysicsMean` maps both ways (see
:mod:`abduce.hypotheses.declaration`). The outcome is *not* standardised by
BoTorch (``outcome_transform=None``): standardising would subtract a mean and
fit the physics to shifted data, so the scale is handled by ``s`` instead,
under which every built-in law keeps its form.

    f ~ GP(m(x; theta) / s, sigma_f^2 Matern_nu(u, u'; l)),   v_i = f(u_i) + eps_i,
    eps_i ~ N(0, sigma_n^2 + w_i),   w_i = (y_sd_i / s)^2

``sigma_n^2`` is fitted; ``w_i`` is a reading's *known* noise variance (the instrument's own standard
deviation ``y_sd_i``, told with the measurement; 0 where none was told). Without any, ``w`` is None
and every computation is the homoscedastic one, to the bit.
"""

from __future__ import annotations

import math

import torch
from botorch.models import SingleTaskGP
from gpytorch.constraints import Interval
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import Mean
from gpytorch.priors import LogNormalPrior
from linear_operator.operators import DiagLinearOperator
from torch import Tensor

from abduce.hypotheses.declaration import Frame, Hypothesis, KernelPriors  # noqa: F401 (KernelPriors: re-exported)

DTYPE = torch.float64
LOG_2PI = math.log(2 * math.pi)  # the Gaussian log densities' constant, one definition for every module


def physical_parameters(hypothesis: Hypothesis, frame: Frame, relative: dict[str, Tensor]) -> dict[str, Tensor]:
    """All parameters (free ones from ``relative``, fixed ones from the declaration) in physical units."""
    out = {}
    for p in hypothesis.parameters:
        r = relative[p.name] if p.fixed is None else torch.tensor(p.fixed, dtype=DTYPE)
        out[p.name] = frame.to_physical(p, r)
    return out


def relative_mean(hypothesis: Hypothesis, frame: Frame, u: Tensor, relative: dict[str, Tensor]) -> Tensor:
    """The hypothesis's mean in the relative frame.

    Args:
        u: ``(b x) n x d`` relative inputs.
        relative: free parameters, each a scalar or a ``S x 1`` tensor (S draws).

    Returns:
        ``m(lo + u * span; theta) / s``, shape ``n``, ``b x n`` or ``S x n``.
    """
    lo = torch.tensor(frame.lo, dtype=u.dtype, device=u.device)
    span = torch.tensor(frame.span, dtype=u.dtype, device=u.device)
    x = lo + u * span
    return hypothesis.mean(x, physical_parameters(hypothesis, frame, relative)) / frame.s


class PhysicsMean(Mean):
    """A GPyTorch mean module holding a hypothesis's free parameters.

    Each free parameter ``name`` is stored as ``raw_name`` under an
    ``Interval(lo, hi)`` constraint (its relative bounds), with its prior
    registered for MAP fitting (flat priors are not registered).
    """

    def __init__(self, hypothesis: Hypothesis, frame: Frame) -> None:
        super().__init__()
        hypothesis = hypothesis.in_frame(frame)  # a prior held in physical units, in this fit's relative frame
        self.hypothesis, self.frame = hypothesis, frame
        for p in hypothesis.free:
            raw = f"raw_{p.name}"
            self.register_parameter(raw, torch.nn.Parameter(torch.zeros((), dtype=DTYPE)))
            self.register_constraint(raw, Interval(*p.bounds))
            gp_prior = p.prior.gpytorch_prior()
            if gp_prior is not None:
                self.register_prior(
                    f"{p.name}_prior", gp_prior, lambda m, n=p.name: m.value(n), lambda m, v, n=p.name: m.set(n, v)
                )
            self.set(p.name, torch.tensor(sum(p.bounds) / 2, dtype=DTYPE))

    def value(self, name: str) -> Tensor:
        """The constrained (relative) value of one free parameter."""
        raw = getattr(self, f"raw_{name}")
        return getattr(self, f"raw_{name}_constraint").transform(raw)

    def raw(self, name: str, value: Tensor | float) -> Tensor:
        """The raw value that holds one free parameter's relative value (clamped just inside its bounds)."""
        constraint = getattr(self, f"raw_{name}_constraint")
        lo, hi = float(constraint.lower_bound), float(constraint.upper_bound)
        eps = 1e-9 * (hi - lo)
        v = torch.as_tensor(value, dtype=DTYPE).clamp(lo + eps, hi - eps)
        return constraint.inverse_transform(v)

    def set(self, name: str, value: Tensor | float) -> None:
        """Set one free parameter's relative value (clamped just inside its bounds)."""
        getattr(self, f"raw_{name}").data.copy_(self.raw(name, value))

    def values(self) -> dict[str, Tensor]:
        return {p.name: self.value(p.name) for p in self.hypothesis.free}

    def forward(self, x: Tensor) -> Tensor:
        return relative_mean(self.hypothesis, self.frame, x, self.values())


class KnownNoiseGaussianLikelihood(GaussianLikelihood):
    """GPyTorch's ``GaussianLikelihood`` (one fitted noise ``sigma_n^2``, the same parameters and state
    dict) plus the known noise variances ``known`` (``n``, relative frame) of the training points on
    the diagonal: ``Cov(v) = K + sigma_n^2 I + diag(w)``. Like GPyTorch's
    ``FixedNoiseGaussianLikelihood(learn_additional_noise=True)``, but with the learned noise where a
    plain ``GaussianLikelihood`` keeps it, so fits, journals and warm starts are unchanged.

    ``known`` applies to the training points only: to a covariance whose last dimension is ``n``
    (the marginal likelihood, GPyTorch's prediction caches); None: exactly ``GaussianLikelihood``.
    """

    known: Tensor | None = None

    def _shaped_noise_covar(self, base_shape, *params, **kwargs):
        noise = super()._shaped_noise_covar(base_shape, *params, **kwargs)
        if self.known is None or base_shape[-1] != self.known.shape[-1]:
            return noise
        return noise + DiagLinearOperator(self.known.expand(base_shape))


def noise_matrix(model: SingleTaskGP, n: int, device=None) -> Tensor:
    """``sigma_n^2 I + diag(w)`` (``n x n``) of ``model``'s ``n`` training points: its fitted noise and the
    known noise of each point; ``sigma_n^2 I`` (computed as it always was) when none is known."""
    eye = torch.eye(n, dtype=DTYPE, device=device)
    out = model.likelihood.noise * eye
    known = getattr(model.likelihood, "known", None)
    return out if known is None else out + torch.diag(known)


def known_noise(y_sd: Tensor | None, s: float) -> Tensor | None:
    """``w = (y_sd / s)^2`` (relative frame), 0 where ``y_sd`` is NaN (unknown); None when ``y_sd`` is
    None or unknown everywhere."""
    if y_sd is None:
        return None
    known = torch.isfinite(y_sd)
    if not bool(known.any()):
        return None
    return torch.where(known, y_sd, torch.zeros_like(y_sd)).div(s).pow(2)


class StructuredGP(SingleTaskGP):
    """A ``SingleTaskGP`` whose mean module is a :class:`PhysicsMean`.

    Args:
        hypothesis: the physics.
        frame: the relative frame of this fit.
        train_u: ``n x d`` relative inputs.
        train_v: ``n x 1`` relative outputs.
        priors: kernel and noise priors.
        known: ``n`` known noise variances of the training points, relative frame (:func:`known_noise`);
            None: none known.
    """

    def __init__(
        self,
        hypothesis: Hypothesis,
        frame: Frame,
        train_u: Tensor,
        train_v: Tensor,
        priors: KernelPriors,
        known: Tensor | None = None,
    ) -> None:
        d = train_u.shape[-1]
        hypothesis = hypothesis.in_frame(frame)  # priors in this fit's frame (transferred ones are physical)
        base = MaternKernel(
            nu=hypothesis.nu,
            ard_num_dims=d,
            lengthscale_prior=LogNormalPrior(
                torch.log(torch.tensor(priors.lengthscale_median)), priors.lengthscale_sigma
            ),
            lengthscale_constraint=Interval(*priors.lengthscale_bounds),
        )
        covar = ScaleKernel(
            base,
            outputscale_prior=LogNormalPrior(
                torch.log(torch.tensor(priors.outputscale_median)), priors.outputscale_sigma
            ),
            outputscale_constraint=Interval(*priors.outputscale_bounds),
        )
        likelihood = KnownNoiseGaussianLikelihood(
            noise_prior=LogNormalPrior(torch.log(torch.tensor(priors.noise_median)), priors.noise_sigma),
            noise_constraint=Interval(*priors.noise_bounds),
        )
        super().__init__(
            train_u,
            train_v,
            likelihood=likelihood,
            covar_module=covar,
            mean_module=PhysicsMean(hypothesis, frame),
            outcome_transform=None,
        )
        self.hypothesis, self.frame = hypothesis, frame
        self.to(dtype=DTYPE, device=train_u.device)
        covar.base_kernel.lengthscale = priors.lengthscale_median
        covar.outputscale = priors.outputscale_median
        likelihood.noise = max(priors.noise_median, priors.noise_bounds[0] * 10)
        likelihood.known = known

    @property
    def physics(self) -> PhysicsMean:
        return self.mean_module  # type: ignore[return-value]
