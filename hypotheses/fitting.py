"""MAP fitting of a structured GP: screened multi-start, warm start, one typed error.

The marginal likelihood of a physics-mean GP is multi-modal in the physical
parameters (a transition at ``x_c`` fits locally wherever two points bracket
it), so one L-BFGS run from one start is not enough. :func:`fit_hypothesis`:

1. *Screens* ``settings.screen`` scrambled-Sobol draws of the free physical
   parameters from their prior: with the kernel hyperparameters held at the
   warm values (or the prior medians) the negative log posterior of every draw
   is one triangular solve against a shared Cholesky factor, ``O(n^2 S)``.
2. Starts L-BFGS-B (BoTorch's ``fit_gpytorch_mll_scipy``, iterations capped at
   ``settings.maxiter``) on all hyperparameters from the warm state, and from
   the best screened draws (with the kernel reset to its prior medians) that
   beat the warm state's physics under the same screening kernel (all of the
   best ``settings.restarts`` when there is no warm state). Screening with
   the prior-median kernel, not the warm one, is what lets a fit leave a
   basin where the residual GP has absorbed a wrong physical mean.
3. Keeps the start with the highest log posterior; raises :class:`FitError`
   only when every start failed.

Why ``fit_gpytorch_mll_scipy`` and not ``fit_gpytorch_mll``: the latter
dispatches to the former but retries up to five times from prior samples on
many warnings (an iteration cap reached, jitter added), which can silently
make one fit cost five; here the restarts are chosen (screened) and counted
(``Fit.starts``, ``Fit.capped``).

Readings told with their own standard deviation (``y_sd``) enter every fit as known noise on top of
the fitted one (:class:`~abduce.hypotheses.model.KnownNoiseGaussianLikelihood`); past the switch to
inducing points (``inducing > 0``) the SGPR bound keeps the fitted noise only.

A warm state fitted with another data scale is rescaled (amplitudes by
``s_old / s_new``, kernel and noise variances by its square) before use.
"""

from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from abduce.controller.errors import ConfigError
from abduce.hypotheses.declaration import Frame, Hypothesis
from abduce.hypotheses.errors import FitError
from abduce.hypotheses.model import DTYPE, KernelPriors, StructuredGP, known_noise, noise_matrix, relative_mean
from abduce.hypotheses.sparse import Features, TitsiasMarginalLogLikelihood, inducing_points, titsias_terms
from abduce.hypotheses.transfer import joint_from_unit, joint_log_prob

_Y_UNITS = {"y": 1, "y/dx": 1, "y*dx": 1}


@dataclass(frozen=True)
class FitSettings:
    """How hard a fit tries.

    Attributes:
        screen: prior draws screened for starting points.
        restarts: most L-BFGS starts taken from the screen.
        maxiter: L-BFGS-B iteration cap per start.
        ftol: L-BFGS-B stops when an iteration lowers the objective (negative log
            posterior per point) by less than ``ftol`` relative to its size (SciPy's
            ``ftol``; its default is 2.2e-9).
        priors: kernel and noise priors.
        explore_every: a warm fit starts only from the screened draws that beat the warm state
            under the prior-median kernel; whenever ``n`` is a multiple of this, it also starts from
            the best draw regardless (0: never). A warm state stuck in a local optimum scores better
            than every prior draw under that kernel and was never left: on the identification
            benchmark a second-order truth (beta = 0.14) ended at P = 1.0 for first-order, its own fit
            15 nats of log evidence below a cold fit on the same data.
    """

    screen: int = 256
    restarts: int = 2
    maxiter: int = 150
    ftol: float = 2.220446049250313e-09
    priors: KernelPriors = field(default_factory=KernelPriors)
    explore_every: int = 4

    def __post_init__(self) -> None:
        if self.explore_every < 0:
            raise ConfigError(f"explore_every must be >= 0, got {self.explore_every}")


