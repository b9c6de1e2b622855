"""An operator's accept of a suggested composed law (``abduce accept RUN NAME``), applied between requests.

A campaign with ``propose = "suggest"`` holds the composed laws a proposal round found better than every
law (:mod:`abduce.controller.core.abduction`; or with P if added >= ``propose_admit``) until a person accepts
one. An accept is a change of
the campaign's hypotheses, so it happens only where no fit runs and no request is out: between two
requests (the loop's decision boundary), journal first::

    check (suggest mode, a request in flight, the name suggested)
    -> journal AcceptBody(name, n)     (a resume re-applies it after the same n measurements)
    -> campaign.accept(name)           (the law is fitted at the next measurement, recorded with that step)

The daemon takes accepts on its control thread and queues them (:class:`AcceptQueue`); its campaign thread
applies them between requests, also while paused, and the control lane answers when one was applied or
refused (the lane keeps answering ``status`` meanwhile: :class:`~abduce.controller.drive.control.ControlServer`
replies to a future when it is done).
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from abduce.controller.core.campaign import Campaign
from abduce.controller.errors import AbduceError, CampaignStateError, ConfigError
from abduce.controller.journal.events import AcceptBody, append
from abduce.controller.journal.store import Journal

log = logging.getLogger("abduce.daemon")


def suggested(campaign: Campaign) -> list[str]:
    """The composed laws waiting for an operator's accept, by name (sorted)."""
    return sorted(campaign.abduction.suggested)


def accept(campaign: Campaign, name: str, journal: Journal | None = None, by: str = "operator") -> dict:
    """Accept the suggested law ``name``: checked, journalled (``accept``, with ``campaign.n``), then added
    (:meth:`Campaign.accept`); returns its proposal as recorded (``added`` True).

    Raises:
        ConfigError: the campaign does not suggest (``propose`` is not ``"suggest"``), nothing is suggested
            yet, no suggestion has that name (the message names those suggested), or the journal is older
            than accepts (:meth:`~abduce.controller.journal.store.Journal.takes`).
        CampaignStateError: a request is out (accept between requests).
    """
    mode = campaign.settings.propose
    if mode != "suggest":
        raise ConfigError(
            f"this campaign has propose = {mode!r}: only a campaign with propose = 'suggest' holds composed laws "
            "for an operator to accept" + (" (it adds them itself)" if mode == "add" else "")
        )
    if campaign.pending is not None:
        raise CampaignStateError(f"request {campaign.pending.request_id} is out: accept between requests")
    waiting = suggested(campaign)
    if not waiting:
        raise ConfigError(
            f"nothing is suggested yet (after {campaign.n} measurements): a proposal round suggests a law only "
            "when it explains the data better than every law (or P if added >= propose_admit); "
            "abduce propose RUN shows the best candidates"
        )
    if name not in waiting:
        raise ConfigError(f"no suggested law is named {name!r}; suggested: {', '.join(waiting)}")
    if journal is not None and not journal.takes(AcceptBody.kind):
        raise ConfigError(
            f"{journal.path} was created by an abduce from before accepts were journalled and cannot record "
            "one; nothing accepted (a new run can: abduce propose RUN shows what it would propose)"
        )
    if journal is not None:  # before the campaign changes: a resume accepts it at the same place
        append(journal, AcceptBody(name=name, n=campaign.n, by=by))
    record = campaign.accept(name)
    log.warning("%s accepted %s (%s) after %d measurements", by, name, record.get("formula"), campaign.n)
    return record


def say_suggested(record, run_dir) -> None:
    """Log each composed law the step (a :class:`~abduce.controller.core.settings.StepRecord`) suggested, and
    how to accept it."""
    for p in record.proposals:
        if p.get("suggested"):
            log.warning(
                "after %d measurements %s (%s) explains the data better than every law, or is credible "
                "(P = %.3f if added); "
                "accept it with: abduce accept %s %r",
                record.step + 1,
                p["name"],
                p["formula"],
                p["probability"] or 0.0,
                run_dir,
                p["name"],
            )


class AcceptQueue:
    """Accepts from the control thread (:meth:`submit`), applied by the campaign thread (:meth:`apply`).

    A future per accept: its result ``{"accepted": the proposal as recorded, "n": measurements so far}``, its
    exception the refusal. Once
    :meth:`close` d (the campaign ended), every accept waiting and every later one is refused.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Future]] = queue.Queue()
        self._lock = threading.Lock()
        self._closed: str | None = "the campaign has not started yet"

    def open(self) -> None:
        """The campaign runs: accepts are taken from now on."""
        with self._lock:
            self._closed = None

    def submit(self, name: object) -> Future:
        """Queue an accept of ``name`` (control thread); the future is resolved by :meth:`apply`."""
        future: Future = Future()
        if not isinstance(name, str) or not name:
            future.set_exception(ConfigError("accept needs the name of a suggested law (args: {'name': ...})"))
            return future
        with self._lock:
            if self._closed is not None:
                future.set_exception(AbduceError(f"nothing can be accepted: {self._closed}"))
            else:
                self._queue.put((name, future))
        return future

    def apply(self, campaign: Campaign, journal: Journal, ready: bool = True) -> list[dict]:
        """Apply the accepts waiting (campaign thread, between requests); returns those applied. ``ready``:
        False while a request from before a restart is still to be settled (its request must be asked as it
        was), and then they wait."""
        applied = []
        while ready and campaign.pending is None:
            try:
                name, future = self._queue.get_nowait()
            except queue.Empty:
                break
            try:
                record = accept(campaign, name, journal)
            except AbduceError as exc:
                future.set_exception(exc)
                continue
            except Exception as exc:  # anything else is the daemon's to handle; the operator still gets an answer
                future.set_exception(exc)
                raise
            future.set_result({"accepted": record, "n": campaign.n})
            applied.append(record)
        return applied

    def close(self, reason: str) -> None:
        """Refuse every accept waiting, and every later one, with ``reason``."""
        with self._lock:
            self._closed = reason
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                future.set_exception(AbduceError(f"not accepted: {reason}"))
