"""A campaign rebuilt from a journal, whatever wrote it: resume, replay and inspection start here.

A journal's first event holds the config its campaign was built from;
:func:`abduce.controller.recipe.spec.spec_of` reads it into one
:class:`~abduce.controller.recipe.spec.RunSpec`; :func:`rebuild` makes a fresh
campaign from it and re-tells the journalled measurements (all, or the first
``upto``) -- the same path a resume takes, so the rebuilt campaign is the one
that ran.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from abduce.controller.journal.events import read, refused_points
from abduce.controller.journal.store import Journal, JournalError, journal_path
from abduce.controller.recipe.spec import RunSpec, spec_of

if TYPE_CHECKING:  # reading a spec needs no torch (abduce inspect); building its campaign does
    from abduce.controller.core.campaign import Campaign
    from abduce.controller.core.snapshot import Snapshot
    from abduce.controller.recipe.settings import Settings
    from abduce.controller.recipe.transfer import Transfer


def snapshot(journal: Journal, upto: int | None = None, events: list | None = None) -> tuple[RunSpec, Snapshot]:
    """The journal's campaign after its first ``upto`` measurements, for looking at, without re-telling it.

    :func:`rebuild` re-asks and re-tells every step (the acquisition scored n
    times, every posterior updated n times); this loads the data, the
    journalled step records and each hypothesis's latest journalled fit, and
    conditions the fits once (:meth:`Snapshot.load`): seconds for a
    10^4-measurement journal. The result answers ``posterior``,
    ``acquisition_scores`` and ``probabilities`` as the rebuilt campaign would
    (within rounding; a step whose decision never reached the journal uses the
    hypothesis's previous fit), and refuses ``ask``/``tell``. Composed laws join it as the step records
    say (:meth:`Snapshot.load`): one an operator accepted (an ``accept`` event) from the record of the
    next measurement, where it was first fitted; until then it is still one of the suggested. ``events``:
    all the journal's events, typed (:func:`~abduce.controller.journal.events.read`), when the caller has
    read them already.
    """
    from abduce.controller.core.snapshot import Snapshot

    spec = spec_of(journal.config())
    campaign = spec.campaign(kind=Snapshot)
    events = list(read(journal)) if events is None else events
    refused, skipped, _ = refused_points(events)  # (request id, point index) pairs: a batch's points apart
    decisions = {(e.request_id, e.body.index): e.body for e in events if e.kind == "decision"}
    asked = {e.request_id: e.body for e in events if e.kind == "request"}
    measurements, failed, asked_by, records, fits = [], [], [], [], {}
    attempts: dict[int, int] = {}  # as the campaign counts them: readings skipped while n was this
    expected: dict[str, str] = {}  # request id -> the id the campaign asks at its step (when first seen)
    settled: dict[str, set[int]] = {}  # request id -> its points already told or skipped
    for e in events:
        # asked, aborted at the instrument, skipped (this event: an earlier timeout of the same request is not)
        was_aborted = e.kind == "error" and e.body.stage == "instrument" and e.body.skipped
        point = (e.request_id, e.body.index) if e.kind == "measurement" else None
        if not was_aborted and (e.kind != "measurement" or (point in refused and point not in skipped)):
            continue
        if upto is not None and len(measurements) >= upto:
            break
        # cheap proof that this journal is this campaign's (a retell re-asks every step instead)
        request = asked.get(e.request_id)
        step = request.step if request is not None else -1
        if e.request_id not in expected:
            expected[e.request_id] = campaign.request_id(step, attempts.get(step, 0))
            if e.request_id == expected[e.request_id]:
                asked_by.append(request.hypothesis)  # one choice per request, however many points
        if e.request_id != expected[e.request_id]:
            raise JournalError(
                f"{journal.path}: request {e.request_id} is not the one this campaign asks at step "
                f"{step}: the journal was written by a campaign with other settings"
            )
        done = settled.setdefault(e.request_id, set())
        if point in skipped or was_aborted:
            if was_aborted:  # the campaign skips the points of the request still open, not those told before
                everything = request.points or (request.x,)
                lost = [x for i, x in enumerate(everything) if i not in done]
                done.update(range(len(everything)))
            else:
                lost = [e.body.x]
                done.add(e.body.index)
            failed.extend(lost)
            attempts[len(measurements)] = attempts.get(len(measurements), 0) + len(lost)
            continue
        done.add(e.body.index)
        measurements.append((e.request_id, e.body.x, e.body.y, e.body.y_sd))
        if point in decisions:
            records.append(decisions[point].step_record())
            fits.update(decisions[point].fits)
    if campaign.space.is_finite:
        points = [m[1] for m in measurements] + failed
        off = [x for x, i in zip(points, campaign.space.indices_of(points)) if i is None]
        if off:
            raise JournalError(
                f"{journal.path}: x = {list(off[0])} was measured but is not one of the campaign's "
                f"candidates ({len(off)} such points): the journal was written for another space"
            )
    return spec, campaign.load(measurements, failed, asked_by, records, fits)


def rebuild(journal: Journal, upto: int | None = None) -> tuple[RunSpec, Campaign]:
    """The journal's campaign after its first ``upto`` measurements (all by default)."""
    from abduce.controller.journal.resume import retell

    spec = spec_of(journal.config())
    resumed = retell(spec.campaign(), journal, limit=upto)
    return spec, resumed.campaign


def transfer_from_run(run: str | os.PathLike, **given: float | None) -> Transfer:
    """:func:`transfer_from` the run ``run`` (a run directory or its journal), opened read-only."""
    with Journal.open(journal_path(run), readonly=True) as journal:
        return transfer_from(journal, str(run), **given)


def transfer_from(journal: Journal, source: str, **given: float | None) -> Transfer:
    """What a new campaign takes from the journal's campaign at its end (:meth:`Transfer.of
    <abduce.controller.recipe.transfer.Transfer.of>` of its :func:`snapshot`; ``source``: the run as the user
    named it; ``given``: ``temper``, ``share``, ``drift``, ``carry``, None or left out for the defaults).

    Raises:
        ConfigError: the journal's campaign has no fitted law; JournalError: see :func:`snapshot`.
    """
    from abduce.controller.recipe.transfer import Transfer

    _, campaign = snapshot(journal)
    return Transfer.of(campaign, source, **{k: v for k, v in given.items() if v is not None})


def with_transfer(settings: Settings, resuming: bool) -> Settings:
    """A daemon's settings with ``[campaign] prior_from`` read into its recipe's ``transfer``: from the past run
    when the campaign starts; from its own journal when it resumes (what was transferred then, whatever the
    past run holds now, and even where ``prior_from`` has since left the config). A campaign started without
    ``prior_from`` is returned as it is.

    Raises:
        ConfigError: the past run cannot be read or has nothing to transfer; JournalError: the journal
            being resumed records no transfer (it was started without ``prior_from``).
    """
    c = settings.campaign
    if resuming:  # what the journal says was transferred, whatever the config says now
        path = journal_path(settings.daemon.run_dir)
        with Journal.open(path, readonly=True) as journal:
            transfer = spec_of(journal.config()).transfer
        if transfer is None and c.prior_from is not None:
            raise JournalError(f"{path}: the campaign was started without prior_from; it cannot resume with one")
    elif c.prior_from is None:
        return settings
    else:
        transfer = transfer_from_run(
            c.prior_from, temper=c.temper, share=c.transfer_share, drift=c.transfer_drift, carry=c.transfer_carry
        )
    return settings.model_copy(update={"campaign": c.model_copy(update={"transfer": transfer})})