@dataclass
class Fit:
    """A fitted hypothesis: everything needed to rebuild its model on more data.

    Attributes:
        hypothesis: the hypothesis.
        frame: the relative frame the hyperparameters are expressed in.
        state: the ``StructuredGP`` state dict (hyperparameters, relative frame).
        n: how many points it was fitted on.
        log_posterior: the maximised log marginal likelihood + log priors, per point.
        starts: how many L-BFGS starts were run.
        capped: how many of them stopped at the iteration cap.
        inducing: 0 for exact inference; else the number ``m`` of inducing points
            (:mod:`abduce.hypotheses.sparse`), chosen from the first ``n`` measured
            points by :func:`~abduce.hypotheses.sparse.inducing_points`.
    """

    hypothesis: Hypothesis
    frame: Frame
    state: dict[str, Tensor]
    n: int
    log_posterior: float
    starts: int
    capped: int = 0
    inducing: int = 0
    # the model the fit ended in, on the data it was fitted to: handed once to :meth:`model`
    _model: StructuredGP | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        """The fitted state as JSON (exact: float64 values round-trip through ``repr``)."""
        return {
            "state": {
                k: {
                    "dtype": str(t.dtype).removeprefix("torch."),
                    "shape": list(t.shape),
                    "data": t.detach().cpu().reshape(-1).tolist(),
                }
                for k, t in self.state.items()
            },
            "n": self.n,
            "log_posterior": self.log_posterior,
            "starts": self.starts,
            "capped": self.capped,
            "inducing": self.inducing,
        }

    @classmethod
    def from_json(cls, hypothesis: Hypothesis, frame: Frame, d: dict, device=None) -> Fit:
        """The inverse of :meth:`to_json` (``frame`` is recomputed from the data by the caller)."""
        state = {
            k: torch.tensor(v["data"], dtype=getattr(torch, v["dtype"]), device=device).reshape(v["shape"])
            for k, v in d["state"].items()
        }
        return cls(
            hypothesis=hypothesis,
            frame=frame,
            state=state,
            n=int(d["n"]),
            log_posterior=float(d["log_posterior"]),
            starts=int(d["starts"]),
            capped=int(d.get("capped", 0)),
            inducing=int(d.get("inducing", 0)),
        )

    def model(self, u: Tensor, y: Tensor, y_sd: Tensor | None = None) -> StructuredGP:
        """This fit's model (frozen hyperparameters) conditioned on ``u`` (``n x d``), ``y`` (``n``) and
        the readings' known standard deviations ``y_sd`` (``n``, NaN where unknown; None: none known).

        The first call on the very data of the fit takes the model the fit ended in (building a
        ``StructuredGP`` costs milliseconds, a fair part of a small-n step); every other call builds one."""
        model, self._model = self._model, None
        known = None if self.inducing else known_noise(y_sd, self.frame.s)
        if (
            model is None
            or model.train_inputs[0] is not u
            or not torch.equal(model.train_targets, y / self.frame.s)
            or not _same(model.likelihood.known, known)
        ):
            model = StructuredGP(
                self.hypothesis,
                self.frame,
                u,
                (y / self.frame.s).unsqueeze(-1),
                self.hypothesis.kernel or KernelPriors(),
                known=known,
            )  # its constraints read the state
        model.load_state_dict(completed(self.state, model))
        model.eval()
        return model


_ADDED = re.compile(r"mean_module\.(raw_curve_\d+_\d+|curve_\d+_\d+_prior\.(loc|scale))")
"""State keys of parameters added since a fit could have been journalled: a cheaper channel's link curve
(:func:`abduce.hypotheses.channels.link_parameters`), whose default, 0, is the link without it."""


def completed(state: dict[str, Tensor], model: StructuredGP) -> dict[str, Tensor]:
    """``state`` with the keys of :data:`_ADDED` it lacks taken from ``model`` as built (its defaults): a fit
    journalled before the link's curve existed resumes as the link it was. Any other missing key is left for
    ``load_state_dict`` to refuse."""
    defaults = model.state_dict()
    missing = [k for k in defaults if k not in state and _ADDED.fullmatch(k)]
    return {**state, **{k: defaults[k].clone() for k in missing}} if missing else state


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    return a is b or (a is not None and b is not None and torch.equal(a, b))


@dataclass(frozen=True, eq=False)
class FitProblem:
    """One hypothesis and the data to fit it to: what :func:`plan_fit` and :func:`fit_hypothesis` take
    (with a :class:`FitSettings`, which many problems share).

    Attributes:
        hypothesis: what to fit.
        u: ``n x d`` inputs in the space's unit coordinates (the unit cube).
        y: ``n`` measured values (physical units).
        lo, span: the space's box, ``d`` lower bounds and ``d`` widths (for the frame).
        warm: the previous fit of this hypothesis, if any.
        seed: seeds the Sobol screen (fits are deterministic given it).
        inducing: 0 = exact marginal likelihood; ``m > 0`` = the collapsed SGPR bound on
            ``m`` inducing points chosen from ``u`` (``O(n m^2)`` per evaluation).
        y_sd: ``n`` known standard deviations of the readings (physical units, NaN where unknown),
            added as known noise to the fitted noise (exact inference only); None: none known.
    """

    # eq=False: compared and hashed by identity (field-wise ``==`` on tensors has no truth value)
    hypothesis: Hypothesis
    u: Tensor
    y: Tensor
    lo: tuple[float, ...]
    span: tuple[float, ...]
    warm: Fit | None = None
    seed: int = 0
    inducing: int = 0
    y_sd: Tensor | None = None


