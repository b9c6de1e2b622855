"""A run directory kept from one thread of its own, whichever thread drives the campaign.

SQLite binds a connection to the thread that opened it, and a bluesky ``RunEngine`` runs its plans --
so the optimizer's ``suggest`` and ``ingest`` -- on its event-loop thread, while a notebook builds,
checkpoints and closes the optimizer on the main thread. :class:`RunRecord` therefore opens, writes,
reads and closes its :class:`~abduce.controller.journal.rundir.RunDirectory` on one worker thread
(a one-thread executor; each call waits for its result, so the order of events is the callers'
order, and an error reaches the caller as raised).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.journal.events import append
from abduce.controller.journal.resume import Resumed, retell
from abduce.controller.journal.rundir import RunDirectory

T = TypeVar("T")


class RunRecord:
    """A :class:`RunDirectory` (its journal and line files) used from any thread. Build with :meth:`create`
    or :meth:`reopen`."""

    def __init__(self, worker: ThreadPoolExecutor, run: RunDirectory) -> None:
        self._worker, self._run = worker, run

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any]) -> RunRecord:
        """A new run directory whose journal starts with ``config`` (ConfigError if ``path`` holds a run)."""
        return cls._open(lambda: RunDirectory(path, config))

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> RunRecord:
        """An existing run directory, to resume (JournalError if it holds no journal, or it is locked)."""
        return cls._open(lambda: RunDirectory.reopen(path))

    @classmethod
    def _open(cls, make: Callable[[], RunDirectory]) -> RunRecord:
        worker = ThreadPoolExecutor(1, thread_name_prefix="abduce-journal")
        try:
            return cls(worker, worker.submit(make).result())
        except BaseException:
            worker.shutdown()
            raise

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._worker.submit(fn, *args, **kwargs).result()

    @property
    def path(self):
        return self._run.path

    def config(self) -> dict[str, Any]:
        """The journal's config event."""
        return self._call(self._run.journal.config)

    def retell(self, campaign: Campaign) -> Resumed:
        """:func:`~abduce.controller.journal.resume.retell` the journal to a fresh ``campaign``."""
        return self._call(retell, campaign, self._run.journal)

    @property
    def journal(self) -> _WorkerJournal:
        """The journal for :func:`~abduce.controller.drive.loop.tell_point` and
        :func:`~abduce.controller.journal.events.append`: each append made on the worker thread."""
        return _WorkerJournal(self)

    def append(self, body: Any, request_id: str, durability: str = "now") -> None:
        """Journal one event (:func:`~abduce.controller.journal.events.append`)."""
        append(self.journal, body, request_id=request_id, durability=durability)

    def step(self, record: StepRecord) -> None:
        """Add a step record to the line files (``measurements.jsonl``, ``decisions.jsonl``)."""
        self._call(self._run, record)

    def flush(self) -> None:
        """Make every committed event survive a power cut (fsync the journal's WAL)."""
        self._call(self._run.journal.flush)

    def finish(self, campaign: Campaign) -> None:
        """Write ``summary.json`` and close."""
        self._close(lambda: self._run.finish(campaign))

    def close(self) -> None:
        """Close the line files and the journal (its lock released)."""
        self._close(self._run.close)

    def _close(self, fn: Callable[[], Any]) -> None:
        try:
            self._call(fn)
        finally:
            self._worker.shutdown()


class _WorkerJournal:
    """A :class:`~abduce.controller.journal.store.Journal`'s ``append``, run on a :class:`RunRecord`'s worker
    thread (the one thread its SQLite connection may be used from)."""

    def __init__(self, record: RunRecord) -> None:
        self._record = record

    def append(self, *args: Any, **kwargs: Any) -> int:
        """:meth:`Journal.append <abduce.controller.journal.store.Journal.append>`, on the worker thread."""
        record = self._record
        return record._call(record._run.journal.append, *args, **kwargs)
