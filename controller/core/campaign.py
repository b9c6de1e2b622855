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

import math

import torch

from abduce.controller.core import design
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.core.settings import CampaignSettings, StepRecord
from abduce.controller.core.space import DTYPE
from abduce.controller.core.state import CampaignState
from abduce.controller.decide.policies import Policy, SelectionContext
from abduce.controller.decide.stopping import CampaignView
from abduce.controller.errors import CampaignStateError, MeasurementRejected
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
        self._pending_iv: float | None = None
        self._restore: dict[str, dict] = {}

    # ----------------------------------------------------------------- ask/tell

    @property
    def pending(self) -> MeasureRequest | None:
        """The request asked and not yet told or skipped (what an operator's abort names), else None."""
        return self._pending

    def ask(self) -> MeasureRequest:
        """The next point to measure. Asking again before ``tell`` returns the same request.

        Raises:
            CampaignStateError: the campaign has stopped.
        """
        if self._pending is not None:
            return self._pending
        if self._stopped:
            raise CampaignStateError("the campaign has stopped; nothing more to ask")
        step = self.n
        attempt = self._attempts.get(step, 0)
        if step < len(self._design):
            x, driver, reason = self._design[step], None, "initial-design"
            if attempt and self.space.is_finite:  # that design point failed: its nearest free neighbour
                x, reason = (
                    design.nearest_free(self.space, self._points, x, self._measured_idx + self._failed_idx),
                    "initial-design-retry",
                )
        else:
            driver, reason = self.policy.choose(self._policy_view(), self._rng("policy", step))
            x = self._acquire(driver, step)
            posterior = self.belief.slots[driver].posterior if driver is not None else None
            if posterior is not None:  # a driver never fitted (its fits failed) earns no reward this turn
                self._pending_iv = posterior.integrated_variance()
        if driver is not None:
            self._times_chosen[driver] += 1
        self._pending = MeasureRequest(
            request_id=self.request_id(step, attempt),
            step=step,
            x=tuple(float(v) for v in x),
            hypothesis=self.hypothesis_names[driver] if driver is not None else None,
            reason=reason,
        )
        return self._pending

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

    def _update(self, request: MeasureRequest, m: Measurement) -> StepRecord:
        step = request.step
        u, y = self._data_tensors()
        belief = self.belief
        names = self.hypothesis_names
        driver = names.index(request.hypothesis) if request.hypothesis is not None else None
        refit: list[str] = []
        failures: dict[str, str] = {}
        reward = None
        if self.n >= self.settings.n_init:
            first = self.n == self.settings.n_init or not belief.usable()
            targets = range(len(names)) if first else self.policy.refit(driver, len(names))
            due = [slot for i, slot in enumerate(belief.slots) if self._due_for_refit(slot, i in targets)]
            if belief.none is not None and self._due_for_refit(belief.none, True):  # as if every policy targeted it
                due.append(belief.none)
            failures = belief.refit(due, u, y, lambda purpose, i: self._int_seed(purpose, step, i), self._restore)
            refit = [s.hypothesis.name for s in belief.all_slots() if s in due and s.hypothesis.name not in failures]
            belief.add([s for s in belief.all_slots() if s.hypothesis.name not in refit], u[-1], float(y[-1]))
            if self.policy.rewarded and driver is not None and names[driver] in refit and self._pending_iv is not None:
                iv_after = belief.slots[driver].posterior.integrated_variance()  # type: ignore[union-attr]
                reward = 1.0 if iv_after < self._pending_iv else 0.0
                self._rewards[driver].append(reward)
        self._pending_iv = None

        weighed = belief.weigh()
        probs = weighed.probabilities
        leader = max(probs, key=probs.__getitem__) if probs else None
        unfitted = (
            tuple(s.hypothesis.name for s in belief.slots if s.fit is None) if self.n >= self.settings.n_init else ()
        )
        view = CampaignView(
            n=self.n,
            probabilities=tuple(probs.values()),
            integrated_variance=weighed.integrated_variance[leader] if leader else math.inf,
            unfitted=len(unfitted),
            none_probability=weighed.none["probability"] if weighed.none else 0.0,
            probability_floor=weighed.floor,
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
            log_evidence=weighed.log_z,
            integrated_variance=weighed.integrated_variance,
            parameters=weighed.parameters,
            fit_failures=failures,
            stopped=self._stopped,
            unfitted=unfitted,
            none=weighed.none,
            log_evidence_se=weighed.log_z_se,
            checks=belief.checks(u, y),
        )
