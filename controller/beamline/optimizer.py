"""abduce's campaign as a bluesky-adaptive optimizer: ``bluesky_adaptive.plans.optimize`` drives it in a RunEngine.

bluesky-adaptive 1.x (``bluesky_adaptive.protocols``) asks an optimizer for points (``suggest``), runs
its acquisition plan (move the actuators, read the sensors) and an *evaluation function* (documents ->
outcomes), and hands the outcomes back (``ingest``). :class:`CampaignOptimizer` answers those calls
from a pure :class:`~abduce.controller.core.campaign.Campaign`, as the daemon does over the protocol::

    suggest(n)  -> campaign.ask()                -> journal the request -> [{"x": 0.31, "_id": request_id}]
    ingest(pts) -> outcome[channel] -> Measurement -> journal it -> campaign.tell -> journal the decision
    register_failures(pts)  -> journal an instrument error -> campaign.skip (the point is never asked again)
    should_stop()           -> (campaign.done, the stopping rule that fired)
    get_best_points()       -> the leading law, its fitted parameters and probability, the decisive points
    checkpoint()            -> fsync the journal (every event is already in it: journal first)

The run directory it writes is the daemon's (``config.json``, ``journal.sqlite`` with config mode
``bluesky``, ``measurements.jsonl``, ``decisions.jsonl``, and ``summary.json`` once the campaign is
done), so ``abduce inspect``, ``plot``, ``report`` and ``export`` read it, and
:meth:`CampaignOptimizer.resume` rebuilds the campaign from its journal and goes on.

Batches. A campaign holds one pending request (:attr:`Campaign.pending`) and chooses the next point
only after it is told the last one, so ``suggest(n)`` returns one point whatever ``n`` is (the protocol
allows fewer than asked; bluesky-adaptive's plans acquire and evaluate what was suggested). Asking
again before ``ingest`` returns the same pending point under the same ``_id``. The one place that asks
the campaign is :meth:`CampaignOptimizer._ask`.

Every ``_id`` is the campaign's own request id (a UUID, deterministic in the campaign's seed and step),
so an ingested outcome is matched to exactly the request that asked for it, and a resumed optimizer
asks again under the id its journal holds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abduce.controller.beamline.record import RunRecord
from abduce.controller.beamline.verdict import best_point
from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.errors import CampaignStateError, ConfigError, MeasurementRejected
from abduce.controller.intake.readings import pick_channel, to_measurement
from abduce.controller.journal.events import DecisionBody, ErrorBody, MeasurementBody, PlainArray, RequestBody
from abduce.controller.journal.rundir import RunDirectory
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.recipe.spec import spec_of
from abduce.instruments.protocol.models import Capabilities

log = logging.getLogger("abduce.beamline")

ID_KEY = "_id"  # bluesky_adaptive.protocols.ID_KEY (kept here: this module imports no bluesky)
MODE = "bluesky"  # the journal config's mode (abduce.controller.recipe.spec.MODES)


class CampaignOptimizer:
    """A :class:`~abduce.controller.core.campaign.Campaign` behind bluesky-adaptive's ``Optimizer`` protocol,
    with ``SupportsStoppingCriteria``, ``TrialFaultAware`` and ``Checkpointable`` (structurally: the
    protocols are ``runtime_checkable``, so ``isinstance`` holds without importing bluesky-adaptive here).

    Build one with :meth:`start` (from a recipe, journalled in a new run directory) or :meth:`resume`.

    Args:
        campaign: the campaign to drive (its space's axis names are the suggestions' keys, and the
            actuators' names).
        capabilities: what the beamline declares: the axes (names, units, limits; a candidate grid), and
            the channels; the channel the hypotheses explain is the outcome ``ingest`` reads.
        channel, reduction: that channel (default its first scalar one) and, for a spectrum channel, the
            reduction to one value (:func:`~abduce.controller.intake.readings.pick_channel`).
        run: the run directory to journal in; None keeps nothing (``checkpoint`` then refuses).
        in_flight: request ids journalled and never answered (a resumed run's), asked again under the same id.

    Example:
        >>> caps = Capabilities(axes=[Axis(name="x", min=0, max=1)], channels=[Channel(name="y")])
        >>> opt = CampaignOptimizer.start(Recipe(hypotheses=("second-order", "linear"), budget=20), caps, "runs/b0")
        >>> RE(optimize(opt.problem([motor], [det], readings), iterations=None))
    """

    def __init__(
        self,
        campaign: Campaign,
        capabilities: Capabilities,
        *,
        channel: str | None = None,
        reduction: str | None = None,
        run: RunRecord | None = None,
        in_flight: Iterable[str] = (),
    ) -> None:
        self.campaign = campaign
        self.capabilities = capabilities
        self.channel = pick_channel(capabilities, channel, reduction)
        self._reduction = None
        if reduction is not None:
            from abduce.controller.intake.reduction import resolve_reduction

            self._reduction = resolve_reduction(reduction)
        self.run = run
        self._in_flight = set(in_flight)  # asked before a restart and never answered: asked again, same id
        self._journalled = set(self._in_flight)  # requests already in the journal (not journalled twice)
        self._issued: dict[str, MeasureRequest] = {}  # _id -> the request it names, while unanswered
        self._told = {r.request_id for r in campaign.history}
        self._finished = False

    # ------------------------------------------------------------------ building

    @classmethod
    def start(
        cls, recipe: Recipe, capabilities: Capabilities, out: str | os.PathLike | None = None
    ) -> CampaignOptimizer:
        """A new campaign from ``recipe`` over the space ``capabilities`` declare, journalled in the run
        directory ``out`` (None: nothing written).

        Raises:
            ConfigError: ``out`` already holds a run; the recipe's channel or reduction does not fit the
                capabilities (checked before anything is written).
        """
        from abduce.controller.intake.capabilities import space_of

        pick_channel(capabilities, recipe.channel, recipe.reduction)
        if out is not None:
            RunDirectory.check_free(out)
        campaign = recipe.build_campaign(space_of(capabilities, recipe.channel, recipe.reduction))
        run = None
        if out is not None:
            config = {
                "mode": MODE,
                **recipe.recipe().model_dump(mode="json"),
                "capabilities": capabilities.model_dump(),
            }
            run = RunRecord.create(out, config)
        return cls(campaign, capabilities, channel=recipe.channel, reduction=recipe.reduction, run=run)

    @classmethod
    def resume(cls, out: str | os.PathLike) -> CampaignOptimizer:
        """The optimizer of the run directory ``out``, its campaign rebuilt from the journal
        (:func:`~abduce.controller.journal.resume.retell`: the fits journalled are restored, not redone).
        A request asked and never answered is asked again under its own ``_id``.

        Raises:
            JournalError: ``out`` holds no readable journal, or another process has it open.
            ConfigError: the journal is not a bluesky-adaptive campaign's.
        """
        run = RunRecord.reopen(out)
        try:
            spec = spec_of(run.config())
            if spec.mode != MODE:
                raise ConfigError(f"{Path(out)} holds a {spec.mode} run, not a {MODE} one: resume it as it was run")
            resumed = run.retell(spec.campaign())
        except BaseException:
            run.close()
            raise
        campaign = resumed.campaign
        for record in resumed.undecided:  # stopped mid-fit: the decision the step never journalled
            body = DecisionBody(**vars(record), fits=campaign.fit_states(record.refit))
            run.append(body, request_id=record.request_id, durability="next")
            run.step(record)
        log.info("resumed %s at %d measurements (%d in flight)", out, campaign.n, len(resumed.in_flight))
        return cls(
            campaign,
            spec.capabilities_declared(),
            channel=spec.channel,
            reduction=spec.reduction,
            run=run,
            in_flight=(r.request_id for r in resumed.in_flight),
        )

    def problem(self, actuators: Sequence[Any], sensors: Sequence[Any], evaluation_function: Any) -> Any:
        """bluesky-adaptive's ``OptimizationProblem`` of this optimizer, after checking that an actuator is
        named after every axis of the space (``default_acquire`` moves ``actuator.name`` to ``point[name]``).

        Raises:
            ConfigError: an axis has no actuator of its name.
        """
        from bluesky_adaptive.protocols import OptimizationProblem

        names = {a.name for a in actuators}
        missing = [n for n in self.campaign.space.names if n not in names]
        if missing:
            raise ConfigError(f"no actuator is named after the axes {missing}; actuators: {sorted(names)}")
        return OptimizationProblem(self, list(actuators), list(sensors), evaluation_function)

    # ------------------------------------------------------------------ Optimizer

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """The next point(s) to measure, ``[{axis: value, ..., "_id": request_id}]``: one point per call
        (module docstring, "Batches"); the same one again until it is ingested or failed.

        Raises:
            ConfigError: ``num_points`` is not a positive integer.
            CampaignStateError: the campaign has stopped (``should_stop`` says why).
        """
        if num_points is not None and (isinstance(num_points, bool) or not isinstance(num_points, int)):
            raise ConfigError(f"num_points must be a positive integer or None, got {num_points!r}")
        if num_points is not None and num_points < 1:
            raise ConfigError(f"num_points must be >= 1, got {num_points}")
        if self.campaign.done:
            raise CampaignStateError(f"the campaign has stopped ({self.should_stop()[1]}); nothing more to suggest")
        self._check_open()
        out = []
        for request in self._ask(num_points or 1):
            if self.run is not None and request.request_id not in self._journalled:
                self.run.append(RequestBody(**vars(request)), request_id=request.request_id)
                self._journalled.add(request.request_id)
            self._issued[request.request_id] = request
            out.append({**dict(zip(self.campaign.space.names, request.x)), ID_KEY: request.request_id})
        return out

    def _ask(self, n: int) -> list[MeasureRequest]:
        """The campaign's pending request (one, whatever ``n``: it chooses the next point only once told).
        With batches in the campaign (``Campaign.ask(q=n)``, issue 16 item 6) this is the one line to change."""
        return [self.campaign.ask()]

    def ingest(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Tell the campaign each outcome: ``point[channel]`` is the reading (a number; ``(value, sd)`` as
        Ax's ``(mean, sem)``; a spectrum for a reduction), at the suggested point or, when the point names
        every axis, there (the position actually reached; on a candidate grid it must be a candidate).

        Every point is checked before any is told; a reading that is not a finite number is journalled and
        its point skipped (the next ``suggest`` chooses anew), as the daemon does, until
        ``max_failures`` in a row.

        Raises:
            MeasurementRejected: ``reason`` ``missing-id`` (a point abduce did not ask for: a campaign
                measures only its own requests), ``unknown-request`` (an ``_id`` never suggested, or
                already failed or skipped), ``duplicate`` (already ingested), ``missing-outcome``, or
                what ``Campaign.tell`` refuses (the campaign is then unchanged).
        """
        self._check_open()
        checked = [self._measurement(self._request_of(p), p) for p in points]
        for m in checked:
            self._tell(m)

    def _request_of(self, point: Mapping[str, Any]) -> MeasureRequest:
        rid = point.get(ID_KEY)
        if rid is None or rid == "baseline":
            raise MeasurementRejected(
                str(rid),
                "missing-id",
                f"{point!r} names no request of this campaign; abduce measures only the points it suggested "
                "(no baselines or manual points: sample_suggestions needs each suggestion's _id)",
            )
        rid = str(rid)
        if rid in self._told:
            raise MeasurementRejected(rid, "duplicate", "this request was already ingested")
        request = self._issued.get(rid)
        if request is None and rid in self._in_flight and self.campaign.pending is None:
            request = self.campaign.ask()  # asked before a restart: the campaign asks it again, same id
            if request.request_id != rid:
                raise MeasurementRejected(rid, "unknown-request", f"the campaign now asks {request.request_id}")
            self._issued[rid] = request
        if request is None:
            pending = sorted(self._issued)
            raise MeasurementRejected(
                rid, "unknown-request", f"this optimizer never suggested it, or it failed; pending: {pending}"
            )
        if self.channel not in point:
            raise MeasurementRejected(
                rid, "missing-outcome", f"no {self.channel!r} in the outcome (keys: {sorted(point)})"
            )
        return request

    def _measurement(self, request: MeasureRequest, point: Mapping[str, Any]) -> Measurement:
        names = self.campaign.space.names
        try:
            measured = [[float(point[n]) for n in names]] if all(n in point for n in names) else []
        except (TypeError, ValueError) as exc:
            raise MeasurementRejected(request.request_id, "non-numeric", f"the point reached: {exc}") from None
        value, arrays, sd = point[self.channel], {}, None
        if isinstance(value, tuple | list) and len(value) == 2 and self._reduction is None:
            value, sd = value  # (mean, sem), Ax's convention
        try:
            value = np.asarray(np.nan if value is None else value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise MeasurementRejected(request.request_id, "non-numeric", f"{self.channel!r}: {exc}") from None
        if value.ndim and self._reduction is None:
            raise MeasurementRejected(
                request.request_id,
                "non-numeric",
                f"{self.channel!r} is an array of shape {value.shape}, not a number: declare a reduction",
            )
        if value.ndim:  # a spectrum, reduced by the campaign's reduction
            arrays = {self.channel: value[None]}
        values = {self.channel: [float(value)] if not value.ndim else []}
        sds = {self.channel: [None if sd is None else float(sd)]}
        return to_measurement(
            request.request_id, request.x, measured, values, arrays, self.channel, self._reduction, sd=sds
        )

    def _tell(self, m: Measurement) -> None:
        """One measurement, journalled first and told, as :func:`abduce.controller.drive.loop.step` does."""
        run = self.run
        if run is not None:
            known = {} if m.y_sd is None else {"y_sd": m.y_sd}  # the reading's own sd, if told
            if m.arrays:  # raw spectra, kept with the value reduced from them
                known["arrays"] = {k: PlainArray.of(a) for k, a in m.arrays.items()}
            body = MeasurementBody(x=m.x, y=m.y, **known)
            run.append(body, request_id=m.request_id, durability="background")
        try:
            record = self.campaign.tell(m)
        except MeasurementRejected as exc:
            c = self.campaign
            skip = exc.reason == "non-finite" and c.consecutive_failures + 1 < c.settings.max_failures
            if run is not None:
                error = ErrorBody(stage="tell", reason=exc.reason, message=str(exc), skipped=skip)
                run.append(error, request_id=m.request_id)
            if not skip:
                raise
            log.warning("request %s at %s: %s; the point is skipped", m.request_id, m.x, exc)
            self._settle(m.request_id)
            return
        del self._issued[m.request_id]
        self._told.add(m.request_id)
        self._in_flight.discard(m.request_id)
        if run is not None:
            decision = DecisionBody(**vars(record), fits=self.campaign.fit_states(record.refit))
            run.append(decision, request_id=m.request_id, durability="next")
            run.step(record)
            if self.campaign.done:
                self.close()

    def _check_open(self) -> None:
        if self._finished and not self.campaign.done:
            raise CampaignStateError(
                f"this optimizer's run directory {self.run.path} is closed: CampaignOptimizer.resume() it to go on"
            )

    def _settle(self, rid: str) -> None:
        """Skip the pending request ``rid`` (a failed or non-numeric reading)."""
        self.campaign.skip(rid)
        del self._issued[rid]
        self._in_flight.discard(rid)

    def register_failures(self, suggestions: Sequence[Mapping[str, Any]]) -> None:
        """The acquisition plan or the evaluation function raised for these suggestions: each pending one is
        journalled as an instrument error and skipped (its point is never asked again; the next ``suggest``
        chooses anew), as the daemon skips a request the instrument aborted. An ``_id`` that is not pending
        is logged and left alone: this runs while bluesky-adaptive re-raises the acquisition's error, which
        it must not hide."""
        if self._finished:  # closed (or done): nothing is pending any more
            log.warning("register_failures on a closed optimizer: %s ignored", [s.get(ID_KEY) for s in suggestions])
            return
        for s in suggestions:
            rid = str(s.get(ID_KEY))
            if rid not in self._issued:
                log.warning("register_failures: %s is not a pending request of this campaign; ignored", rid)
                continue
            if self.run is not None:
                message = "bluesky-adaptive registered the trial as failed (the acquisition or evaluation raised)"
                self.run.append(
                    ErrorBody(stage="instrument", reason="failed", message=message, skipped=True), request_id=rid
                )
            self._settle(rid)

    def should_stop(self) -> tuple[bool, str | None]:
        """``(True, reason)`` once the campaign has stopped: its stopping rule fired (the recipe's budget) or
        every candidate was measured; the reason names the leader. ``(False, None)`` before."""
        c = self.campaign
        if not c.done:
            return False, None
        exhausted = c.space.is_finite and c.settings.exclude_measured and c.n >= len(c.space.candidates)
        why = "every candidate has been measured" if exhausted else c.stopping.describe()
        leader = c.leader()
        verdict = f"leader {leader} at P = {c.probabilities()[leader]:.3g}" if leader else "no leader"
        return True, f"{why} ({c.n} measurements; {verdict})"

    def get_best_points(self) -> list[tuple[str, dict[str, float], dict[str, Any]]]:
        """The verdict as bluesky-adaptive's one best point ``(_id, point, outcomes)``: the measurement that
        decided the leading law most, and in ``outcomes`` the law (``hypothesis``, ``probability``, fitted
        ``parameters``) and the measurements that decided it (``decided_by``, with each one's gain in the
        leader's log odds): :func:`abduce.controller.beamline.verdict.best_point`.

        Raises:
            CampaignStateError: no leader yet (before the first fit, or while a hypothesis was never fitted).
        """
        return [best_point(self.campaign, self.channel)]

    # ------------------------------------------------------------------ Checkpointable, closing

    def checkpoint(self) -> None:
        """Make the journal durable (fsync): every request, reading and decision is journalled as it happens
        (journal first, as the daemon does), so a resume loses nothing a checkpoint would have kept; this
        also covers a power cut. After the campaign is done (its run directory finished) it does nothing.

        Raises:
            ConfigError: this optimizer keeps no run directory (:meth:`start` without ``out``).
        """
        if self.run is None:
            raise ConfigError("this optimizer keeps no run directory: start it with out=DIR to checkpoint")
        if not self._finished:
            self.run.flush()

    def close(self) -> None:
        """Close the run directory (``summary.json`` too once the campaign is done) and release the journal;
        the campaign stays readable. Called by itself when the campaign stops; idempotent."""
        if self.run is not None and not self._finished:
            self._finished = True
            if self.campaign.done:
                self.run.finish(self.campaign)
            else:
                self.run.close()

    def __enter__(self) -> CampaignOptimizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