def data_scale(y: Tensor) -> float:
    """``s = max |y|``, or 1 where every y is 0."""
    s = float(y.abs().max()) if y.numel() else 1.0
    return s if s > 0 and math.isfinite(s) else 1.0


def _rescaled_state(warm: Fit, frame: Frame, model: StructuredGP) -> dict[str, Tensor]:
    """The warm state with its physical parameters moved to ``frame`` and variances to the new scale."""
    if warm.frame == frame:
        return warm.state
    old = warm.model(torch.zeros(1, len(frame.lo), dtype=DTYPE), torch.zeros(1, dtype=DTYPE))
    ratio2 = (warm.frame.s / frame.s) ** 2
    model.load_state_dict(old.state_dict())
    model.physics.frame = frame
    for p in warm.hypothesis.free:
        physical = warm.frame.to_physical(p, old.physics.value(p.name).detach())
        model.physics.set(p.name, frame.to_relative(p, physical))
    cov = model.covar_module
    cov.outputscale = (old.covar_module.outputscale.detach() * ratio2).clamp(*model_bounds(cov, "raw_outputscale"))
    model.likelihood.noise = (old.likelihood.noise.detach() * ratio2).clamp(
        *model_bounds(model.likelihood.noise_covar, "raw_noise")
    )
    return {k: v.clone() for k, v in model.state_dict().items()}


def model_bounds(module, raw: str) -> tuple[float, float]:
    c = getattr(module, f"{raw}_constraint")
    lo, hi = float(c.lower_bound), float(c.upper_bound)
    return lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo)


_BLAS = None


@contextmanager
def one_blas_thread():
    """Run L-BFGS-B with one BLAS thread.

    Its own linear algebra is a few tiny BLAS calls an iteration, and a multi-threaded
    BLAS pool (OpenBLAS uses every core by default) wakes its threads for each: a SciPy
    ``setulb`` call took 430 us instead of 7 us here, about a quarter of a small-n
    campaign step. The commands set ``OMP_NUM_THREADS=1`` before any import; this covers
    a campaign run from Python. The controller is made once (making one scans the loaded
    libraries, 5 ms); limiting with it costs microseconds.
    """
    global _BLAS
    from threadpoolctl import ThreadpoolController

    if _BLAS is None:
        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def prior_draws(hypothesis: Hypothesis, count: int, seed: int, device: torch.device | None = None) -> dict[str, Tensor]:
    """``count`` scrambled-Sobol draws of the free parameters from their priors, each ``count x 1``."""
    free = hypothesis.free
    sobol = torch.quasirandom.SobolEngine(len(free), scramble=True, seed=seed)
    unit = sobol.draw(count, dtype=DTYPE).clamp(1e-12, 1 - 1e-12).to(device)
    draws = joint_from_unit(free, unit)
    return {p.name: draws[:, i : i + 1] for i, p in enumerate(free)}


def log_prior(hypothesis: Hypothesis, relative: dict[str, Tensor], ordered: bool = True) -> Tensor:
    """Sum of the free parameters' normalised log prior densities (broadcast over draws).

    ``ordered``: for a hypothesis with interchangeable parts (:class:`~abduce.hypotheses.declaration.Symmetry`),
    the prior on the ordered region (``-inf`` where a symmetry's keys decrease, ``+ log m!`` inside);
    False gives the unordered product, the density prior draws (:func:`prior_draws`) come from."""
    total = joint_log_prob(hypothesis.free, relative)  # transferred priors: their law's joint prior
    if ordered:
        for sym in hypothesis.symmetries:
            keys = [relative[k] for k in sym.keys]
            inside = torch.ones_like(total, dtype=torch.bool)
            for a, b in zip(keys[:-1], keys[1:]):
                inside = inside & (a <= b)
            total = torch.where(inside, total + sym.log_volume(), torch.full_like(total, -math.inf))
    return total  # type: ignore[return-value]


def canonical(hypothesis: Hypothesis, values: dict[str, Tensor]) -> dict[str, Tensor]:
    """``values`` (scalars by parameter name) with each symmetry's parts reordered so its keys increase:
    the same mean, in the region :func:`log_prior` counts."""
    out = dict(values)
    for sym in hypothesis.symmetries:
        order = sorted(range(len(sym.keys)), key=lambda i: float(values[sym.keys[i]]))
        for slot, part in enumerate(order):
            for name_to, name_from in zip(sym.groups[slot], sym.groups[part]):
                if name_from in values:
                    out[name_to] = values[name_from]
    return out


