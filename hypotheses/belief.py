"""What a campaign believes about its hypotheses, and how that belief is computed.

A :class:`Belief` holds, for each of ``K`` hypotheses (and "none of these"),
its MAP fit, its posterior at the campaign's ``N`` points and its evidence,
and owns the *inference strategy*: exact inference or inducing points,
batched or one-by-one fits. The pure campaign (:mod:`abduce.controller.core`)
decides *when* a hypothesis is refit (its schedule) and *what* to measure;
it asks this object to refit, to condition on one more point, and for the
probabilities.

Notation: ``u`` is ``n x d`` unit coordinates of the measured points, ``y``
the ``n`` values in physical units, ``v = y / s`` the values on the fit's
data scale ``s``; ``points`` is ``N x d`` unit coordinates where the
posteriors are kept (the candidates of a finite space, reference points of
a box). Every tensor lives on ``points.device``: the device is chosen at the
edge (the recipe), never here.

Strategy:

* **exact** while ``n <= exact_limit`` (``exact_max_n``, or fewer where the
  ``n x N`` factors of the ``K`` hypotheses would pass ``exact_memory_gb``);
  past it every hypothesis switches to ``inducing`` inducing points
  (:mod:`abduce.hypotheses.sparse`) at its next refit, and the campaign makes
  every one due at once so their evidences stay comparable.
* **batched**: while ``n <= batch_fit_below`` (exact inference), every start of
  every fit due in one step runs in one batched optimiser
  (:mod:`abduce.hypotheses.batched`); otherwise one by one.
* **probabilities**: posterior probabilities from the evidences under a prior
  of ``none_prior`` for "none of these" and an equal share of the rest for
  each law; the *floor* is the leader's probability with the Monte Carlo
  noise (2 standard errors) against it.

Example:
    >>> belief = Belief([BUILTIN["linear"]], points, lo=(0.0,), span=(1.0,), settings=InferenceSettings())
    >>> failures = belief.refit(belief.all_slots(), u, y, seed=lambda purpose, index: 0)
    >>> belief.probabilities()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from abduce.controller.errors import ConfigError
from abduce.hypotheses.batched import fit_hypotheses_batched
from abduce.hypotheses.criticism import criticise, difference_noise
from abduce.hypotheses.declaration import Frame, Hypothesis
from abduce.hypotheses.errors import FitError
from abduce.hypotheses.evidence import EvidenceTracker, log_evidence, probabilities
from abduce.hypotheses.fitting import Fit, FitProblem, FitSettings, data_scale, fit_planned, plan_fit
from abduce.hypotheses.library import NONE_OF_THESE
from abduce.hypotheses.occam import log_occam
from abduce.hypotheses.posterior import CandidatePosterior, PosteriorAtPoints
from abduce.hypotheses.sparse import SparseCandidatePosterior, inducing_points

_log = logging.getLogger(__name__)

HELD_MARGIN = 10.0  # nats: a refit is refused when the held fit's evidence beats it by more (Belief._worse_than_held)
HELD_MIN_ESS = 0.1  # ... and the held estimate's effective sample size is at least this fraction of its draws
REFUSED = "refit refused"  # how a refused refit's failure message begins


def refused_refits(failures: dict[str, str], n: int) -> dict[str, dict]:
    """The refits a journalled step refused (its ``fit_failures``, the step's ``n``), as :meth:`Belief.refit`
    ``restore`` entries: a resume refuses them again without fitting, so it cannot decide otherwise."""
    return {name: {"n": n, "refused": why} for name, why in failures.items() if why.startswith(REFUSED)}


def _known_variance(sd: float | None, s: float) -> float:
    """A reading's known noise variance on a fit's data scale ``s`` (0 where none is known: None or NaN)."""
    return (sd / s) ** 2 if sd is not None and math.isfinite(sd) else 0.0


Seed = Callable[[str, int], int]
"""``seed(purpose, index) -> int``: the step's seed for ``"fit"`` or ``"evidence"`` of slot ``index``."""


@dataclass(frozen=True)
class InferenceSettings:
    """How a belief is computed (the campaign's settings extend these).

    Attributes:
        fit: fitting effort (screen size, restarts, iteration cap).
        evidence_samples: importance samples per stage of the evidence estimate.
        exact_max_n: past this many measurements every hypothesis switches from exact
            inference to ``inducing`` inducing points (:mod:`abduce.hypotheses.sparse`);
            see "Large campaigns" in the README for how it was measured.
        inducing: inducing points per hypothesis past the switch.
        batch_fit_below: up to this n, the refits of one step run in one batched optimiser
            (:mod:`abduce.hypotheses.batched`; equal to one by one within rounding,
            measured faster up to about this n in tests/benchmarks/batched_fit.py).
        exact_memory_gb: cap on the exact path's candidate factors (``n x N`` float64
            per hypothesis, with the row buffer's headroom): with many candidates the
            switch comes earlier, at ``n = exact_memory_gb 2^30 / (8 x 2.2 N K)`` (:attr:`Belief.exact_limit`).
        none_prior: the prior probability of "none of these" (:data:`~abduce.hypotheses.library.NONE_OF_THESE`,
            a flexible GP with no physics that competes in the evidence; the laws share the rest
            equally); 0 leaves it out.
        check_below: up to this n, every step checks each fitted hypothesis against its data
            (:mod:`abduce.hypotheses.criticism`: leave-one-out residuals, the noise against a
            model-free estimate from neighbouring readings, the residual's amplitude against its prior;
            ``O(n^3)`` each); 0 never checks.
        hyperparameter_evidence: each log evidence includes the Laplace factor that integrates
            the kernel and noise hyperparameters out (:mod:`abduce.hypotheses.occam`, computed
            at every refit on the first 200 points); False holds them at their fit (the
            evidence before this factor, kept for side-by-side measurement).
    """

    fit: FitSettings = field(default_factory=FitSettings)
    evidence_samples: int = 512
    exact_max_n: int = 1000
    inducing: int = 512
    batch_fit_below: int = 100
    exact_memory_gb: float = 4.0
    none_prior: float = 0.1
    check_below: int = 400
    hyperparameter_evidence: bool = True

    def __post_init__(self) -> None:
        if self.exact_max_n < 1 or self.inducing < 1 or self.exact_memory_gb <= 0:
            raise ConfigError("exact_max_n and inducing must be >= 1 and exact_memory_gb > 0")
        if not 0.0 <= self.none_prior < 1.0:
            raise ConfigError(f"none_prior must be in [0, 1), got {self.none_prior}")
        if self.check_below < 0:
            raise ConfigError(f"check_below must be >= 0, got {self.check_below}")


@dataclass(eq=False)
class Slot:
    """One hypothesis's fitted state: its fit, its posterior at the points, its evidence (compared by identity)."""

    hypothesis: Hypothesis
    fit: Fit | None = None
    posterior: PosteriorAtPoints | None = None
    evidence: EvidenceTracker | None = None
    last_refit_n: int = 0


@dataclass(frozen=True)
class Weighed:
    """The evidence of the fitted laws after one step, and what follows from it.

    Attributes:
        log_z, log_z_se: per fitted law, its log evidence and the Monte Carlo standard error.
        probabilities: per fitted law, its posterior probability.
        none: "none of these" (``{"probability", "log_evidence", "log_evidence_se"}``), None when
            left out or not fitted yet; it and ``probabilities`` sum to 1.
        floor: the leader's probability with the estimator's noise against it (:meth:`Belief.weigh`).
        parameters: per fitted law, ``{param: [posterior mean, sd]}`` in physical units.
        integrated_variance: per fitted law, its posterior variance averaged over the points.
    """

    log_z: dict[str, float]
    log_z_se: dict[str, float]
    probabilities: dict[str, float]
    none: dict[str, float] | None
    floor: float
    parameters: dict[str, dict[str, list[float]]]
    integrated_variance: dict[str, float]


class Belief:
    """The fitted state of ``K`` hypotheses (and "none of these") at ``N`` points.

    Args:
        hypotheses: the laws (names unique; "none of these" is added by ``none_prior``).
        points: ``N x d`` unit coordinates where the posteriors are kept (their device is the belief's).
        lo, span: the space's box (physical units), for the fits' frame.
        settings: see :class:`InferenceSettings`.
    """

    def __init__(
        self,
        hypotheses: Sequence[Hypothesis],
        points: Tensor,
        lo: tuple[float, ...],
        span: tuple[float, ...],
        settings: InferenceSettings,
        weights: Sequence[float] | None = None,
    ) -> None:
        if NONE_OF_THESE.name in [h.name for h in hypotheses]:
            raise ConfigError(
                f"{NONE_OF_THESE.name!r} is weighed by every campaign (none_prior); it is not a hypothesis to list"
            )
        self.points, self.lo, self.span, self.settings = points, lo, span, settings
        self.slots = [Slot(h) for h in hypotheses]
        # each law's prior weight: 1 a declared law; a proposal's complexity prior; a transfer's (hypotheses.transfer)
        self.weights = [1.0] * len(self.slots) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.slots) or not all(math.isfinite(w) and w > 0 for w in self.weights):
            raise ConfigError(f"one prior weight > 0 per hypothesis, got {list(weights or [])} for {len(self.slots)}")
        # "none of these": fitted and weighed like the laws, never chosen by a policy or scored by an acquisition
        self.none = Slot(NONE_OF_THESE) if settings.none_prior > 0 else None

    @property
    def device(self):
        return self.points.device

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.hypothesis.name for s in self.slots)

    def all_slots(self) -> list[Slot]:
        """The hypotheses' slots and, last, that of "none of these" (when it is weighed)."""
        return self.slots + ([self.none] if self.none is not None else [])

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.all_slots() if s.hypothesis.name == name), None)

    def usable(self) -> list[int]:
        """Indices of the laws that have a fit."""
        return [i for i, s in enumerate(self.slots) if s.fit is not None]

    @property
    def exact_limit(self) -> int:
        """Most measurements for exact inference: ``exact_max_n``, or fewer where the exact
        factors (``n x N`` float64 for each of the K hypotheses, x 2.2 for the row buffer's
        doubling and the growth between refits) would pass ``exact_memory_gb``."""
        per_row = 8 * 2.2 * len(self.points) * len(self.slots)
        return max(1, min(self.settings.exact_max_n, int(self.settings.exact_memory_gb * 2**30 / per_row)))

    def must_switch(self, slot: Slot, n: int) -> bool:
        """Whether ``slot`` is still on exact inference with ``n`` past :attr:`exact_limit`."""
        return slot.fit is not None and slot.fit.inducing == 0 and n > self.exact_limit

    # ------------------------------------------------------------------ updates

    def add_laws(self, slots: Sequence[Slot], weights: Sequence[float]) -> None:
        """New contenders (proposals, :mod:`abduce.controller.core.abduction`), fitted or not, with their
        prior weights (the declared laws weigh 1 each; the laws' share ``1 - none_prior`` is split in
        proportion)."""
        names = set(self.names)
        for slot, weight in zip(slots, weights):
            if slot.hypothesis.name in names or slot.hypothesis.name == NONE_OF_THESE.name:
                raise ConfigError(f"{slot.hypothesis.name!r} is already weighed by this campaign")
            if not weight > 0:
                raise ConfigError(f"{slot.hypothesis.name!r}: a prior weight must be > 0, got {weight}")
            self.slots.append(slot)
            self.weights.append(float(weight))
            names.add(slot.hypothesis.name)

    def refit(
        self,
        due: Iterable[Slot],
        u: Tensor,
        y: Tensor,
        seed: Seed,
        restore: dict[str, dict] | None = None,
        y_sd: Tensor | None = None,
    ) -> dict[str, str]:
        """Refit the slots ``due`` on ``(u, y)`` and condition each new fit on them; returns the
        error of each whose fit failed (its previous fit, if any, stays in use).

        ``y_sd``: ``n`` known standard deviations of the readings (physical units, NaN where unknown;
        None: none known), known noise on top of the fitted noise (exact inference).

        ``restore``: fitted states by hypothesis name (:meth:`fit_states` of a live run); a
        slot with one for this ``n`` takes it instead of optimising again, and one with a refusal
        (:func:`refused_refits`) keeps its held fit as it did live, without fitting.

        A refit is refused where the held fit beats it by far (:meth:`_worse_than_held`); it is
        returned among the failures, its message beginning with :data:`REFUSED`."""
        due = list(due)
        restore = restore or {}
        n = len(y)
        inducing = self.settings.inducing if n > self.exact_limit else 0
        index = {id(slot): i for i, slot in enumerate(self.all_slots())}  # seeds: "none of these" is K
        fits: dict[int, Fit | FitError | str] = {}
        restored: set[int] = set()  # slots whose fit this step is the journalled one: never weighed again
        to_fit = []
        for slot in due:
            if inducing and (slot.fit is None or slot.fit.inducing == 0):
                _log.info(
                    "%s: n = %d > %d, switching from exact inference to %d inducing points",
                    slot.hypothesis.name,
                    n,
                    self.exact_limit,
                    inducing,
                )
            saved = restore.get(slot.hypothesis.name)
            if saved is not None and int(saved["n"]) == n and "refused" in saved:  # refused live: refused again
                fits[id(slot)] = str(saved["refused"])
            elif saved is not None and int(saved["n"]) == n:
                fits[id(slot)] = Fit.from_json(slot.hypothesis, self._frame(y), saved, device=self.device)
                restored.add(id(slot))
            else:
                to_fit.append(slot)
        plans = [
            plan_fit(
                FitProblem(
                    slot.hypothesis,
                    u,
                    y,
                    self.lo,
                    self.span,
                    warm=slot.fit,
                    seed=seed("fit", index[id(slot)]),
                    inducing=inducing,
                    y_sd=y_sd,
                ),
                self.settings.fit,
            )
            for slot in to_fit
        ]
        if plans and not inducing and n <= self.settings.batch_fit_below:
            fits.update(zip(map(id, to_fit), fit_hypotheses_batched(plans, self.settings.fit)))
        else:
            for slot, plan in zip(to_fit, plans):
                try:
                    fits[id(slot)] = fit_planned(plan, self.settings.fit)
                except FitError as exc:
                    fits[id(slot)] = exc
        failures = {}
        for slot in due:
            fit = fits[id(slot)]
            if isinstance(fit, FitError | str):  # failed, or refused live (a journalled refusal)
                failures[slot.hypothesis.name] = str(fit)
                continue
            posterior, evidence = self._conditioned(fit, u, y, seed("evidence", index[id(slot)]), y_sd)
            worse = None if id(slot) in restored else self._worse_than_held(slot, evidence, u, y, y_sd)
            if worse is not None:  # the held fit stays in use; the caller conditions it on the new point
                failures[slot.hypothesis.name] = worse
                continue
            slot.fit, slot.last_refit_n = fit, n
            slot.posterior, slot.evidence = posterior, evidence
        return failures

    def _worse_than_held(
        self, slot: Slot, evidence: EvidenceTracker, u: Tensor, y: Tensor, y_sd: Tensor | None
    ) -> str | None:
        """Why a refit is refused (None: it is kept): its hyperparameters give the data a log evidence more
        than :data:`HELD_MARGIN` nats below what the held fit's give, the held fit conditioned on the one new
        point (computed aside: the slot is not touched).

        The fit maximises the joint posterior of the physical parameters and the hyperparameters; the
        evidence integrates the physical parameters at the fitted hyperparameters. At a handful of readings
        the joint optimum can be a needle: the noise pressed to its floor and the residual interpolating
        the readings at one exact parameter value, where the integral is hundreds of nats below that of the
        fit one reading earlier (a jump law at five readings: -517 nats against -10). Keeping the held
        hyperparameters there is type-II maximum likelihood between the two. The margin is wide on
        purpose: a refit a few nats down can be a fair trade (a composed law whose held residual absorbed
        its misfit gained 3.4 nats held, and holding it kept a wrong law alive), and the held fit's
        hyperparameter factor is the one of its own readings. The held estimate
        must also rest on enough draws, an effective sample size of at least :data:`HELD_MIN_ESS` of them
        (the evidence's own bar for a stage): a held fit with one effective draw reported any log evidence
        its draw had, refused every refit after it and, as their warm start, kept them in the wrong optimum
        to the budget (a jump law held from 5 readings to 36, its refits 120 nats down).
        Exact inference only, and only when the held fit has every reading but the last."""
        held = slot.posterior
        if type(held) is not CandidatePosterior or held.n != len(y) - 1 or type(slot.evidence) is not EvidenceTracker:
            return None
        if type(evidence) is not EvidenceTracker:  # the refit switched to inducing points: a bound, not comparable
            return None
        s = slot.fit.frame.s  # type: ignore[union-attr]
        row = held.row_for(u[-1], _known_variance(None if y_sd is None else float(y_sd[-1]), s))
        kept, ess = slot.evidence.with_point(row, u[-1], float(y[-1]) / s)
        new = evidence.evidence().log_z
        if not (kept > new + HELD_MARGIN and ess >= HELD_MIN_ESS * len(slot.evidence.log_pq)):
            return None
        return (
            f"{REFUSED}: its hyperparameters give the data log evidence {new:.1f}, the fit of n = "
            f"{slot.fit.n} held on the new reading {kept:.1f}"  # type: ignore[union-attr]
        )

    def add(self, slots: Iterable[Slot], u_new: Tensor, y_new: float, y_sd_new: float | None = None) -> None:
        """Condition each fitted slot of ``slots`` on one more point (``d`` unit coordinates, a physical
        value, its known standard deviation or None) with its hyperparameters frozen: a rank-1 update of
        its posterior and evidence, ``O(n N)``."""
        for slot in slots:
            if slot.posterior is not None:
                s = slot.fit.frame.s  # type: ignore[union-attr]
                v_new = y_new / s
                row = slot.posterior.add(u_new, v_new, _known_variance(y_sd_new, s))
                slot.evidence.add(row, u_new, v_new)  # type: ignore[union-attr]

    def load(
        self,
        fits: dict[str, dict],
        u: Tensor,
        y: Tensor,
        seed: Callable[[int, int], int],
        y_sd: Tensor | None = None,
    ) -> None:
        """Each slot's journalled latest fit (:meth:`fit_states`, fitted on the first ``fits[name]["n"]``
        points) conditioned on all of ``(u, y)``, as the live campaign did: at the fit with its evidence
        (``seed(step, index)``: the evidence seed of the step that fitted it), then point by point, so the
        band (which integrates over the evidence's draws) is the live one. Past the inducing switch:
        conditioned once on all the data (plug-in band; 10^4 rank-1 steps would not pay)."""
        for index, slot in enumerate(self.all_slots()):
            saved = fits.get(slot.hypothesis.name)
            if saved is None or int(saved["n"]) > len(y):
                continue
            k = int(saved["n"])
            slot.fit = Fit.from_json(slot.hypothesis, self._frame(y[:k]), saved, device=self.device)
            slot.last_refit_n = k
            if slot.fit.inducing:
                slot.posterior = self._posterior_of(slot.fit, u, y)
                continue
            sd_k = None if y_sd is None else y_sd[:k]
            slot.posterior, slot.evidence = self._conditioned(slot.fit, u[:k], y[:k], seed(k - 1, index), sd_k)
            for j in range(k, len(y)):
                self.add([slot], u[j], float(y[j]), None if y_sd is None else float(y_sd[j]))

    # ------------------------------------------------------------------ reading

    def fit_states(self, names: Iterable[str]) -> dict[str, dict]:
        """The current fitted state of each named hypothesis, as JSON (for the journal)."""
        wanted = set(names)
        return {
            s.hypothesis.name: s.fit.to_json()
            for s in self.all_slots()
            if s.hypothesis.name in wanted and s.fit is not None
        }

    def band(self, name: str, plug_in: bool = False) -> tuple[Tensor, Tensor] | None:
        """``(mean, var)`` (``N`` each, physical units) of ``name``'s latent function at the points; None
        before its first fit. The band integrates over the physical parameters' posterior (the evidence's
        importance draws) unless ``plug_in`` (parameters at their fit), and past the inducing switch."""
        slot = self.slot(name)
        if slot is None or slot.posterior is None:
            return None
        if plug_in or not isinstance(slot.posterior, CandidatePosterior) or type(slot.evidence) is not EvidenceTracker:
            return slot.posterior.mean, slot.posterior.var
        return slot.evidence.band(slot.posterior)

    def weigh(self) -> Weighed:
        """The fitted laws' evidences, probabilities, parameters and integrated variances (see :class:`Weighed`)."""
        usable = self.usable()
        names = self.names
        evidence = {i: self.slots[i].evidence.evidence() for i in usable}  # type: ignore[union-attr]
        log_z = {names[i]: evidence[i].log_z for i in usable}
        log_z_se = {names[i]: evidence[i].log_z_se for i in usable}
        probs, none = self._probabilities(log_z)
        return Weighed(
            log_z=log_z,
            log_z_se=log_z_se,
            probabilities=probs,
            none=none,
            floor=self._floor(log_z, log_z_se, none),
            parameters={
                names[i]: {p: [evidence[i].mean[p], evidence[i].sd[p]] for p in evidence[i].mean} for i in usable
            },
            integrated_variance={names[i]: self.slots[i].posterior.integrated_variance() for i in usable},  # type: ignore[union-attr]
        )

    def checks(self, u: Tensor, y: Tensor) -> dict[str, dict]:
        """The posterior predictive checks of the fitted laws and of "none of these" on ``(u, y)``
        (:func:`abduce.hypotheses.criticism.criticise`), up to ``check_below`` points."""
        if len(y) > self.settings.check_below:
            return {}
        slots = [self.slots[i] for i in self.usable()]
        if self.none is not None and self.none.posterior is not None:
            slots.append(self.none)
        reference = difference_noise(u, y)
        out = {}
        for slot in slots:
            h = slot.hypothesis
            c = criticise(
                slot.posterior, h.kernel or self.settings.fit.priors, flexible=slot is self.none, reference=reference
            )
            if c is not None:
                out[h.name] = c.to_json()
        return out

    # ------------------------------------------------------------------ internals

    def _frame(self, y: Tensor) -> Frame:
        return Frame(lo=self.lo, span=self.span, s=data_scale(y))

    def _conditioned(self, fit: Fit, u: Tensor, y: Tensor, seed: int, y_sd: Tensor | None = None):
        """The posterior at the points and the evidence tracker of ``fit`` on ``(u, y)`` (and the readings'
        known standard deviations ``y_sd``): exact, or on ``fit.inducing`` inducing points chosen, as the
        fit chose them, from the first ``fit.n`` points."""
        model = fit.model(u, y, y_sd)
        posterior = self._posterior_of(fit, u, y, model)
        if fit.inducing:
            tracker = log_evidence(model, u, y, self.settings.evidence_samples, seed, sparse=posterior)
        else:
            tracker = log_evidence(model, u, y, self.settings.evidence_samples, seed, chol=posterior.chol)
        if self.settings.hyperparameter_evidence:
            tracker.log_occam = log_occam(model, u, y / fit.frame.s)
        return posterior, tracker

    def _posterior_of(self, fit: Fit, u: Tensor, y: Tensor, model=None) -> PosteriorAtPoints:
        model = fit.model(u, y) if model is None else model
        v = y / fit.frame.s
        if fit.inducing:
            return SparseCandidatePosterior(model, u, v, self.points, z=inducing_points(u[: fit.n], fit.inducing))
        return CandidatePosterior(model, u, v, self.points)

    def _prior(self, names: Sequence[str]) -> list[float]:
        """Prior probabilities of the laws ``names`` and, last, of "none of these" (when it is weighed):
        the laws share ``1 - none_prior`` in proportion to their weights (equally, without proposals)."""
        pn = self.settings.none_prior
        weight = dict(zip(self.names, self.weights))
        total = sum(self.weights)
        return [(1.0 - pn) * weight[n] / total for n in names] + [pn]

    def _law_prior(self, names: Sequence[str]) -> list[float] | None:
        """The laws' prior without "none of these": None (uniform) while every weight is equal."""
        return None if len(set(self.weights)) <= 1 else self._prior(names)[:-1]

    def within_set(self, log_z: dict[str, float]) -> dict[str, float]:
        """The laws' probabilities given that one of them holds ("none of these" left out), from their log
        evidences ``log_z``: what the probabilities renormalised over the set are, computed in logs, so that
        laws whose probabilities all underflow to 0 (the set explains the data far worse than "none of these")
        keep their order and their odds."""
        finite = {k: v for k, v in log_z.items() if v is not None and math.isfinite(v)}
        if not finite:
            return {}
        names = list(finite)
        return dict(zip(names, probabilities(list(finite.values()), self._law_prior(names))))

    def _probabilities(self, log_z: dict[str, float]) -> tuple[dict[str, float], dict[str, float] | None]:
        if not log_z:
            return {}, None
        names, values = list(log_z), list(log_z.values())
        if self.none is None or self.none.evidence is None:
            return dict(zip(names, probabilities(values, self._law_prior(names)))), None
        none_ev = self.none.evidence.evidence()
        p = probabilities(values + [none_ev.log_z], self._prior(names))
        return dict(zip(names, p[:-1])), {
            "probability": p[-1],
            "log_evidence": none_ev.log_z,
            "log_evidence_se": none_ev.log_z_se,
        }

    def _floor(self, log_z: dict[str, float], log_z_se: dict[str, float], none: dict[str, float] | None) -> float:
        """The leader's probability were the estimator's noise against it: its log evidence 2 standard
        errors lower, every other's (and none of these') 2 higher. A probability threshold is only
        crossed when this floor crosses it, never by Monte Carlo noise alone."""
        if not log_z:
            return 0.0
        names = list(log_z)
        leader = max(names, key=log_z.__getitem__)
        shifted = [log_z[n] + (-2.0 if n == leader else 2.0) * log_z_se.get(n, 0.0) for n in names]
        if none is None:
            p = probabilities(shifted, self._law_prior(names))
        else:
            p = probabilities(
                shifted + [none["log_evidence"] + 2.0 * none.get("log_evidence_se", 0.0)], self._prior(names)
            )
        return p[names.index(leader)]
