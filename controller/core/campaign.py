"""The campaign: a pure ``ask() -> MeasureRequest`` / ``tell(Measurement)`` object.

No sockets, clocks, files or config reads: the CLI, the daemon, replay and a
notebook all drive this one object. Same seed, same measurements -> same
requests (every random draw is seeded from ``(seed, step, purpose)``).

One step, for the default policies::

    ask():  policy picks the driving hypothesis (or all)
            acquisition scores the space with the current posteriors
            -> MeasureRequest(x)
    tell(): validate (finite, inside the space, right dimension, a request we
            issued and have not been told about) -- else MeasurementRejected,
            campaign unchanged
            refit the policy's hypotheses (warm-started), condition the others
            reward the driver if its integrated variance went down
            evidence of every hypothesis -> posterior probabilities
            stopping rule

When to refit. A full MAP refit costs ``O(n^3)`` per L-BFGS iteration, up to
``maxiter`` iterations; conditioning a frozen model on one more point costs
``O(n N)`` (:mod:`abduce.hypotheses.posterior`). The policy's hypotheses are
refit every step while ``n <= refit_every_step_below``; past that, a
hypothesis is refit only once ``n`` has grown by ``refit_growth`` (10%) since
its last refit, and conditioned otherwise. At ``n = 500`` that is one refit
every ~50 steps, so the median step is a rank-1 update. On steps without a
refit, an epsilon-greedy driver earns no reward (its variance can only go
down under frozen hyperparameters, which would say nothing about the
hypothesis). The schedule depends on ``n`` only, so it is deterministic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.core.space import DTYPE, Space
from abduce.controller.core.verdict import explained
from abduce.controller.decide.acquisition import ACQUISITIONS, Acquisition
from abduce.controller.decide.policies import POLICIES, Policy, PolicyView, SelectionContext
from abduce.controller.decide.stopping import CampaignView, StoppingRule
from abduce.controller.errors import CampaignStateError, ConfigError, MeasurementRejected
from abduce.hypotheses.batched import fit_hypotheses_batched
from abduce.hypotheses.check import check
from abduce.hypotheses.criticism import criticise, difference_noise
from abduce.hypotheses.declaration import Frame, Hypothesis
from abduce.hypotheses.errors import FitError
from abduce.hypotheses.evidence import EvidenceTracker, log_evidence, probabilities
from abduce.hypotheses.fitting import Fit, FitSettings, data_scale, fit_planned, plan_fit
from abduce.hypotheses.library import NONE_OF_THESE
from abduce.hypotheses.occam import log_occam
from abduce.hypotheses.posterior import CandidatePosterior, PosteriorAtPoints
from abduce.hypotheses.sparse import SparseCandidatePosterior, inducing_points

_log = logging.getLogger(__name__)
_NAMESPACE = uuid.UUID("6f6b4a52-3d0e-4f7c-9a55-2b1e8f0c9d11")
_PURPOSES = {"design": 1, "policy": 2, "fit": 3, "evidence": 4, "optimize": 5, "reference": 6}


@dataclass(frozen=True)
class CampaignSettings:
    """Knobs of a campaign (all with defaults that the benchmarks were run with).

    Attributes:
        n_init: space-filling measurements before the first fit.
        fit: fitting effort (screen size, restarts, iteration cap).
        refit_every_step_below: refit the policy's hypotheses every step up to this n.
        refit_growth: past it, refit once n has grown by this fraction since the last refit.
        evidence_samples: importance samples per stage of the evidence estimate.
        reference_size: points the integrated variance (reward, ``nipv``) is averaged over.
        exclude_measured: never ask for a candidate that was already measured.
        restarts, raw_samples: ``optimize_acqf`` effort on a continuous space.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        max_failures: consecutive failed readings (NaN/inf; see ``Campaign.skip``)
            after which the campaign stops with the error instead of asking elsewhere.
        exact_max_n: past this many measurements every hypothesis switches from exact
            inference to ``inducing`` inducing points (:mod:`abduce.hypotheses.sparse`);
            see "Large campaigns" in the README for how it was measured.
        inducing: inducing points per hypothesis past the switch.
        batch_fit_below: up to this n, the refits of one step run in one batched optimiser
            (:mod:`abduce.hypotheses.batched`; equal to one by one within rounding,
            measured faster up to about this n in tests/benchmarks/batched_fit.py).
        none_prior: the prior probability of "none of these" (:data:`~abduce.hypotheses.library.NONE_OF_THESE`,
            a flexible GP with no physics that competes in the evidence; the laws share the rest
            equally); 0 leaves it out.
        exact_memory_gb: cap on the exact path's candidate factors (``n x N`` float64
            per hypothesis, with the row buffer's headroom): with many candidates the
            switch comes earlier, at ``n = exact_memory_gb 2^30 / (8 x 2.2 N K)`` (:meth:`Campaign.exact_limit`).
        check_below: up to this n, every step checks each fitted hypothesis against its data
            (:mod:`abduce.hypotheses.criticism`: leave-one-out residuals, the noise against a
            model-free estimate from neighbouring readings, the residual's amplitude against its prior; ``O(n^3)`` each;
            ``StepRecord.checks``); 0 never checks.
        hyperparameter_evidence: each log evidence includes the Laplace factor that integrates
            the kernel and noise hyperparameters out (:mod:`abduce.hypotheses.occam`, computed
            at every refit on the first 200 points); False holds them at their fit (the
            evidence before this factor, kept for side-by-side measurement).
    """

    n_init: int = 5
    fit: FitSettings = field(default_factory=FitSettings)
    refit_every_step_below: int = 100
    refit_growth: float = 0.1
    evidence_samples: int = 512
    reference_size: int = 1024
    exclude_measured: bool = True
    restarts: int = 4
    raw_samples: int = 128
    device: str = "auto"
    max_failures: int = 3
    exact_max_n: int = 1000
    inducing: int = 512
    batch_fit_below: int = 100
    exact_memory_gb: float = 4.0
    none_prior: float = 0.1
    check_below: int = 400
    hyperparameter_evidence: bool = True

    def __post_init__(self) -> None:
        if self.n_init < 1:
            raise ConfigError(f"n_init must be >= 1, got {self.n_init}")
        if self.refit_growth <= 0:
            raise ConfigError(f"refit_growth must be > 0, got {self.refit_growth}")
        if self.exact_max_n < 1 or self.inducing < 1 or self.exact_memory_gb <= 0:
            raise ConfigError("exact_max_n and inducing must be >= 1 and exact_memory_gb > 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 <= self.none_prior < 1.0:
            raise ConfigError(f"none_prior must be in [0, 1), got {self.none_prior}")
        if self.check_below < 0:
            raise ConfigError(f"check_below must be >= 0, got {self.check_below}")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class StepRecord:
    """What happened at one step (one ``tell``), for logs, journals and people.

    Attributes:
        step, request_id, x, y: the measurement.
        hypothesis, reason: who chose the point and why (see ``MeasureRequest``).
        refit: hypotheses refit after this measurement.
        reward: the driver's reward (epsilon-greedy, on refit steps), else None.
        probabilities, log_evidence, integrated_variance: per hypothesis name.
        parameters: per hypothesis, ``{param: [posterior mean, sd]}`` in physical units.
        fit_failures: per hypothesis whose refit failed, the error message (a hypothesis
            with an earlier good fit keeps it, updated with the new points).
        stopped: whether the stopping rule fired after this step.
        unfitted: hypotheses that have never been fitted (every fit so far failed):
            they have no probability yet, and while any is left no leader is declared.
        none: "none of these" (``{"probability", "log_evidence", "log_evidence_se"}``), None when the
            campaign leaves it out or before its first fit. ``probabilities`` and this sum to 1.
        log_evidence_se: per hypothesis, the Monte Carlo standard error of its log evidence.
        checks: per fitted hypothesis (and "none of these"), its posterior predictive checks
            (:meth:`abduce.hypotheses.criticism.Criticism.to_json`), up to ``CampaignSettings.check_below``
            measurements.
    """

    step: int
    request_id: str
    x: tuple[float, ...]
    y: float
    hypothesis: str | None
    reason: str
    refit: tuple[str, ...]
    reward: float | None
    probabilities: dict[str, float]
    log_evidence: dict[str, float]
    integrated_variance: dict[str, float]
    parameters: dict[str, dict[str, list[float]]]
    fit_failures: dict[str, str]
    stopped: bool
    unfitted: tuple[str, ...] = ()
    none: dict[str, float] | None = None
    log_evidence_se: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict] = field(default_factory=dict)


@dataclass
class _Slot:
    """Mutable per-hypothesis state inside the campaign."""

    hypothesis: Hypothesis
    fit: Fit | None = None
    posterior: PosteriorAtPoints | None = None
    evidence: EvidenceTracker | None = None
    last_refit_n: int = 0
    times_chosen: int = 0
    rewards: list[float] = field(default_factory=list)

    @property
    def mean_reward(self) -> float:
        return sum(self.rewards) / len(self.rewards) if self.rewards else math.nan


_CHECKED: set = set()


def check_once(hypothesis: Hypothesis, space: Space) -> None:
    """:func:`abduce.hypotheses.check` of ``hypothesis`` on ``space``, once per process for each pair.

    Raises:
        HypothesisError: the law or a gradient is not finite somewhere in its range (names where).
    """
    candidates = space.candidates
    if candidates is not None and len(candidates) > 4096:  # an even subset: the grid covers the box between
        candidates = candidates[torch.linspace(0, len(candidates) - 1, 4096).long()]
    digest = None if candidates is None else hashlib.sha256(candidates.cpu().numpy().tobytes()).hexdigest()
    key = (hypothesis, space.lo, space.hi, digest)
    if key in _CHECKED:
        return
    check(hypothesis, lo=space.lo, hi=space.hi, candidates=candidates)
    _CHECKED.add(key)


class Campaign:
    """Hypothesis learning over one space, driven by ask/tell.

    Args:
        space: where to measure.
        hypotheses: the competing hypotheses (at least one; names unique).
        policy: a policy name (``"epsilon-greedy"``, ``"discriminate"``) or instance.
        acquisition: an acquisition name or instance; None = the policy's default.
        stopping: when to stop (e.g. ``Budget(40)``).
        seed: seeds every random choice.
        settings: see :class:`CampaignSettings`.
        name: part of every request id (ids are unique per name, seed and step).

    Example:
        >>> c = Campaign(Space.box([(0, 1)]), [BUILTIN["linear"]], "discriminate", None, Budget(10), seed=0)
        >>> while not c.done:
        ...     r = c.ask()
        ...     c.tell(Measurement(r.request_id, r.x, instrument(r.x)))
    """

    def __init__(
        self,
        space: Space,
        hypotheses: list[Hypothesis],
        policy: str | Policy,
        acquisition: str | Acquisition | None,
        stopping: StoppingRule,
        seed: int,
        settings: CampaignSettings | None = None,
        name: str = "campaign",
    ) -> None:
        if not hypotheses:
            raise ConfigError("a campaign needs at least one hypothesis")
        names = [h.name for h in hypotheses]
        if len(set(names)) != len(names):
            raise ConfigError(f"hypothesis names must be unique, got {names}")
        for h in hypotheses:  # a law that is NaN somewhere in its range would break fits later, silently
            check_once(h, space)
        self.space = space
        self.policy = POLICIES[policy]() if isinstance(policy, str) else policy
        acq = acquisition if acquisition is not None else self.policy.default_acquisition
        self.acquisition = ACQUISITIONS[acq]() if isinstance(acq, str) else acq
        self.stopping = stopping
        self.seed = int(seed)
        self.settings = settings or CampaignSettings()
        self.name = name
        self.device = resolve_device(self.settings.device)
        self._slots = [_Slot(h) for h in hypotheses]
        if NONE_OF_THESE.name in names:
            raise ConfigError(
                f"{NONE_OF_THESE.name!r} is weighed by every campaign (none_prior); it is not a hypothesis to list"
            )
        # "none of these": fitted and weighed like the laws, never chosen by a policy or scored by an acquisition
        self._none = _Slot(NONE_OF_THESE) if self.settings.none_prior > 0 else None
        self._x: list[tuple[float, ...]] = []
        self._y: list[float] = []
        self._measured_idx: list[int] = []
        self._failed_idx: list[int] = []  # candidates whose reading was not a number: never asked again
        self._attempts: dict[int, int] = {}  # step -> failed readings skipped at it
        self.consecutive_failures = 0
        self._told: set[str] = set()
        self._pending: MeasureRequest | None = None
        self._pending_iv: float | None = None
        self._history: list[StepRecord] = []
        self._restore: dict[str, dict] = {}
        self._stopped = False
        self._snapshot = False  # see load_snapshot
        self._points = self._build_points()
        self._reference_idx = self._build_reference()
        self._design = self._initial_design()

    # ----------------------------------------------------------------- public

    @property
    def n(self) -> int:
        """Measurements told so far."""
        return len(self._y)

    @property
    def done(self) -> bool:
        """Whether the stopping rule has fired (or no candidate is left)."""
        return self._stopped

    @property
    def hypothesis_names(self) -> tuple[str, ...]:
        return tuple(s.hypothesis.name for s in self._slots)

    @property
    def history(self) -> tuple[StepRecord, ...]:
        return tuple(self._history)

    @property
    def data(self) -> tuple[list[tuple[float, ...]], list[float]]:
        """Copies of the measured points and values, in order."""
        return list(self._x), list(self._y)

    def probabilities(self) -> dict[str, float]:
        """Posterior probability of each hypothesis (empty before the first fit)."""
        return self._history[-1].probabilities if self._history else {}

    def leader(self) -> str | None:
        """The most probable hypothesis; None before the first fit, or while a hypothesis has never been
        fitted (its evidence is unknown: the probabilities are over the fitted ones only)."""
        if self._history and self._history[-1].unfitted:
            return None
        probs = self.probabilities()
        return max(probs, key=probs.__getitem__) if probs else None

    def fit_failures(self) -> dict[str, int]:
        """How many refits of each hypothesis failed so far (0 for those that never failed); "none of
        these" too, once it has been weighed."""
        counts = dict.fromkeys(self.hypothesis_names, 0)
        if self._history and (
            self._history[-1].none is not None or any(NONE_OF_THESE.name in r.fit_failures for r in self._history)
        ):
            counts[NONE_OF_THESE.name] = 0  # once it has been weighed (or tried)
        for record in self._history:
            for name in record.fit_failures:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def summary(self) -> dict:
        """``{"leader", "measurements", "hypotheses": [{"name", "probability", "times_chosen", "parameters",
        "check"}], "unfitted", "fit_failures", "none", "explained"}``
        (:func:`~abduce.controller.core.verdict.explained`)."""
        last = self._history[-1] if self._history else None
        hyps = []
        for s in self._slots:
            name = s.hypothesis.name
            params = last.parameters.get(name, {}) if last else {}
            hyps.append(
                {
                    "name": name,
                    "probability": last.probabilities.get(name, 0.0) if last else 0.0,
                    "log_evidence": last.log_evidence.get(name) if last else None,
                    "log_evidence_se": last.log_evidence_se.get(name) if last else None,
                    "times_chosen": s.times_chosen,
                    "mean_reward": None if math.isnan(s.mean_reward) else s.mean_reward,
                    "parameters": {p: {"mean": v[0], "sd": v[1]} for p, v in params.items()},
                    "check": last.checks.get(name) if last else None,
                }
            )
        none = dict(last.none, check=last.checks.get(NONE_OF_THESE.name)) if last and last.none else None
        return {
            "leader": self.leader(),
            "measurements": self.n,
            "hypotheses": hyps,
            "unfitted": list(last.unfitted) if last else [],
            "fit_failures": self.fit_failures(),
            "none": none,
            "explained": explained(hyps, none),
        }

    def points(self) -> np.ndarray:
        """``N x d`` physical coordinates of the points the posteriors are kept at: the
        candidates of a finite space, the Sobol reference points of a box."""
        return self.space.from_unit(self._points).detach().cpu().numpy()

    def posterior_mean(self, hypothesis: str | None = None) -> np.ndarray | None:
        """``N`` posterior means (physical units) of ``hypothesis`` (default: the leader) at
        :meth:`points`; None before it has been fitted."""
        name = hypothesis or self.leader()
        post = self.posterior(name) if name is not None else None
        return None if post is None else post[0]

    def ask(self) -> MeasureRequest:
        """The next point to measure. Asking again before ``tell`` returns the same request.

        Raises:
            CampaignStateError: the campaign has stopped.
        """
        self._check_live()
        if self._pending is not None:
            return self._pending
        if self._stopped:
            raise CampaignStateError("the campaign has stopped; nothing more to ask")
        step = self.n
        attempt = self._attempts.get(step, 0)
        if step < len(self._design):
            x, driver, reason = self._design[step], None, "initial-design"
            if attempt and self.space.is_finite:  # that design point failed: its nearest free neighbour
                x, reason = self._nearest_free(x), "initial-design-retry"
        else:
            driver, reason = self.policy.choose(self._policy_view(), self._rng("policy", step))
            x = self._acquire(driver, step)
            posterior = self._slots[driver].posterior if driver is not None else None
            if posterior is not None:  # a driver never fitted (its fits failed) earns no reward this turn
                self._pending_iv = posterior.integrated_variance()
        if driver is not None:
            self._slots[driver].times_chosen += 1
        self._pending = MeasureRequest(
            request_id=self.request_id(step, attempt),
            step=step,
            x=tuple(float(v) for v in x),
            hypothesis=self._slots[driver].hypothesis.name if driver is not None else None,
            reason=reason,
        )
        return self._pending

    def request_id(self, step: int, attempt: int = 0) -> str:
        """The id of the request for ``step`` (``attempt``: readings skipped at that step before it);
        unique per campaign name, seed, step and attempt."""
        key = f"{self.name}/{self.seed}/{step}" + (f"/retry{attempt}" if attempt else "")
        return str(uuid.uuid5(_NAMESPACE, key))

    def skip(self, request_id: str) -> None:
        """Give up on the pending request (its reading was NaN/inf): the point is never asked
        for again (finite spaces), and the next ``ask`` chooses anew under a fresh request id.

        Raises:
            CampaignStateError: ``request_id`` is not the pending request.
        """
        if self._pending is None or self._pending.request_id != request_id:
            raise CampaignStateError(f"request {request_id} is not the pending request; nothing to skip")
        if self.space.is_finite:
            idx = self.space.index_of(self._pending.x)
            if idx is not None:
                self._failed_idx.append(idx)
        self._attempts[self.n] = self._attempts.get(self.n, 0) + 1
        self.consecutive_failures += 1
        self._pending, self._pending_iv = None, None

    def tell(self, measurement: Measurement, restore: dict[str, dict] | None = None) -> StepRecord:
        """Add a measurement and update every hypothesis.

        ``restore`` (replay from a journal): fitted states by hypothesis name, as
        :meth:`fit_states` gave them when this step ran live; a hypothesis due
        for a refit takes its state from there instead of optimising again, so
        the campaign comes out identical and a resume costs no fits.

        Raises:
            MeasurementRejected: NaN/inf, a point outside the space or off the
                candidate set, the wrong dimension, a request id never issued
                or already told. The campaign is left unchanged.
        """
        self._check_live()
        request = self._validate(measurement)
        idx = self.space.index_of(measurement.x) if self.space.is_finite else None
        self._x.append(tuple(float(v) for v in measurement.x))
        self._y.append(float(measurement.y))
        if idx is not None:
            self._measured_idx.append(idx)
        self._told.add(request.request_id)
        self._pending = None
        self.consecutive_failures = 0
        self._restore = restore or {}
        try:
            record = self._update(request, measurement)
        finally:
            self._restore = {}
        self._history.append(record)
        return record

    # --------------------------------------------------------------- internals

    def _check_live(self) -> None:
        if self._snapshot:
            raise CampaignStateError(
                "this campaign is a snapshot for inspection; "
                "rebuild it (abduce.controller.journal.rebuild.rebuild) to go on"
            )

    def _rng(self, purpose: str, step: int, index: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, step, _PURPOSES[purpose], index])

    def _int_seed(self, purpose: str, step: int, index: int = 0) -> int:
        return int(self._rng(purpose, step, index).integers(2**31 - 1))

    def _tensor(self, values) -> Tensor:
        return torch.as_tensor(values, dtype=DTYPE, device=self.device)

    def _build_points(self) -> Tensor:
        """Relative coordinates of the candidates, or of Sobol reference points for a box."""
        if self.space.is_finite:
            return self.space.to_unit(self.space.candidates.to(self.device))  # type: ignore[union-attr]
        sobol = torch.quasirandom.SobolEngine(self.space.d, scramble=True, seed=self._int_seed("reference", 0))
        return sobol.draw(self.settings.reference_size, dtype=DTYPE).to(self.device)

    def _build_reference(self) -> Tensor:
        n = len(self._points)
        if n <= self.settings.reference_size:
            return torch.arange(n, device=self.device)
        gen = torch.Generator().manual_seed(self._int_seed("reference", 1))
        return torch.randperm(n, generator=gen)[: self.settings.reference_size].sort().values.to(self.device)

    def _initial_design(self) -> list[tuple[float, ...]]:
        """``n_init`` space-filling points: scrambled Sobol, snapped to distinct candidates on a finite set."""
        sobol = torch.quasirandom.SobolEngine(self.space.d, scramble=True, seed=self._int_seed("design", 0))
        u = sobol.draw(self.settings.n_init, dtype=DTYPE)
        if not self.space.is_finite:
            return [tuple(self.space.from_unit(row).tolist()) for row in u]
        points = self._points.cpu()
        chosen: list[int] = []
        for row in u:
            dist = ((points - row) ** 2).sum(-1)
            if chosen:
                dist[chosen] = math.inf
            chosen.append(int(torch.argmin(dist)))
        return [tuple(self.space.candidates[i].tolist()) for i in chosen]  # type: ignore[index]

    def _nearest_free(self, x: tuple[float, ...]) -> tuple[float, ...]:
        """The candidate nearest ``x`` that was neither measured nor failed."""
        target = self.space.to_unit(self._tensor([x]))[0]
        dist = ((self._points - target) ** 2).sum(-1)
        taken = self._measured_idx + self._failed_idx
        if taken:
            dist[taken] = math.inf
        return tuple(self.space.candidates[int(torch.argmin(dist))].tolist())  # type: ignore[index]

    def _policy_view(self) -> PolicyView:
        probs = self.probabilities()
        return PolicyView(
            probabilities=tuple(probs.get(s.hypothesis.name, 0.0) for s in self._slots),
            times_chosen=tuple(s.times_chosen for s in self._slots),
            mean_reward=tuple(s.mean_reward for s in self._slots),
        )

    def _weights(self) -> Tensor:
        """The laws' probabilities renormalised over the set (what an acquisition weighs them by)."""
        probs = self.probabilities()
        w = self._tensor([probs.get(s.hypothesis.name, 0.0) for s in self._slots])
        return w / w.sum() if float(w.sum()) > 0 else w

    def _usable(self) -> list[int]:
        return [i for i, s in enumerate(self._slots) if s.fit is not None]

    def _scores(self, driver: int | None) -> tuple[Tensor | None, object]:
        """The acquisition for ``driver`` (None or unfitted: the leader): on a finite space its
        ``N`` scores, -inf where ``ask`` never goes (measured, failed); on a box the BoTorch
        acquisition function to optimise (scores None)."""
        usable = self._usable()
        if not usable:
            raise CampaignStateError("no hypothesis could be fitted; see the step records' fit_failures")
        weights = self._weights()
        if driver is None or driver not in usable:
            driver = max(usable, key=lambda i: float(weights[i]))
        if self.space.is_finite:
            posteriors = [self._slots[i].posterior for i in usable]  # score only the hypotheses that have a fit
            scores = self.acquisition.score(posteriors, usable.index(driver), weights[usable], self._reference_idx)  # type: ignore[arg-type]
            scores = torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -math.inf))
            if self.settings.exclude_measured and self._measured_idx:
                scores[torch.tensor(self._measured_idx, device=scores.device)] = -math.inf
            if self._failed_idx:
                scores[torch.tensor(self._failed_idx, device=scores.device)] = -math.inf
            return scores, None
        u, y = self._data_tensors()
        models = [self._slots[i].fit.model(u, y) for i in usable]  # type: ignore[union-attr]
        return None, self.acquisition.botorch(models, usable.index(driver), weights[usable], self._points)

    def acquisition_scores(self) -> tuple[np.ndarray, str | None]:
        """What the next ``ask`` would score, without asking: ``N`` values at :meth:`points`
        (NaN where it never goes) and the driving hypothesis (None: all of them).

        Raises:
            CampaignStateError: a baseline policy (it picks points without an
                acquisition), or no hypothesis fitted yet.
        """
        if type(self.policy).select is not Policy.select:
            raise CampaignStateError(f"policy {self.policy.name!r} chooses points without an acquisition")
        if self.n < len(self._design):
            raise CampaignStateError("no acquisition during the initial design")
        driver, _ = self.policy.choose(self._policy_view(), self._rng("policy", self.n))  # the same seeded choice
        with torch.no_grad():
            scores, acq = self._scores(driver)
            if scores is None:
                scores = acq(self._points.unsqueeze(1))  # type: ignore[operator]
        out = scores.detach().cpu().numpy().astype(float)
        out[~np.isfinite(out)] = np.nan
        return out, self.hypothesis_names[driver] if driver is not None else None

    def posterior(self, hypothesis: str, plug_in: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, sd)`` of the latent function under ``hypothesis`` at :meth:`points` (physical units);
        None before its first fit. "none of these" answers too.

        The band integrates over the physical parameters' posterior (the evidence's importance draws:
        :meth:`abduce.hypotheses.evidence.EvidenceTracker.band`), so the uncertainty of ``x_c`` reaches
        it; the kernel hyperparameters stay at their fit. ``plug_in``: the parameters at their fitted
        values instead (what the acquisitions score with, and the only band past the inducing switch).
        """
        slot = next((s for s in self._all_slots() if s.hypothesis.name == hypothesis), None)
        if slot is None or slot.posterior is None:
            return None
        if plug_in or not isinstance(slot.posterior, CandidatePosterior) or type(slot.evidence) is not EvidenceTracker:
            mean, var = slot.posterior.mean, slot.posterior.var
        else:
            mean, var = slot.evidence.band(slot.posterior)
        return mean.detach().cpu().numpy(), var.clamp_min(0).sqrt().detach().cpu().numpy()

    def load_snapshot(
        self,
        measurements: list[tuple[str, tuple[float, ...], float]],
        failed: list[tuple[float, ...]],
        asked_by: list[str | None],
        records: list[StepRecord],
        fits: dict[str, dict],
    ) -> None:
        """For looking at only (plots, exports): the state after ``measurements`` without replaying a step.

        Takes the data, the points whose readings failed, the hypothesis behind every
        request asked (told or skipped), the step records and each hypothesis's latest
        fitted state, all as journalled, and conditions each fit on all the data at once
        -- equal to the live run's rank-1 updates within rounding, at the cost of one
        conditioning instead of n steps. The evidence is not rebuilt: probabilities are
        the journalled ones. Afterwards ``posterior``, ``acquisition_scores``, ``summary``
        and ``probabilities`` answer; ``ask`` and ``tell`` refuse.

        Raises:
            CampaignStateError: the campaign has already been told something.
        """
        if self.n or self._history:
            raise CampaignStateError("a snapshot loads into a fresh campaign only")
        for rid, x, y in measurements:
            self._x.append(tuple(float(v) for v in x))
            self._y.append(float(y))
            self._told.add(rid)
        if self.space.is_finite:
            self._measured_idx = [i for i in self.space.indices_of(self._x) if i is not None]
            self._failed_idx = [i for i in self.space.indices_of(failed) if i is not None]
        names = self.hypothesis_names
        for name in asked_by:
            if name in names:
                self._slots[names.index(name)].times_chosen += 1
        for rec in records:
            rec = dataclasses.replace(
                rec,
                x=tuple(rec.x),
                refit=tuple(rec.refit),
                unfitted=tuple(rec.unfitted),
                log_evidence_se=dict(rec.log_evidence_se),
            )
            if rec.none is not None:
                rec = dataclasses.replace(rec, none=dict(rec.none))
            self._history.append(rec)
            if rec.reward is not None and rec.hypothesis in names:
                self._slots[names.index(rec.hypothesis)].rewards.append(rec.reward)
        u, y = self._data_tensors()
        for index, slot in enumerate(self._all_slots()):
            saved = fits.get(slot.hypothesis.name)
            if saved is None or int(saved["n"]) > len(y):
                continue
            k = int(saved["n"])
            frame = Frame(lo=self.space.lo, span=self.space.span, s=data_scale(y[:k]))
            slot.fit = Fit.from_json(slot.hypothesis, frame, saved, device=self.device)
            slot.last_refit_n = k
            if slot.fit.inducing:  # conditioned once on all the data (plug-in band): 10^4 rank-1 steps would not pay
                slot.posterior = self._posterior_of(slot.fit, u, y)
                continue
            # as the live campaign did: conditioned at the fit, with its evidence, then point by point,
            # so the band (which integrates over the evidence's draws) is the live one
            slot.posterior, slot.evidence = self._conditioned(
                slot.fit, u[:k], y[:k], self._int_seed("evidence", k - 1, index)
            )
            for j in range(k, len(y)):
                v_new = float(y[j]) / slot.fit.frame.s
                slot.evidence.add(slot.posterior.add(u[j], v_new), u[j], v_new)
        self._stopped = bool(records and records[-1].stopped)
        self._snapshot = True

    def _acquire(self, driver: int | None, step: int) -> tuple[float, ...]:
        if type(self.policy).select is not Policy.select:  # a baseline picks the point itself
            u, y = self._data_tensors()
            chosen = self.policy.select(
                SelectionContext(
                    points=self._points,
                    finite=self.space.is_finite,
                    measured=(tuple(self._measured_idx) if self.settings.exclude_measured else ())
                    + tuple(self._failed_idx),
                    u=u,
                    y=y,
                    step=step,
                    rng=self._rng("policy", step, 1 + self._attempts.get(step, 0)),
                )
            )
            if isinstance(chosen, int):
                return tuple(self.space.candidates[chosen].tolist())  # type: ignore[index]
            if chosen is not None:
                return tuple(self.space.from_unit(chosen.to(self._points)).tolist())
        scores, acq = self._scores(driver)
        if scores is not None:
            best = int(torch.argmax(scores))
            if not math.isfinite(float(scores[best])):
                raise CampaignStateError("no candidate left to measure")
            return tuple(self.space.candidates[best].tolist())  # type: ignore[index]
        from botorch.optim import optimize_acqf  # continuous spaces only; a heavy import (~2 s)

        bounds = torch.stack([torch.zeros(self.space.d), torch.ones(self.space.d)]).to(DTYPE).to(self.device)
        with torch.random.fork_rng():
            torch.manual_seed(self._int_seed("optimize", step, self._attempts.get(step, 0)))
            cand, _ = optimize_acqf(
                acq, bounds=bounds, q=1, num_restarts=self.settings.restarts, raw_samples=self.settings.raw_samples
            )
        return tuple(
            self.space.from_unit(cand[0].detach())
            .clamp(
                torch.tensor(self.space.lo, dtype=DTYPE, device=self.device),
                torch.tensor(self.space.hi, dtype=DTYPE, device=self.device),
            )
            .tolist()
        )

    def _validate(self, m: Measurement) -> MeasureRequest:
        rid = m.request_id
        if rid in self._told:
            raise MeasurementRejected(rid, "duplicate", "this request was already told")
        if self._pending is None or self._pending.request_id != rid:
            raise MeasurementRejected(rid, "unknown-request", "no outstanding request has this id")
        x = tuple(m.x)
        if len(x) != self.space.d:
            raise MeasurementRejected(
                rid, "wrong-dimension", f"point has {len(x)} coordinates, the space has {self.space.d}"
            )
        try:
            values = [float(v) for v in (*x, m.y)]
        except (TypeError, ValueError) as exc:
            raise MeasurementRejected(rid, "non-numeric", str(exc)) from None
        if not all(math.isfinite(v) for v in values):
            raise MeasurementRejected(rid, "non-finite", f"x={x}, y={m.y} contains NaN or inf")
        if not self.space.contains(x):
            raise MeasurementRejected(
                rid, "outside-space", f"x={x} is outside {list(zip(self.space.lo, self.space.hi))}"
            )
        if self.space.is_finite and self.space.index_of(x) is None:
            raise MeasurementRejected(rid, "outside-space", f"x={x} is not one of the candidates")
        return self._pending

    def _data_tensors(self) -> tuple[Tensor, Tensor]:
        x = self._tensor(self._x)
        return self.space.to_unit(x), self._tensor(self._y)

    @property
    def exact_limit(self) -> int:
        """Most measurements for exact inference: ``exact_max_n``, or fewer where the exact
        factors (``n x N`` float64 for each of the K hypotheses, x 2.2 for the row buffer's
        doubling and the growth between refits) would pass ``exact_memory_gb``."""
        per_row = 8 * 2.2 * len(self._points) * len(self._slots)
        return max(1, min(self.settings.exact_max_n, int(self.settings.exact_memory_gb * 2**30 / per_row)))

    def _due_for_refit(self, slot: _Slot, targeted: bool) -> bool:
        """Targeted (by the policy): every step up to ``refit_every_step_below``, then on growth.
        Not targeted: on growth only, so that every hypothesis's evidence rests on
        hyperparameters fitted to at least ``1 / (1 + refit_growth)`` of the data.
        Past :attr:`exact_limit`, every hypothesis still on exact inference is due at
        once, so that all K switch to inducing points together (their evidences stay
        comparable: the SGPR bound lies below the exact marginal likelihood)."""
        n = self.n
        if slot.fit is None or (targeted and n <= self.settings.refit_every_step_below):
            return True
        if slot.fit.inducing == 0 and n > self.exact_limit:
            return True
        return n >= (1 + self.settings.refit_growth) * slot.last_refit_n

    def fit_states(self, names: Iterable[str]) -> dict[str, dict]:
        """The current fitted state of each named hypothesis, as JSON (for the journal; see ``tell``)."""
        return {
            s.hypothesis.name: s.fit.to_json()
            for s in self._all_slots()
            if s.hypothesis.name in set(names) and s.fit is not None
        }

    def _all_slots(self) -> list[_Slot]:
        """The hypotheses' slots and, last, that of "none of these" (when the campaign weighs it)."""
        return self._slots + ([self._none] if self._none is not None else [])

    def _refit(self, due: list[_Slot], u: Tensor, y: Tensor, step: int) -> dict[str, str]:
        """Refit the slots ``due`` (restoring journalled states where given); returns the
        error of each whose fit failed (its previous fit, if any, stays in use).

        While ``n <= batch_fit_below`` (exact inference) every start of every fit due runs in one
        batched optimiser (:mod:`abduce.hypotheses.batched`; a single hypothesis's starts too);
        otherwise one by one."""
        n = len(y)
        inducing = self.settings.inducing if n > self.exact_limit else 0
        index = {id(slot): i for i, slot in enumerate(self._all_slots())}  # seeds: "none of these" is K
        fits: dict[int, Fit | FitError] = {}
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
            saved = self._restore.get(slot.hypothesis.name)
            if saved is not None and int(saved["n"]) == n:
                frame = Frame(lo=self.space.lo, span=self.space.span, s=data_scale(y))
                fits[id(slot)] = Fit.from_json(slot.hypothesis, frame, saved, device=self.device)
            else:
                to_fit.append(slot)
        plans = [
            plan_fit(
                slot.hypothesis,
                u,
                y,
                self.space.lo,
                self.space.span,
                slot.fit,
                self.settings.fit,
                self._int_seed("fit", step, index[id(slot)]),
                inducing=inducing,
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
            if isinstance(fit, FitError):
                failures[slot.hypothesis.name] = str(fit)
                continue
            slot.fit, slot.last_refit_n = fit, n
            slot.posterior, slot.evidence = self._conditioned(
                fit, u, y, self._int_seed("evidence", step, index[id(slot)])
            )
        return failures

    def _conditioned(self, fit: Fit, u: Tensor, y: Tensor, seed: int):
        """The posterior at the campaign's points and the evidence tracker of ``fit`` on ``(u, y)``:
        exact, or on ``fit.inducing`` inducing points chosen, as the fit chose them, from the
        first ``fit.n`` points."""
        model = fit.model(u, y)
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
            return SparseCandidatePosterior(model, u, v, self._points, z=inducing_points(u[: fit.n], fit.inducing))
        return CandidatePosterior(model, u, v, self._points)

    def _update(self, request: MeasureRequest, m: Measurement) -> StepRecord:
        step = request.step
        u, y = self._data_tensors()
        names = self.hypothesis_names
        driver = names.index(request.hypothesis) if request.hypothesis is not None else None
        refit: list[str] = []
        failures: dict[str, str] = {}
        reward = None
        if self.n >= self.settings.n_init:
            first = self.n == self.settings.n_init or not self._usable()
            targets = range(len(self._slots)) if first else self.policy.refit(driver, len(self._slots))
            due = [slot for i, slot in enumerate(self._slots) if self._due_for_refit(slot, i in targets)]
            if self._none is not None and self._due_for_refit(self._none, True):  # as if every policy targeted it
                due.append(self._none)
            failures = self._refit(due, u, y, step)
            for slot in self._all_slots():
                if slot in due and slot.hypothesis.name not in failures:
                    refit.append(slot.hypothesis.name)
                    continue
                if slot.posterior is not None:
                    v_new = float(y[-1]) / slot.fit.frame.s  # type: ignore[union-attr]
                    row = slot.posterior.add(u[-1], v_new)
                    slot.evidence.add(row, u[-1], v_new)  # type: ignore[union-attr]
            if self.policy.rewarded and driver is not None and names[driver] in refit and self._pending_iv is not None:
                iv_after = self._slots[driver].posterior.integrated_variance()  # type: ignore[union-attr]
                reward = 1.0 if iv_after < self._pending_iv else 0.0
                self._slots[driver].rewards.append(reward)
        self._pending_iv = None

        usable = self._usable()
        evidence = {i: self._slots[i].evidence.evidence() for i in usable}  # type: ignore[union-attr]
        log_z = {names[i]: evidence[i].log_z for i in usable}
        log_z_se = {names[i]: evidence[i].log_z_se for i in usable}
        probs, none = self._probabilities(log_z, log_z_se)
        floor = self._probability_floor(log_z, log_z_se, none)
        ivs = {names[i]: self._slots[i].posterior.integrated_variance() for i in usable}  # type: ignore[union-attr]
        params = {names[i]: {p: [evidence[i].mean[p], evidence[i].sd[p]] for p in evidence[i].mean} for i in usable}
        leader = max(probs, key=probs.__getitem__) if probs else None
        unfitted = (
            tuple(names[i] for i, slot in enumerate(self._slots) if slot.fit is None)
            if self.n >= self.settings.n_init
            else ()
        )
        view = CampaignView(
            n=self.n,
            probabilities=tuple(probs.values()),
            integrated_variance=ivs[leader] if leader else math.inf,
            unfitted=len(unfitted),
            none_probability=none["probability"] if none else 0.0,
            probability_floor=floor,
        )
        if self.stopping(view):
            self._stopped = True
        elif (
            self.space.is_finite
            and self.settings.exclude_measured
            and len(set(self._measured_idx)) >= len(self._points)
        ):
            self._stopped = True
        return StepRecord(
            step=step,
            request_id=request.request_id,
            x=tuple(float(v) for v in m.x),
            y=float(m.y),
            hypothesis=request.hypothesis,
            reason=request.reason,
            refit=tuple(refit),
            reward=reward,
            probabilities=probs,
            log_evidence=log_z,
            integrated_variance=ivs,
            parameters=params,
            fit_failures=failures,
            stopped=self._stopped,
            unfitted=unfitted,
            none=none,
            log_evidence_se=log_z_se,
            checks=self._checks(usable, u, y),
        )

    def _checks(self, usable: list[int], u: Tensor, y: Tensor) -> dict[str, dict]:
        """The posterior predictive checks of the fitted laws and of "none of these" (StepRecord.checks)
        on the step's data (``u``: ``n x d`` unit coordinates, ``y``: ``n``)."""
        if self.n > self.settings.check_below:
            return {}
        slots = [self._slots[i] for i in usable]
        if self._none is not None and self._none.posterior is not None:
            slots.append(self._none)
        reference = difference_noise(u, y)
        out = {}
        for slot in slots:
            h = slot.hypothesis
            c = criticise(
                slot.posterior, h.kernel or self.settings.fit.priors, flexible=slot is self._none, reference=reference
            )
            if c is not None:
                out[h.name] = c.to_json()
        return out

    def _prior(self, k: int) -> list[float]:
        """Prior probabilities of ``k`` laws and, last, of "none of these" (when it is weighed)."""
        pn = self.settings.none_prior
        return [(1.0 - pn) / len(self._slots)] * k + [pn]

    def _probabilities(
        self, log_z: dict[str, float], log_z_se: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, float] | None]:
        """The laws' posterior probabilities and that of "none of these" (``{"probability",
        "log_evidence", "log_evidence_se"}``, None when left out or not fitted yet), under the prior
        ``none_prior`` for it and an equal share of the rest for each law."""
        if not log_z:
            return {}, None
        names, values = list(log_z), list(log_z.values())
        none_slot = self._none if self._none is not None and self._none.evidence is not None else None
        if none_slot is None:
            return dict(zip(names, probabilities(values))), None
        none_ev = none_slot.evidence.evidence()
        p = probabilities(values + [none_ev.log_z], self._prior(len(values)))
        return dict(zip(names, p[:-1])), {
            "probability": p[-1],
            "log_evidence": none_ev.log_z,
            "log_evidence_se": none_ev.log_z_se,
        }

    def _probability_floor(
        self, log_z: dict[str, float], log_z_se: dict[str, float], none: dict[str, float] | None
    ) -> float:
        """The leader's probability were the estimator's noise against it: its log evidence 2 standard
        errors lower, every other's (and none of these') 2 higher. A probability threshold is only
        crossed when this floor crosses it, never by Monte Carlo noise alone."""
        if not log_z:
            return 0.0
        names = list(log_z)
        leader = max(names, key=log_z.__getitem__)
        shifted = [log_z[n] + (-2.0 if n == leader else 2.0) * log_z_se.get(n, 0.0) for n in names]
        if none is None:
            p = probabilities(shifted)
        else:
            p = probabilities(
                shifted + [none["log_evidence"] + 2.0 * none.get("log_evidence_se", 0.0)], self._prior(len(names))
            )
        return p[names.index(leader)]
