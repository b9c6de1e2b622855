"""The campaign journal: an append-only SQLite file, written before anything is acted on.

One journal per campaign. It is the record a campaign is rebuilt from after a
crash (:func:`replay`) and the corpus for replays. Guarantees:

* **Written before acted on, durable before anything is sent.** WAL mode;
  every append is committed (it survives a killed process) before
  :meth:`Journal.append` returns. What survives a *power cut* is chosen per
  event by ``durability``: ``"now"`` fsyncs the WAL before returning (a
  request, before it is sent; an error); ``"background"`` starts that fsync on
  a helper thread and returns, and the next ``"now"`` append waits for it (a
  measurement: its fsync runs while the campaign refits and decides, and
  completes before the next request goes out); ``"next"`` rides on the next
  fsync (a decision, which replay recomputes). So a power cut loses at most
  a measurement whose request is durable and still in flight, which resume
  settles with ``query`` from the agent's result cache. One fsync of the WAL
  per step sits on the critical path instead of two.
* **Append-only.** Triggers refuse ``UPDATE`` and ``DELETE`` on the event
  table; nothing in abduce rewrites history.
* **Never misread.** The file carries SQLite's ``application_id`` (abduce's
  own) and a schema version in ``user_version``. A file that is not SQLite,
  is truncated or corrupt, belongs to another application, or has another
  schema version is refused with :class:`JournalError` naming the problem, and
  is never written to.
* **One writer.** An exclusive lock (``flock`` on ``PATH.lock``) is held while
  a journal is open for writing; a second opener gets :class:`JournalLocked`.

Events (``events`` table): ``seq`` (1, 2, ...), ``t`` (UTC seconds), ``kind``,
``request_id``, ``key_id`` (who said it, for protocol events), ``body``
(JSON) and ``blob`` (raw bytes, e.g. array buffers), with ``sha256`` of the
blob. Kinds: ``config`` (first event: the campaign's settings, seed and
library versions), ``request`` (a measure request sent), ``measurement`` (a
measurement told: request id, x, y), ``decision`` (a step record), ``reply``
(a raw protocol reply), ``error``, ``accept`` (an operator's accept of a suggested law; journals created
before it existed refuse it: :meth:`Journal.takes`). This module stores bodies as JSON and knows nothing of
what they mean: their models (one per kind), the writer that builds them and the reader that
checks them are :mod:`abduce.controller.journal.events`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from abduce.controller.errors import AbduceError

Durability = Literal["now", "background", "next"]

APPLICATION_ID = 0x0ABDCE01  # SQLite PRAGMA application_id of abduce journals
SCHEMA_VERSION = 1
KINDS = ("config", "request", "measurement", "decision", "reply", "error", "accept")
"""The event kinds; the table's CHECK names those of the abduce that created it (``accept`` came later:
:meth:`Journal.takes` says whether an older journal admits it)."""

_SCHEMA = f"""
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    t REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in KINDS)})),
    request_id TEXT,
    key_id TEXT,
    body TEXT NOT NULL,
    blob BLOB,
    sha256 TEXT
);
CREATE INDEX events_request ON events (request_id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""


def journal_path(run: str | os.PathLike) -> Path:
    """A run directory or a journal file -> the journal file."""
    path = Path(run)
    return path / "journal.sqlite" if path.is_dir() else path


class JournalError(AbduceError):
    """A file that cannot be used as this journal (says why); it is left untouched."""


class JournalLocked(JournalError):
    """Another process holds this journal open for writing."""


@dataclass(frozen=True)
class Event:
    seq: int
    t: float
    kind: str
    request_id: str | None
    key_id: str | None
    body: Any
    blob: bytes | None


class Journal:
    """An open journal. Use :meth:`create` for a new campaign, :meth:`open` to resume or read.

    Args (internal): the connection, the path, and the lock file held (None when read-only).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, lock) -> None:
        self._conn, self.path, self._lock = conn, path, lock
        self._wal: tuple[int, int] | None = None  # (fd, inode) of PATH-wal, fsynced by hand
        self._syncer: ThreadPoolExecutor | None = None
        self._pending_sync: Future | None = None

    # ------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any]) -> Journal:
        """A new journal whose first event is ``config``; refuses an existing file.

        Created whole or not at all: the schema and the config event are written to
        ``.NAME.creating`` beside it (rollback journal, synchronous commits), which is then
        renamed into place and the directory fsync'd, so a stop at any moment leaves either
        no journal (the next start begins afresh) or a complete one (it resumes).
        """
        path = Path(path)
        if path.exists():
            raise JournalError(f"{path} already exists; a journal is never overwritten (resume it instead)")
        if path.is_symlink():  # dangling: the rename below would replace the link, not create its target
            raise JournalError(
                f"cannot create journal {path}: it is a symbolic link to {os.readlink(path)}, which does not exist"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = cls._lock_for(path)
        tmp = path.with_name(f".{path.name}.creating")
        try:
            for stale in (tmp, Path(f"{tmp}-journal")):  # left by a stop during an earlier creation
                stale.unlink(missing_ok=True)
            with sqlite3.connect(tmp, isolation_level=None) as build:
                build.execute("PRAGMA synchronous=FULL")
                build.execute(f"PRAGMA application_id={APPLICATION_ID}")
                build.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                build.executescript(_SCHEMA)
                build.execute(
                    "INSERT INTO events (t, kind, request_id, key_id, body, blob, sha256) "
                    "VALUES (?, 'config', NULL, NULL, ?, NULL, NULL)",
                    (time.time(), json.dumps(config)),
                )
            build.close()
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # commits do not fsync; append() fsyncs the WAL itself
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")  # a first write: the WAL exists from now on
        except (sqlite3.Error, OSError) as exc:
            lock.close()
            raise JournalError(f"cannot create journal {path}: {exc}") from None
        journal = cls(conn, path, lock)
        journal.flush()
        return journal

    @classmethod
    def open(cls, path: str | os.PathLike, readonly: bool = False) -> Journal:
        """Open an existing journal after checking it is one (and, to write, that no one else has it).
        ``readonly``: nothing is written, and a closed journal's folder gets no ``-wal``/``-shm`` files."""
        path = Path(path)
        if not path.is_file():
            raise JournalError(f"{path} does not exist or is not a file")
        with open(path, "rb") as f:
            head = f.read(100)
        if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
            raise JournalError(f"{path} is not an abduce journal (not an SQLite database, or truncated)")
        lock = None if readonly else cls._lock_for(path)
        try:
            uri = f"file:{path}?mode=ro" if readonly else f"file:{path}?mode=rw"
            if readonly and not Path(f"{path}-wal").exists():
                # closed (no writer, every write checkpointed into the file): read it as it is, leaving
                # nothing beside it (a WAL reader would create -wal and -shm in the run directory)
                uri += "&immutable=1"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id != APPLICATION_ID:
                raise JournalError(f"{path} is an SQLite database of another application (application_id {app_id:#x})")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise JournalError(
                    f"{path} has journal schema version {version}; this abduce reads version {SCHEMA_VERSION} "
                    "and has no migration for it"
                )
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise JournalError(f"{path} is corrupt: {check}")
            if not readonly:
                conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            if lock is not None:
                lock.close()
            raise JournalError(f"{path} is not a readable abduce journal: {exc}") from None
        except JournalError:
            if lock is not None:
                lock.close()
            raise
        return cls(conn, path, lock)

    @staticmethod
    def _lock_for(path: Path):
        lock = open(f"{path}.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JournalLocked(f"{path} is open in another process (lock {path}.lock is held)") from None
        return lock

    def close(self) -> None:
        if self._lock is not None:
            try:
                self.flush()
            except JournalError:
                pass  # already reported by the append that failed
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None
        if self._wal is not None:
            os.close(self._wal[0])
            self._wal = None
        self._conn.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ writing and reading

    def append(
        self,
        kind: str,
        body: Any,
        request_id: str | None = None,
        key_id: str | None = None,
        blob: bytes | None = None,
        durability: Durability = "now",
    ) -> int:
        """Append (commit) one event; returns its sequence number.

        ``durability`` says when it must survive a power cut (module docstring):
        ``"now"`` before returning, ``"background"`` by the next ``"now"``
        append (or :meth:`flush`), ``"next"`` with the next fsync, whenever.

        Raises:
            JournalError: the write failed (a full disk, say); nothing
                already committed is affected, and the caller must stop.
        """
        if self._lock is None:
            raise JournalError(f"{self.path} is open read-only")
        if kind not in KINDS:
            raise ValueError(f"unknown journal event kind {kind!r}")
        digest = hashlib.sha256(blob).hexdigest() if blob is not None else None
        if durability not in ("now", "background", "next"):
            raise ValueError(f"unknown durability {durability!r}")
        try:
            cur = self._conn.execute(
                "INSERT INTO events (t, kind, request_id, key_id, body, blob, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), kind, request_id, key_id, json.dumps(body, allow_nan=True), blob, digest),
            )
        except sqlite3.Error as exc:
            raise JournalError(
                f"writing {kind} to {self.path} failed: {exc} (is the disk full?); everything committed before "
                "it is kept: free space and restart to resume the campaign"
            ) from None
        if durability == "now":
            self.flush()
        elif durability == "background":
            self._wait_pending()
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="journal-fsync")
            fd = self._wal_fd()
            self._pending_sync = self._syncer.submit(os.fsync, fd)
        return int(cur.lastrowid)

    def takes(self, kind: str) -> bool:
        """Whether the events table admits ``kind``: its CHECK lists the kinds of the abduce that created it
        (a journal from before ``accept`` existed refuses one, and keeps being read and written otherwise)."""
        row = self._conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
        return kind in KINDS and row is not None and f"'{kind}'" in row[0]

    def flush(self) -> None:
        """Make every committed event survive a power cut (fsync the WAL, after any background fsync)."""
        self._wait_pending()
        try:
            os.fsync(self._wal_fd())
        except OSError as exc:
            raise JournalError(f"fsync of {self.path}-wal failed: {exc}") from None

    def _wait_pending(self) -> None:
        pending, self._pending_sync = self._pending_sync, None
        if pending is not None:
            try:
                pending.result()
            except OSError as exc:
                raise JournalError(f"background fsync of {self.path}-wal failed: {exc}") from None

    def _wal_fd(self) -> int:
        """An fd on the WAL file (reopened if SQLite replaced the file since)."""
        wal = f"{self.path}-wal"
        try:
            ino = os.stat(wal).st_ino
        except OSError as exc:
            raise JournalError(f"the WAL of {self.path} is missing: {exc}") from None
        if self._wal is None or self._wal[1] != ino:
            if self._wal is not None:
                os.close(self._wal[0])
            self._wal = (os.open(wal, os.O_RDONLY), ino)
        return self._wal[0]

    def events(self, kind: str | None = None) -> Iterator[Event]:
        """Events in order (of one kind, if given); blobs are checked against their sha256."""
        sql = "SELECT seq, t, kind, request_id, key_id, body, blob, sha256 FROM events"
        args: tuple = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        try:
            rows = self._conn.execute(sql + " ORDER BY seq", args)
            for seq, t, k, rid, key_id, body, blob, digest in rows:
                if blob is not None and hashlib.sha256(blob).hexdigest() != digest:
                    raise JournalError(f"{self.path}: event {seq} fails its checksum")
                yield Event(seq, t, k, rid, key_id, json.loads(body), blob)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} could not be read: {exc}") from None

    def config(self) -> dict[str, Any]:
        first = next(self.events("config"), None)
        if first is None:
            raise JournalError(f"{self.path} has no config event")
        return first.body