def whitened_residuals(model: StructuredGP, u: Tensor, v: Tensor, relative: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Residuals of S parameter draws, whitened by the model's kernel + noise.

    Returns:
        ``(W, logdet)``: ``W = L^-1 (v - m(u; theta_s))`` of shape ``n x S`` and
        ``log det(K + sigma_n^2 I + diag(w))`` (``w``: the known noise, :func:`~abduce.hypotheses.model.noise_matrix`).
    """
    with torch.no_grad():
        k = model.covar_module(u).to_dense() + noise_matrix(model, len(u), u.device)
        chol = torch.linalg.cholesky(k)
        means = relative_mean(model.hypothesis, model.frame, u, relative)  # S x n
        w = torch.linalg.solve_triangular(chol, (v.unsqueeze(0) - means).T, upper=False)
        return w, 2 * chol.diagonal().log().sum()


def residual_quads(model: StructuredGP, u: Tensor, v: Tensor, relative: dict[str, Tensor], z: Tensor | None) -> Tensor:
    """``r_s^T (K + sigma_n^2 I)^-1 r_s`` for S parameter draws (``S``): exact, or under the
    SGPR bound's covariance ``Phi^T Phi + sigma_n^2 I`` when inducing points ``z`` are given."""
    if z is None:
        w, _ = whitened_residuals(model, u, v, relative)
        return (w**2).sum(0)
    with torch.no_grad():
        r = (v.unsqueeze(0) - relative_mean(model.hypothesis, model.frame, u, relative).expand(-1, len(u))).T
        phi = Features(model.covar_module, z)(u)
        quad, _, _ = titsias_terms(
            phi, r, model.likelihood.noise.reshape(()), model.covar_module(u, diag=True).to_dense()
        )
        return quad


def fit_hypothesis(problem: FitProblem, settings: FitSettings) -> Fit:
    """MAP-fit one structured GP: :func:`fit_planned` of :func:`plan_fit`.

    Args:
        problem: the hypothesis and the data to fit it to.
        settings: screening and iteration caps.

    Raises:
        FitError: every start failed (non-finite likelihood, a numerical error).
    """
    return fit_planned(plan_fit(problem, settings), settings)


def fit_planned(plan: FitPlan, settings: FitSettings) -> Fit:
    """Run a plan's starts one by one (SciPy L-BFGS-B each); its best start.

    Raises:
        FitError: every start failed.
    """
    outcomes = []
    for state in plan.starts:
        model = plan.start_model(state)
        mll = plan.mll(model)
        try:
            # An iteration cap reached is expected (and reported as a warning by
            # BoTorch); what counts is the value reached, compared below.
            with warnings.catch_warnings(record=True) as caught, one_blas_thread():
                warnings.simplefilter("always")
                fit_gpytorch_mll_scipy(mll, options={"maxiter": settings.maxiter, "ftol": settings.ftol})
            capped = any("ITERATIONS REACHED LIMIT" in str(w.message) for w in caught)
            outcomes.append(plan.outcome(model, capped, mll))
        except (RuntimeError, ValueError) as exc:  # Cholesky / NaN failures inside GPyTorch
            outcomes.append(f"{type(exc).__name__}: {exc}")
    return plan.best(outcomes)


@dataclass
class FitPlan:
    """One hypothesis's fit, planned: its frame, data and starting states (see :func:`plan_fit`).

    :func:`fit_planned` runs the starts one by one; :mod:`abduce.hypotheses.batched`
    runs the starts of several plans in one batched optimiser. Both end in :meth:`best`.
    """

    hypothesis: Hypothesis
    frame: Frame
    u: Tensor
    v: Tensor
    z: Tensor | None
    priors: KernelPriors
    starts: list[dict[str, Tensor]]
    inducing: int = 0
    model: StructuredGP | None = field(default=None, repr=False)  # the one the plan was made with, to reuse
    known: Tensor | None = None  # n known noise variances, relative frame (exact inference only)

    def start_model(self, state: dict[str, Tensor]) -> StructuredGP:
        """A model in training mode holding one starting state."""
        model = StructuredGP(self.hypothesis, self.frame, self.u, self.v.unsqueeze(-1), self.priors, self.known)
        model.load_state_dict(state)
        model.train()
        return model

    def mll(self, model: StructuredGP):
        """The objective: exact marginal likelihood, or the SGPR bound on ``z``."""
        return (
            ExactMarginalLogLikelihood(model.likelihood, model)
            if self.z is None
            else TitsiasMarginalLogLikelihood(model.likelihood, model, self.z)
        )

    def outcome(
        self, model: StructuredGP, capped: bool, mll=None, value: float | None = None
    ) -> tuple[float, dict[str, Tensor], bool] | str:
        """``(log posterior per point, state, capped)`` of an optimised start, or why it failed
        (``value``: the log posterior per point where the optimiser already computed it; else it is
        computed with ``mll``, by default :meth:`mll`)."""
        if value is None:
            mll = self.mll(model) if mll is None else mll
            with torch.no_grad():
                value = float(mll(model(self.u), self.v))
        if not math.isfinite(value):
            return "non-finite log likelihood"
        return value, {k: t.detach().clone() for k, t in model.state_dict().items()}, capped

    def best(
        self, outcomes: list[tuple[float, dict[str, Tensor], bool] | str], model: StructuredGP | None = None
    ) -> Fit:
        """The start with the highest log posterior, as a :class:`Fit` (``model``: one on the plan's
        data that :meth:`Fit.model` may take instead of building one).

        Raises:
            FitError: every start failed.
        """
        done = [o for o in outcomes if not isinstance(o, str)]
        if not done:
            failures = [o for o in outcomes if isinstance(o, str)]
            raise FitError(self.hypothesis.name, len(self.u), "; ".join(failures) or "no start converged")
        value, state, _ = max(done, key=lambda o: o[0])
        return Fit(
            hypothesis=self.hypothesis,
            frame=self.frame,
            state=state,
            n=len(self.u),
            log_posterior=value,
            starts=len(self.starts),
            capped=sum(o[2] for o in done),
            inducing=self.inducing,
            _model=model,
        )


def plan_fit(problem: FitProblem, settings: FitSettings) -> FitPlan:
    """The frame and the screened starting states of ``problem``'s fit (``settings``: screen, restarts, priors)."""
    hypothesis, u, y, warm, inducing = problem.hypothesis, problem.u, problem.y, problem.warm, problem.inducing
    z = inducing_points(u, inducing) if inducing else None
    frame = Frame(lo=problem.lo, span=problem.span, s=data_scale(y))
    v = y / frame.s
    known = None if inducing else known_noise(problem.y_sd, frame.s)
    priors = hypothesis.kernel or settings.priors
    model = StructuredGP(hypothesis, frame, u, v.unsqueeze(-1), priors, known)
    # Screen under the prior-median kernel, never the warm one: a warm state
    # whose residual GP has absorbed the misfit would make every draw look alike.
    # The model stays in that default state; starts are state dicts, built without loading them.
    default = {k: t.detach().clone() for k, t in model.state_dict().items()}
    initial = _rescaled_state(warm, frame, model) if warm is not None else default
    starts: list[dict[str, Tensor] | None] = []
    if warm is not None:
        starts.append(None)
    if hypothesis.free and settings.screen > 0 and settings.restarts > 0:
        framed = model.hypothesis  # its priors in this frame
        draws = prior_draws(framed, settings.screen, problem.seed, u.device)
        score = 0.5 * residual_quads(model, u, v, draws, z) - log_prior(framed, draws).squeeze(-1)
        if warm is not None:
            current = {
                p.name: getattr(model.physics, f"raw_{p.name}_constraint")
                .transform(initial[f"mean_module.raw_{p.name}"])
                .detach()
                .reshape(1, 1)
                for p in hypothesis.free
            }
            bar = float(0.5 * residual_quads(model, u, v, current, z).sum() - log_prior(framed, current).sum())
        else:
            bar = math.inf
        explore = warm is not None and settings.explore_every > 0 and len(u) % settings.explore_every == 0
        order = torch.argsort(score)
        for rank, i in enumerate(order[: settings.restarts].tolist()):
            if (float(score[i]) < bar or (explore and rank == 0)) and math.isfinite(float(score[i])):
                starts.append({name: t[i, 0] for name, t in draws.items()})
    if not starts:
        starts.append({})
    states = []
    for start in starts:
        state = {k: t.detach().clone() for k, t in (initial if start is None else default).items()}
        for name, value in (start or {}).items():
            state[f"mean_module.raw_{name}"] = model.physics.raw(name, value).reshape(
                state[f"mean_module.raw_{name}"].shape
            )
        states.append(state)
    return FitPlan(
        hypothesis=hypothesis,
        frame=frame,
        u=u,
        v=v,
        z=z,
        priors=priors,
        starts=states,
        inducing=inducing,
        model=model,
        known=known,
    )
