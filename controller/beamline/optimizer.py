"""abduce's campaign as a bluesky-adaptive optimizer: ``bluesky_adaptive.plans.optimize`` drives it in a RunEngine.

bluesky-adaptive 1.x (``bluesky_adaptive.protocols``) asks an optimizer for points (``suggest``), runs
its acquisition plan (move the actuators, read the sensors) and an *evaluation function* (documents ->
outcomes), and hands the outcomes back (``ingest``). :class:`CampaignOptimizer` answers those calls
from a pure :class:`~abduce.controller.core.campaign.Campaign`, as the loop and the daemon do::

    suggest(n)  -> campaign.ask(q=n) -> journal the request -> [{"x": 0.31, "_id": id of point 0}, ...]
    ingest(pts) -> outcome[channel] -> Measurement(index=k) -> tell_point: journal, tell, journal the decision
    register_failures(pts)  -> journal the failure -> campaign.skip(request_id, k) (never asked again)
    should_stop()           -> (campaign.done, the stopping rule that fired)
    get_best_points()       -> the leading law, its fitted parameters and probability, the decisive points
    checkpoint()            -> fsync the journal (every event is already in it: journal first)

Each point is told through :func:`abduce.controller.drive.loop.tell_point`, the loop's own, so the run
directory it writes is the daemon's (``config.json``, ``journal.sqlite`` with config mode ``bluesky``,
``measurements.jsonl``, ``decisions.jsonl``, and ``summary.json`` once the campaign is done): ``abduce
inspect``, ``plot``, ``report`` and ``export`` read it, and :meth:`CampaignOptimizer.resume` rebuilds the
campaign from its journal and goes on.

Batches. ``suggest(n)`` asks the campaign for one request of up to ``n`` points (``Campaign.ask(q=n)``;
``n = None``: the recipe's ``q``; fewer where the budget or the candidates left end sooner), and returns
every point of it as its own suggestion. While a request has points waiting for a reading, ``suggest(n)``
returns the first ``n`` of those again under the same ids (a campaign chooses anew only once every point
of its request is told or skipped). ``ingest`` tells each point with its ``index``, in index order
whatever order the acquisition measured them in (so the campaign does not depend on how bluesky-adaptive
routed the motors).

Ids. Point ``k`` of a request has the ``_id`` :func:`~abduce.controller.beamline.ids.point_id`: the
campaign's request id (a UUID, deterministic in the campaign's seed and step) for point 0, so every
one-point request keeps the id runs and journals had before batches, and ``f"{request_id}/{k}"`` for the
batch's further points. An outcome is matched to exactly the point that asked for it, and a resumed
optimizer asks again under the ids its journal holds.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abduce.controller.beamline.ids import ID_KEY, point_id, point_key
from abduce.controller.beamline.record import RunRecord
from abduce.controller.beamline.verdict import best_point
from abduce.controller.core.campaign import Campaign
from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.drive.loop import abandon, request_body, tell_point
from abduce.controller.errors import CampaignStateError, ConfigError, MeasurementRejected
from abduce.controller.intake.readings import pick_channel, to_measurement
from abduce.controller.journal.events import ErrorBody, MeasurementBody, append, decision_body
from abduce.controller.journal.rundir import RunDirectory
from abduce.controller.journal.store import JournalError
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.recipe.spec import spec_of
from abduce.instruments.protocol.models import Capabilities

log = logging.getLogger("abduce.beamline")

MODE = "bluesky"  # the journal config's mode (abduce.controller.recipe.spec.MODES)
FAILED = "bluesky-adaptive registered the trial as failed (the acquisition or evaluation raised)"


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
        journalled: request ids already in the journal (a resumed run's in flight: not journalled twice).

    Example:
        >>> caps = Capabilities(axes=[Axis(name="x", min=0, max=1)], channels=[Channel(name="y")])
        >>> opt = CampaignOptimizer.start(Recipe(hypotheses=("second-order", "linear"), budget=20), caps, "runs/b0")
        >>> RE(optimize(opt.problem([motor], [det], readings), iterations=None, n_points=4))
    """

    def __init__(
        self,
        campaign: Campaign,
        capabilities: Capabilities,
        *,
        channel: str | None = None,
        reduction: str | None = None,
        run: RunRecord | None = None,
        journalled: Iterable[str] = (),
    ) -> None:
        self.campaign = campaign
        self.capabilities = capabilities
        self.channel = pick_channel(capabilities, channel, reduction)
        self._reduction = None
        if reduction is not None:
            from abduce.controller.intake.reduction import resolve_reduction

            self._reduction = resolve_reduction(reduction)
        self.run = run
        self._journalled = set(journalled)  # requests already in the journal (not journalled twice)
        self._told = {(r.request_id, r.index) for r in campaign.history}  # points told, (request_id, index)
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
        A request asked and never answered is asked again with its journalled points, so every point of it
        not yet told is ingested (or suggested again) under its own ``_id``.

        Raises:
            JournalError: ``out`` holds no readable journal, another process has it open, or the request
                the journal holds in flight is not the one the rebuilt campaign asks.
            ConfigError: the journal is not a bluesky-adaptive campaign's.
        """
        run = RunRecord.reopen(out)
        try:
            spec = spec_of(run.config())
            if spec.mode != MODE:
                raise ConfigError(f"{Path(out)} holds a {spec.mode} run, not a {MODE} one: resume it as it was run")
            resumed = run.retell(spec.campaign())
            campaign = resumed.campaign
            if resumed.in_flight and campaign.pending is None and not campaign.done:
                last = resumed.in_flight[-1]  # asked, journalled, no point told: asked again, as many points
                asked = campaign.ask(q=last.q)
                if asked.request_id != last.request_id:
                    raise JournalError(
                        f"{Path(out)}: the journal holds request {last.request_id} in flight, but the rebuilt "
                        f"campaign asks {asked.request_id}: the journal was written by a campaign with other settings"
                    )
        except BaseException:
            run.close()
            raise
        for record in resumed.undecided:  # stopped mid-fit: the decision the step never journalled
            run.append(decision_body(record, campaign.fit_states(record.refit)), record.request_id, "next")
            run.step(record)
        log.info("resumed %s at %d measurements (%d in flight)", out, campaign.n, len(resumed.in_flight))
        return cls(
            campaign,
            spec.capabilities_declared(),
            channel=spec.channel,
            reduction=spec.reduction,
            run=run,
            journalled=(r.request_id for r in resumed.in_flight),
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
        """The next points to measure, ``[{axis: value, ..., "_id": point_id}]``: the points of one request of
        up to ``num_points`` (None: the recipe's ``q``) that wait for a reading; the same ones again until
        they are ingested or failed (module docstring, "Batches" and "Ids").

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
        request = self.campaign.ask(q=num_points)  # one pending: the same request, whatever q
        if self.run is not None and request.request_id not in self._journalled:
            self.run.append(request_body(request), request_id=request.request_id)
            self._journalled.add(request.request_id)
        names = self.campaign.space.names
        return [
            {**dict(zip(names, request.points[k])), ID_KEY: point_id(request.request_id, k)}
            for k in self.campaign.waiting[:num_points]
        ]

    def ingest(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Tell the campaign each outcome: ``point[channel]`` is the reading (a number; ``(value, sd)`` as
        Ax's ``(mean, sem)``; a spectrum for a reduction), at the suggested point or, when the point names
        every axis, there (the position actually reached; on a candidate grid it must be a candidate).

        Every point is checked before any is told; then each is told in its request's index order through
        :func:`~abduce.controller.drive.loop.tell_point` (journal first, as the loop and the daemon do). A
        reading that is not a finite number is journalled and its point skipped (once no point of the
        request is left, the next ``suggest`` chooses anew), until ``max_failures`` in a row.

        Raises:
            MeasurementRejected: ``reason`` ``missing-id`` (a point abduce did not ask for: a campaign
                measures only its own requests), ``unknown-request`` (an ``_id`` that is not a point waiting
                for a reading: never suggested, or already failed or skipped), ``duplicate`` (already
                ingested, or twice in ``points``), ``missing-outcome``, or what ``Campaign.tell`` refuses
                (that point is then not told; the points before it in index order are).
        """
        self._check_open()
        checked: dict[int, Measurement] = {}
        for p in points:
            request, k = self._request_of(p)
            m = self._measurement(request, k, p)
            if k in checked:
                raise MeasurementRejected(request.request_id, "duplicate", f"point {k} is in the outcomes twice")
            checked[k] = m
        journal = self.run.journal if self.run is not None else None
        for k in sorted(checked):
            record = tell_point(self.campaign, request, checked[k], journal)
            if record is None:  # not a number: skipped (journalled and logged by tell_point)
                continue
            self._told.add((record.request_id, record.index))
            if self.run is not None:
                self.run.step(record)
        if self.campaign.done:  # once every point given is told, as the loop tells a whole batch
            self.close()

    def _request_of(self, point: Mapping[str, Any]) -> tuple[MeasureRequest, int]:
        """The pending request and the index of the point ``point[_id]`` names, or MeasurementRejected."""
        pid = point.get(ID_KEY)
        if pid is None or pid == "baseline":
            raise MeasurementRejected(
                str(pid),
                "missing-id",
                f"{point!r} names no request of this campaign; abduce measures only the points it suggested "
                "(no baselines or manual points: sample_suggestions needs each suggestion's _id)",
            )
        rid, k = point_key(pid)
        if (rid, k) in self._told:
            raise MeasurementRejected(rid, "duplicate", f"point {pid} was already ingested")
        request = self.campaign.pending
        if request is None or request.request_id != rid or k not in self.campaign.waiting:
            waiting = [point_id(request.request_id, i) for i in self.campaign.waiting] if request else []
            why = f"not a point waiting for a reading (never suggested, failed or skipped); waiting: {waiting}"
            raise MeasurementRejected(str(pid), "unknown-request", why)
        if self.channel not in point:
            raise MeasurementRejected(
                rid, "missing-outcome", f"no {self.channel!r} in the outcome (keys: {sorted(point)})"
            )
        return request, k

    def _measurement(self, request: MeasureRequest, k: int, point: Mapping[str, Any]) -> Measurement:
        """Point ``k`` of ``request`` as the outcome ``point`` reports it."""
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
        m = to_measurement(
            request.request_id, request.points[k], measured, values, arrays, self.channel, self._reduction, sd=sds
        )
        return dataclasses.replace(m, index=k)

    def _check_open(self) -> None:
        if self._finished and not self.campaign.done:
            raise CampaignStateError(
                f"this optimizer's run directory {self.run.path} is closed: CampaignOptimizer.resume() it to go on"
            )

    def register_failures(self, suggestions: Sequence[Mapping[str, Any]]) -> None:
        """The acquisition plan or the evaluation function raised for these suggestions: each point waiting
        for a reading is journalled as failed and skipped (never asked again; once no point of its request
        is left, the next ``suggest`` chooses anew), as the loop skips a request the instrument aborted. An
        ``_id`` that is not waiting is logged and left alone: this runs while bluesky-adaptive re-raises the
        acquisition's error, which it must not hide.

        Every point still waiting failed (bluesky-adaptive's plans fail a whole acquisition): one
        instrument error for the request (:func:`~abduce.controller.drive.loop.abandon`). Some points of a
        batch: each journalled as a reading that never came (NaN) refused as ``failed``, so that a resume
        skips just those."""
        if self._finished:  # closed (or done): nothing is pending any more
            log.warning("register_failures on a closed optimizer: %s ignored", [s.get(ID_KEY) for s in suggestions])
            return
        request, failed = self.campaign.pending, set()
        for s in suggestions:
            pid = s.get(ID_KEY)
            rid, k = point_key(pid)
            if request is None or request.request_id != rid or k not in self.campaign.waiting:
                log.warning("register_failures: %s is not a point waiting for a reading; ignored", pid)
                continue
            failed.add(k)
        if not failed:
            return
        journal = self.run.journal if self.run is not None else None
        if failed == set(self.campaign.waiting):
            abandon(self.campaign, request, journal, "failed", FAILED)
            return
        for k in sorted(failed):
            at = {"index": k} if k else {}  # left out for point 0, as the loop journals it
            if journal is not None:
                append(journal, MeasurementBody(x=request.points[k], y=math.nan, **at), request.request_id)
                error = ErrorBody(stage="tell", reason="failed", message=FAILED, skipped=True, **at)
                append(journal, error, request_id=request.request_id)
            self.campaign.skip(request.request_id, k)

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
