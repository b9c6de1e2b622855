"""The campaign: a pure ``ask() -> MeasureRequest`` / ``tell(Measurement)`` object.

No sockets, clocks, files or config reads: the CLI, the daemon, replay and a
notebook all drive this one object. Same seed, same measurements -> same
requests (every random draw is seeded from ``(seed, step, purpose)``).

One step, for the default policies::

    ask():  policy picks the driving hypothesis (or all)
            acquisition scores the space with the current posteriors
            -> MeasureRequest(x), the chosen point's acquisition value kept for its StepRecord.score
    tell(): validate (core.validation: finite, inside the space, right dimension, a request
            we issued and have not been told about) -- else MeasurementRejected, unchanged
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

Batches. ``ask(q=4)`` returns one request of up to four points (the first as ``q = 1`` would choose it,
the others by the kriging believer, :mod:`abduce.controller.core.batch`), answered by one
``Measurement`` per point (``index``). Each told point is one step; until the last is in, the points
condition every hypothesis rank-1 and the schedule's refits wait for the batch to be complete.
"""

from __future__ import annotations

import math

import torch

from abduce.controller.core import design
from abduce.controller.core.batch import Believed, believe
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.core.settings import CampaignSettings, StepRecord
from abduce.controller.core.space import DTYPE
from abduce.controller.core.state import CampaignState
from abduce.controller.core.validation import validated
from abduce.controller.core.verdict import leader
from abduce.controller.decide.policies import Policy, SelectionContext
from abduce.controller.decide.stopping import CampaignView
from abduce.controller.errors import CampaignStateError, ConfigError
from abduce.hypotheses.belief import Slot

__all__ = ["Campaign", "CampaignSettings", "StepRecord"]


class Campaign(CampaignState):
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
        device: where the maths runs (default the CPU); chosen by the edge that builds the
            campaign (:func:`abduce.controller.recipe.recipe.resolve_device`), never probed here.
        weights: each hypothesis's prior weight (default 1 each: a uniform prior over the laws); a
            transfer from a past campaign sets them (:class:`~abduce.controller.recipe.transfer.Transfer`).

    Example:
        >>> c = Campaign(Space.box([(0, 1)]), [BUILTIN["linear"]], "discriminate", None, Budget(10), seed=0)
        >>> while not c.done:
        ...     r = c.ask()
        ...     c.tell(Measurement(r.request_id, r.x, instrument(r.x)))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.consecutive_failures = 0
        self._pending: MeasureRequest | None = None
        self._open: list[int] = []  # points of the pending request not yet told or skipped
        self._pending_iv: float | None = None
        self._restore: dict[str, dict] = {}
        self._replay: tuple[dict, ...] | None = None  # the step's journalled proposals (a replay), or None
        self._design_left = list(range(len(self._design)))  # design points not yet measured, in order
        self._design_failed: set[int] = set()  # design points whose reading failed (asked again nearby)
        self._asked_design: list[int] = []  # the pending request's design points, by point
        self._asked_scores: list[float | None] = []  # the acquisition's value at each point asked (None: design)
        self._accepted: list[dict] = []  # proposals an operator accepted since the last step (recorded with it)

    # ----------------------------------------------------------------- ask/tell

    @property
    def pending(self) -> MeasureRequest | None:
        """The request asked and not yet told or skipped (what an operator's abort names), else None."""
        return self._pending

    @property
    def waiting(self) -> tuple[int, ...]:
        """The points (indices) of the pending request not yet told or skipped; () when none is pending."""
        return tuple(self._open) if self._pending is not None else ()

    def ask(self, q: int | None = None) -> MeasureRequest:
        """The next point(s) to measure: a request of up to ``q`` points (default ``settings.q``; fewer where
        the budget, the initial design or the candidates left end sooner). Asking again before every point
        is told or skipped returns the same request.

        The first point is the one ``q = 1`` would ask for; the others are chosen greedily with
        fantasised readings (:mod:`abduce.controller.core.batch`). During the initial design a request
        holds the next ``q`` design points.

        Raises:
            ConfigError: ``q < 1``.
            CampaignStateError: the campaign has stopped.
        """
        if self._pending is not None:
            return self._pending
        q = self.settings.q if q is None else q
        if q < 1:
            raise ConfigError(f"q must be >= 1, got {q}")
        if self._stopped:
            raise CampaignStateError("the campaign has stopped; nothing more to ask")
        remaining = self.stopping.remaining(self.n)
        q = max(1, min(q, remaining)) if remaining is not None else q
        step = self.n
        attempt = self._attempts.get(step, 0)
        if self._design_left:
            xs, driver, reason = self._design_points(q)
            self._asked_scores = [None] * len(xs)
        else:
            driver, reason = self.policy.choose(self._policy_view(), self._rng("policy", step))
            xs, self._asked_scores = self._acquire_batch(driver, step, q)
            posterior = self.belief.slots[driver].posterior if driver is not None else None
            if posterior is not None:  # a driver never fitted (its fits failed) earns no reward this turn
                self._pending_iv = posterior.integrated_variance()
        if driver is not None:
            self._times_chosen[driver] += 1
        points = tuple(tuple(float(v) for v in x) for x in xs)
        self._pending = MeasureRequest(
            request_id=self.request_id(step, attempt),
            step=step,
            x=points[0],
            hypothesis=self.hypothesis_names[driver] if driver is not None else None,
            reason=reason,
            points=points,
            axes=self.space.names,
        )
        self._open = list(range(len(points)))
        return self._pending

    def accept(self, name: str) -> dict:
        """Add the suggested composed law ``name`` (``propose = "suggest"``) as a contender; it is fitted at
        the next measurement and recorded with that step. Returns the proposal as recorded.

        Raises:
            ConfigError: nothing of that name is waiting (the suggestions are named).
        """
        accepted = self.abduction.accept(self, name)
        self._accepted.append(accepted)
        return accepted

    def skip(self, request_id: str, index: int | None = None) -> None:
        """Give up on point ``index`` of the pending request (None: every point not yet told), e.g. its
        reading was NaN/inf: the point is never asked for again (finite spaces), and once no point of the
        request is left open the next ``ask`` chooses anew under a fresh request id.

        Raises:
            CampaignStateError: ``request_id`` is not the pending request, or ``index`` is not open in it.
        """
        if self._pending is None or self._pending.request_id != request_id:
            raise CampaignStateError(f"request {request_id} is not the pending request; nothing to skip")
        indices = list(self._open) if index is None else [index]
        if any(i not in self._open for i in indices):
            raise CampaignStateError(f"point {index} of request {request_id} is not waiting for a reading")
        for i in indices:
            if self.space.is_finite:
                idx = self.space.index_of(self._pending.points[i])
                if idx is not None:
                    self._failed_idx.append(idx)
            if self._asked_design:
                self._design_failed.add(self._asked_design[i])
            self._attempts[self.n] = self._attempts.get(self.n, 0) + 1
            self.consecutive_failures += 1
            self._open.remove(i)
        if not self._open:
            self._pending, self._pending_iv = None, None

    def tell(
        self,
        measurement: Measurement,
        restore: dict[str, dict] | None = None,
        proposals: tuple[dict, ...] | None = None,
    ) -> StepRecord:
        """Add a measurement (one point of the pending request: ``measurement.index``) and update every
        hypothesis. The point may be named (``{"x": 0.31}``; exactly the space's axes).

        Until the last point of a batch is in, each is conditioned on with the hyperparameters frozen
        (rank-1, evidence included); the refits the schedule calls for run when the request is complete.

        ``restore`` (replay from a journal): fitted states by hypothesis name, as
        :meth:`fit_states` gave them when this step ran live; a hypothesis due
        for a refit takes its state from there instead of optimising again, so
        the campaign comes out identical and a resume costs no fits. ``proposals`` (with ``restore``: the
        step's journalled decision): a proposal round due at this step is replayed from them
        (:meth:`~abduce.controller.core.abduction.Abduction.replay`), not run again.

        Raises:
            MeasurementRejected: NaN/inf, a point outside the space or off the
                candidate set, the wrong dimension or axis names, a request id (or
                point of it) never issued or already told. The campaign is left unchanged.
        """
        request, x, y_sd = validated(measurement, self._pending, self._open, self._told, self.space)  # y_sd: NaN=none
        idx = self.space.index_of(x) if self.space.is_finite else None
        self._x.append(x)
        self._y.append(float(measurement.y))
        self._y_sd.append(y_sd)
        if idx is not None:
            self._measured_idx.append(idx)
        if self._asked_design:
            self._design_left.remove(self._asked_design[measurement.index])
            if self.channels is not None and not self._design_left and len(self._design) < self._fit_from:
                more = self.channels.explained_design(self._x, self._y, self.settings.n_init)  # chosen from them
                self._design_left = list(range(len(self._design), len(self._design) + len(more)))
                self._design += more
        self._open.remove(measurement.index)
        complete = not self._open
        if complete:
            self._told.add(request.request_id)
            self._pending = None
        self.consecutive_failures = 0
        self._restore, self._replay = restore or {}, proposals
        try:
            record = self._update(request, measurement.index, complete)
        finally:
            self._restore, self._replay = {}, None
        self._history.append(record)
        return record

    # --------------------------------------------------------------- internals

    def _design_points(self, q: int) -> tuple[list[tuple[float, ...]], None, str]:
        """The next ``q`` (at most) initial-design points not yet measured (:func:`design.next_points`)."""
        self._asked_design = self._design_left[:q]
        xs, retry = design.next_points(
            self.space, self._points, self._design, self._asked_design, self._design_failed,
            self._measured_idx + self._failed_idx, lambda t: self._unit(self.space.to_unit(t)),
        )  # fmt: skip
        return xs, None, "initial-design-retry" if retry else "initial-design"

    def _acquire_batch(
        self, driver: int | None, step: int, q: int
    ) -> tuple[list[tuple[float, ...]], list[float | None]]:
        """``q`` points (fewer if the candidates run out) and the acquisition's value at each: the first as
        a one-point request chooses it, the rest greedily against the hypotheses' fantasised readings at the
        earlier ones (kriging believer)."""
        self._asked_design = []
        x, index, score = self._acquire(driver, step)
        xs, scores = [x], [score]
        if q == 1:
            return xs, scores
        believed = Believed()
        u, y = self._data_tensors()
        usable = self.belief.usable()
        for i in range(1, q):
            u_new = self._unit(self.space.to_unit(self._tensor(xs[-1])))
            believe(believed, self.belief, usable, u_new, index, u, y, self._sd_tensor())
            try:
                x, index, score = self._acquire(driver, step, believed, i)
            except CampaignStateError:  # no candidate left: a shorter batch
                break
            xs.append(x)
            scores.append(score)
        return xs, scores

    def _acquire(
        self, driver: int | None, step: int, believed: Believed | None = None, point: int = 0
    ) -> tuple[tuple[float, ...], int | None, float | None]:
        """Point ``point`` of the request at ``step``, its candidate index (finite spaces, else None) and the
        value the acquisition gave it (the maximum ``ask`` chose it by: on a finite space its score, on a box
        the optimised acquisition value; None where a baseline policy picked it without one)."""
        attempt = self._attempts.get(step, 0)
        if type(self.policy).select is not Policy.select:  # a baseline picks the point itself
            u, y = self._data_tensors()
            taken = tuple(believed.taken) if believed is not None else ()
            chosen = self.policy.select(
                SelectionContext(
                    points=self._points,
                    finite=self.space.is_finite,
                    measured=(tuple(self._measured_idx) if self.settings.exclude_measured else ())
                    + tuple(self._failed_idx)
                    + taken,
                    u=u,
                    y=y,
                    step=step + point,
                    rng=self._rng("policy", step, 1 + attempt, point),
                )
            )
            if isinstance(chosen, int):
                if chosen in taken:
                    raise CampaignStateError("no candidate left to measure")
                if believed is not None:
                    believed.taken.append(chosen)
                return tuple(self.space.candidates[chosen].tolist()), chosen, None  # type: ignore[index]
            if chosen is not None:
                return tuple(self.space.from_unit(chosen.to(self._points)).tolist()), None, None
        scores, acq = self._scores(driver, believed)
        if scores is not None:
            best = int(torch.argmax(scores))
            if not math.isfinite(float(scores[best])):
                raise CampaignStateError("no candidate left to measure")
            return tuple(self.space.candidates[best].tolist()), best, float(scores[best])  # type: ignore[index]
        from botorch.optim import optimize_acqf  # continuous spaces only; a heavy import (~2 s)

        bounds = torch.stack([torch.zeros(self.space.d), torch.ones(self.space.d)]).to(DTYPE).to(self.device)
        with torch.random.fork_rng():
            torch.manual_seed(self._int_seed("optimize", step, attempt, point))
            cand, value = optimize_acqf(
                acq, bounds=bounds, q=1, num_restarts=self.settings.restarts, raw_samples=self.settings.raw_samples
            )
        x = (
            self.space.from_unit(cand[0].detach())
            .clamp(
                torch.tensor(self.space.lo, dtype=DTYPE, device=self.device),
                torch.tensor(self.space.hi, dtype=DTYPE, device=self.device),
            )
            .tolist()
        )
        return tuple(x), None, float(value)

    def _due_for_refit(self, slot: Slot, targeted: bool) -> bool:
        """Targeted (by the policy): every step up to ``refit_every_step_below``, then on growth.
        Not targeted: on growth only, so that every hypothesis's evidence rests on
        hyperparameters fitted to at least ``1 / (1 + refit_growth)`` of the data.
        Past :attr:`exact_limit`, every hypothesis still on exact inference is due at
        once, so that all K switch to inducing points together (their evidences stay
        comparable: the SGPR bound lies below the exact marginal likelihood)."""
        n = self.n
        if slot.fit is None or (targeted and n <= self.settings.refit_every_step_below):
            return True
        if self.belief.must_switch(slot, n):
            return True
        return n >= (1 + self.settings.refit_growth) * slot.last_refit_n

    def _update(self, request: MeasureRequest, index: int, complete: bool) -> StepRecord:
        """The step after point ``index`` of ``request`` was added: refits (``complete``: its last point)
        or a rank-1 conditioning of every fitted hypothesis (a batch's earlier points), evidence, stop."""
        step = self.n - 1  # this measurement's index (a one-point request's step)
        u, y = self._data_tensors()
        sd_last = self._sds()[-1]  # the reading's known sd (NaN: none), on the explained channel's scale
        belief = self.belief
        names = self.hypothesis_names
        driver = names.index(request.hypothesis) if request.hypothesis is not None else None
        refit: list[str] = []
        failures: dict[str, str] = {}
        reward = None
        if self.n >= self._fit_from and not complete:
            belief.add(belief.all_slots(), u[-1], float(y[-1]), sd_last)  # frozen until the batch is in
        elif self.n >= self._fit_from:
            first = self.n == self._fit_from or not belief.usable()
            targets = range(len(names)) if first else self.policy.refit(driver, len(names))
            due = [slot for i, slot in enumerate(belief.slots) if self._due_for_refit(slot, i in targets)]
            if belief.none is not None and self._due_for_refit(belief.none, True):  # as if every policy targeted it
                due.append(belief.none)
            failures = belief.refit(
                due, u, y, lambda purpose, i: self._int_seed(purpose, step, i), self._restore, self._sd_tensor()
            )  # y_sd: the readings' known noise
            refit = [s.hypothesis.name for s in belief.all_slots() if s in due and s.hypothesis.name not in failures]
            belief.add([s for s in belief.all_slots() if s.hypothesis.name not in refit], u[-1], float(y[-1]), sd_last)
            if self.policy.rewarded and driver is not None and names[driver] in refit and self._pending_iv is not None:
                iv_after = belief.slots[driver].posterior.integrated_variance()  # type: ignore[union-attr]
                reward = 1.0 if iv_after < self._pending_iv else 0.0
                self._rewards[driver].append(reward)
        if complete:
            self._pending_iv = None

        weighed = belief.weigh()
        proposals, self._accepted = tuple(self._accepted), []
        reason = self.abduction.due(self, weighed) if complete else None
        if reason is not None:  # compose, screen, let the best compete (core.abduction)
            found = None if self._replay is None else self.abduction.replay(self, step, self._replay, self._restore)
            if found is None:
                found = [p.to_json() for p in self.abduction.attempt(self, step, reason, self._restore, weighed)]
            proposals += tuple(found)
            if any(p["added"] for p in found):
                refit += [p["name"] for p in found if p["added"]]
                weighed = belief.weigh()
        probs = weighed.probabilities
        lead = leader(probs, weighed.log_z)  # the fitted laws' (an unfitted one has no variance to stop on)
        unfitted = tuple(s.hypothesis.name for s in belief.slots if s.fit is None) if self.n >= self._fit_from else ()
        view = CampaignView(
            n=self.n,
            probabilities=tuple(probs.values()),
            integrated_variance=weighed.integrated_variance[lead] if lead else math.inf,
            unfitted=len(unfitted),
            none_probability=weighed.none["probability"] if weighed.none else 0.0,
            probability_floor=weighed.floor,
            cost=self.cost,
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
            x=self._x[-1],
            y=self._y[-1],
            hypothesis=request.hypothesis,
            reason=request.reason,
            refit=tuple(refit),
            reward=reward,
            probabilities=probs,
            log_evidence=weighed.log_z,
            integrated_variance=weighed.integrated_variance,
            parameters=weighed.parameters,
            fit_failures=failures,
            stopped=self._stopped,
            unfitted=unfitted,
            none=weighed.none,
            log_evidence_se=weighed.log_z_se,
            checks=belief.checks(u, y),
            index=index,
            score=self._asked_scores[index] if index < len(self._asked_scores) else None,
            proposals=proposals,
        )
