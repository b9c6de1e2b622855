"""The journal's promises, one at a time, with no campaign: what ``controller/journal/store.py``'s
docstring says, checked where a slip in the code would not show in a campaign run.

* the file format: SQLite with ``application_id`` 0x0ABDCE01 and ``user_version`` 1,
  read straight from the file's header (offsets 68 and 60, big-endian, per SQLite's
  file format), and a hand-built file with them is opened;
* refusals name the problem, leave the file untouched and release the lock;
* durability: "now" is fsynced before ``append`` returns, "background" by the next
  "now" (or flush), "next" rides on the next fsync; what is fsynced is the file
  at ``PATH-wal`` now, even after it was replaced;
* blobs are checked against their sha256 when read;
* closing releases the lock and every file descriptor.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gc
import hashlib
import math
import os
import sqlite3
import struct
from pathlib import Path

import pytest

from abduce.controller.journal.store import Journal, JournalError, JournalLocked

CONFIG = {"policy": "discriminate", "seed": 0}
APP_ID = 0x0ABDCE01  # the format's constants: files written by this version must keep opening
SCHEMA = 1

SCHEMA_SQL = """
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('config', 'request', 'measurement', 'decision', 'reply', 'error')),
    request_id TEXT, key_id TEXT, body TEXT NOT NULL, blob BLOB, sha256 TEXT);
"""


def header_ints(path: Path) -> tuple[int, int]:
    """(user_version, application_id) from the SQLite file header."""
    head = path.read_bytes()[:100]
    return struct.unpack(">i", head[60:64])[0], struct.unpack(">i", head[68:72])[0]


def lock_is_free(path: Path) -> bool:
    with open(f"{path}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def hand_built(path: Path, app_id: int = APP_ID, version: int = SCHEMA, rows=(("config", '{"a": 1}'),)) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file, as Journal.create leaves it
    conn.execute(f"PRAGMA application_id={app_id}")
    conn.execute(f"PRAGMA user_version={version}")
    conn.executescript(SCHEMA_SQL)
    for kind, body in rows:
        conn.execute("INSERT INTO events (t, kind, body) VALUES (0, ?, ?)", (kind, body))
    conn.commit()
    conn.close()
    return path


def open_fds() -> set[str]:
    """This process's open file descriptors, after collecting garbage (an unreferenced file object left
    by an earlier test would otherwise close its fd in the middle of a comparison)."""
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


class Fsyncs:
    """os.fsync, recording the inode of each file it syncs (and calling the real one)."""

    def __init__(self, real):
        self.real, self.inodes = real, []

    def __call__(self, fd):
        self.inodes.append(os.fstat(fd).st_ino)
        return self.real(fd)


@pytest.fixture
def fsyncs(monkeypatch):
    spy = Fsyncs(os.fsync)
    monkeypatch.setattr(os, "fsync", spy)
    return spy


def wal_inode(path: Path) -> int:
    return os.stat(f"{path}-wal").st_ino


# ------------------------------------------------------------------ the file format


def test_a_new_journal_carries_the_format_constants_in_its_header(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal.create(path, CONFIG).close()
    assert header_ints(path) == (SCHEMA, APP_ID)


def test_a_hand_built_file_with_the_constants_is_a_journal(tmp_path):
    path = hand_built(tmp_path / "h.sqlite")
    with Journal.open(path) as j:
        assert j.config() == {"a": 1}
        j.append("error", {"reason": "x"})
    with Journal.open(path, readonly=True) as j:
        assert [e.kind for e in j.events()] == ["config", "error"]


@pytest.mark.parametrize("app_id", [0, 1, APP_ID - 1, APP_ID + 1, 0x7FFFFFFF, -1, -APP_ID])
def test_any_other_application_id_is_another_application(tmp_path, app_id):
    path = hand_built(tmp_path / "o.sqlite", app_id=app_id)
    before = path.read_bytes()
    with pytest.raises(JournalError, match="another application") as info:
        Journal.open(path)
    assert path.read_bytes() == before and lock_is_free(path)  # released, though the error is still held
    del info


@pytest.mark.parametrize("version", [0, 2, 99, 1000, -1])
def test_any_other_schema_version_is_refused(tmp_path, version):
    path = hand_built(tmp_path / "v.sqlite", version=version)
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(JournalError, match=f"schema version {version}"):
            Journal.open(path, readonly=readonly)
    assert path.read_bytes() == before
    # the refusal released the lock, even while the error is held (as a caller reporting it would):
    # a second try is refused for the same reason, not as locked
    with pytest.raises(JournalError, match=f"schema version {version}") as first:
        Journal.open(path)
    assert lock_is_free(path)
    with pytest.raises(JournalError, match=f"schema version {version}") as info:
        Journal.open(path)
    assert not isinstance(info.value, JournalLocked) and first.value is not info.value


@pytest.mark.parametrize("size", [0, 1, 16, 50, 99])
def test_a_file_shorter_than_the_sqlite_header_is_truncated(tmp_path, size):
    good = tmp_path / "good.sqlite"
    Journal.create(good, CONFIG).close()
    path = tmp_path / "short.sqlite"
    path.write_bytes(good.read_bytes()[:size])  # starts with SQLite's own magic, when long enough
    with pytest.raises(JournalError, match="truncated"):
        Journal.open(path)
    assert path.read_bytes() == good.read_bytes()[:size]


def test_a_long_file_that_is_not_sqlite_is_refused_as_such(tmp_path):
    path = tmp_path / "text.sqlite"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(JournalError, match="not an SQLite database"):
        Journal.open(path)


def test_a_missing_file_or_a_folder_is_refused(tmp_path):
    with pytest.raises(JournalError, match="does not exist"):
        Journal.open(tmp_path / "nothing.sqlite")
    with pytest.raises(JournalError, match="not a file"):
        Journal.open(tmp_path)


def test_a_file_failing_sqlites_quick_check_is_corrupt(tmp_path):
    path = hand_built(tmp_path / "c.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints=ON")  # a row the CHECK constraint forbids: quick_check reports it
    conn.execute("INSERT INTO events (t, kind, body) VALUES (0, 'bogus', '{}')")
    conn.commit()
    conn.close()
    assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone()[0] != "ok"
    before = path.read_bytes()
    # (opened for writing: SQLite's quick_check skips CHECK constraints on a read-only connection)
    with pytest.raises(JournalError, match="corrupt") as info:
        Journal.open(path)
    assert path.read_bytes() == before and lock_is_free(path)
    del info


def test_a_file_sqlite_cannot_read_is_refused_and_the_lock_released(tmp_path):
    good = tmp_path / "good.sqlite"
    Journal.create(good, CONFIG).close()
    data = bytearray(good.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # SQLite's header intact, every page garbage
    path = tmp_path / "bad.sqlite"
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="not a readable abduce journal") as first:  # SQLite's own error
        Journal.open(path)
    assert lock_is_free(path)  # released, though the error is still held
    with pytest.raises(JournalError) as info:
        Journal.open(path)
    assert not isinstance(info.value, JournalLocked) and first.value is not info.value


def test_a_journal_that_sqlite_cannot_create_is_a_journal_error(tmp_path):
    path = tmp_path / "dangling.sqlite"
    path.symlink_to(tmp_path / "no-such-folder" / "target.sqlite")  # does not exist; cannot be created through
    with pytest.raises(JournalError, match="cannot create"):
        Journal.create(path, CONFIG)
    assert lock_is_free(path)


def test_a_leftover_that_cannot_be_cleared_is_a_journal_error(tmp_path):
    """A stop during an earlier creation leaves ``.NAME.creating``; one that cannot be removed (here a
    folder) makes create fail with a JournalError, leave no journal and release the lock."""
    path = tmp_path / "j.sqlite"
    (tmp_path / ".j.sqlite.creating").mkdir()
    with pytest.raises(JournalError, match="cannot create journal") as info:
        Journal.create(path, CONFIG)
    assert not path.exists() and lock_is_free(path)
    del info


def test_create_makes_the_missing_folders_and_refuses_an_existing_file(tmp_path):
    path = tmp_path / "a" / "b" / "j.sqlite"
    Journal.create(path, CONFIG).close()
    with pytest.raises(JournalError, match="never overwritten"):
        Journal.create(path, CONFIG)
    Journal.create(tmp_path / "a" / "other.sqlite", CONFIG).close()  # the folder exists: fine


# ------------------------------------------------------------------ opening modes, locks, closing


def test_open_defaults_to_writing_and_readonly_refuses_to(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal.create(path, CONFIG).close()
    with Journal.open(path) as j:
        assert j.append("error", {"n": 1}) == 2
        with pytest.raises(JournalLocked):
            Journal.open(path)
        with Journal.open(path, readonly=True) as r:  # readers are welcome while it is written
            with pytest.raises(JournalError, match="read-only"):
                r.append("error", {"n": 2})
            assert [e.body for e in r.events("error")] == [{"n": 1}]
    assert lock_is_free(path)


def test_a_writable_journal_commits_without_sqlite_fsyncing(tmp_path):
    """``synchronous=NORMAL``: SQLite does not fsync on commit; append() fsyncs the WAL itself."""
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG) as j:
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Journal.open(path) as j:
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_closing_releases_the_lock_and_every_file_descriptor(tmp_path):
    path = tmp_path / "j.sqlite"
    before = open_fds()
    j = Journal.create(path, CONFIG)
    j.append("measurement", {"y": 1.0}, durability="background")
    j.append("decision", {"step": 0}, durability="next")
    assert not lock_is_free(path)
    j.close()
    assert lock_is_free(path) and open_fds() == before
    r = Journal.open(path, readonly=True)
    list(r.events())
    r.close()
    assert open_fds() == before


def test_closing_after_a_failed_fsync_does_not_raise_again(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(JournalError, match="fsync"):
        j.append("error", {"n": 1})
    j.close()  # already reported by the append that failed
    assert lock_is_free(path)


# ------------------------------------------------------------------ durability


def test_now_is_fsynced_before_append_returns(tmp_path, fsyncs):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    start = len(fsyncs.inodes)
    j.append("request", {"step": 0}, request_id="r")
    assert fsyncs.inodes[start:] == [wal_inode(path)]
    j.append("request", {"step": 1}, request_id="s", durability="".join(["n", "o", "w"]))  # equal, not identical
    assert fsyncs.inodes[start:] == [wal_inode(path)] * 2
    j.close()


def test_next_is_not_fsynced_until_the_next_fsync(tmp_path, fsyncs):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    start = len(fsyncs.inodes)
    j.append("decision", {"step": 0}, durability="next")
    j.append("decision", {"step": 1}, durability="".join(["ne", "xt"]))
    j.flush()
    assert fsyncs.inodes[start:] == [wal_inode(path)]  # one fsync, the flush's
    j.close()


@pytest.mark.parametrize("how", ["background", "".join(["back", "ground"])])
def test_background_is_fsynced_by_the_next_now_append(tmp_path, fsyncs, how):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    start = len(fsyncs.inodes)
    j.append("measurement", {"y": 1.0}, request_id="r", durability=how)
    j.append("request", {"step": 1}, request_id="s")  # waits for the background one, then its own
    assert fsyncs.inodes[start:] == [wal_inode(path)] * 2
    j.close()


def test_closing_fsyncs_what_rode_on_the_next_fsync(tmp_path, fsyncs):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    start = len(fsyncs.inodes)
    j.append("decision", {"step": 0}, durability="next")
    assert fsyncs.inodes[start:] == []
    wal = wal_inode(path)
    j.close()
    assert fsyncs.inodes[start:] == [wal]  # closing is the next fsync
    r = Journal.open(path, readonly=True)
    start = len(fsyncs.inodes)
    r.close()
    assert fsyncs.inodes[start:] == []  # a reader has nothing to make durable


def test_a_failed_background_fsync_is_reported_by_the_next_append(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    j.append("measurement", {"y": 1.0}, durability="background")  # returns at once
    with pytest.raises(JournalError, match="background fsync"):
        j.append("request", {"step": 1})
    monkeypatch.undo()
    j.close()


def test_the_wal_that_is_fsynced_is_the_one_at_the_path_now(tmp_path, fsyncs):
    """If the file at PATH-wal is replaced, the next fsync is of the new file (and the old fd is closed).

    Replaced three times by spare files picked by their inode numbers -- the middle one, then the
    lowest, then the highest -- so that the new number is once below and once above the old one
    (a reopen must not hinge on their order)."""
    path = tmp_path / "j.sqlite"
    wal = Path(f"{path}-wal")
    spares = []
    for i in range(3):
        spares.append(tmp_path / f"spare{i}")
        spares[-1].write_bytes(b"")
    low, middle, high = sorted(spares, key=lambda f: f.stat().st_ino)
    j = Journal.create(path, CONFIG)
    fds = open_fds()
    # The old fd is closed: as many fds are open after each reopen as before. Counted, not compared as a set:
    # the new file takes the lowest free number, which is the old one's only when no lower one is free (an
    # earlier test's file closed in the meantime left one free, and the sets differed, 1 run in 8 under -n 2).
    # No automatic collection mid-loop: it could close an earlier test's leftover file and change the count.
    gc.disable()
    try:
        for spare in (middle, low, high):
            before = wal_inode(path)
            os.replace(spare, wal)
            j.flush()
            assert fsyncs.inodes[-1] == wal_inode(path) != before
            assert len(os.listdir("/proc/self/fd")) == len(fds)
    finally:
        gc.enable()
    j.close()


def test_a_missing_wal_is_a_journal_error(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    os.unlink(f"{path}-wal")
    with pytest.raises(JournalError, match="WAL"):
        j.flush()
    j.close()  # its own flush fails the same way; close reports nothing more and lets go


# ------------------------------------------------------------------ what is written and read back


def test_bodies_may_hold_nan_and_infinity(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG) as j:
        j.append("measurement", {"y": math.nan, "x": [math.inf, -math.inf]}, request_id="r")
    with Journal.open(path, readonly=True) as j:
        (event,) = j.events("measurement")
        assert math.isnan(event.body["y"]) and event.body["x"] == [math.inf, -math.inf]


def test_events_are_read_in_order_by_kind_with_their_fields(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG) as j:
        j.append("request", {"step": 0}, request_id="r0")
        j.append("reply", {"ok": True}, request_id="r0", key_id="lab", blob=b"\x00\x01\x02")
        j.append("measurement", {"y": 1.5}, request_id="r0", key_id="lab")
        j.append("request", {"step": 1}, request_id="r1")
    with Journal.open(path, readonly=True) as j:
        events = list(j.events())
        assert [(e.seq, e.kind, e.request_id) for e in events] == [
            (1, "config", None),
            (2, "request", "r0"),
            (3, "reply", "r0"),
            (4, "measurement", "r0"),
            (5, "request", "r1"),
        ]
        assert [e.body for e in j.events("request")] == [{"step": 0}, {"step": 1}]
        (reply,) = j.events("reply")
        assert (reply.key_id, reply.blob, reply.body) == ("lab", b"\x00\x01\x02", {"ok": True})
        assert events[0].blob is None and events[0].body == CONFIG and j.config() == CONFIG
        assert list(j.events("error")) == []
        with pytest.raises(dataclasses.FrozenInstanceError):
            events[0].body = {}


def test_a_journal_without_a_config_event_says_so(tmp_path):
    path = hand_built(tmp_path / "n.sqlite", rows=(("error", "{}"),))
    with Journal.open(path, readonly=True) as j, pytest.raises(JournalError, match="no config"):
        j.config()


def _stored_digest_ordered(greater: bool) -> tuple[bytes, bytes]:
    """A (blob, changed blob) pair whose sha256 hex digests compare as asked (found by a fixed search)."""
    blob = b"spectrum"
    digest = hashlib.sha256(blob).hexdigest()
    for i in range(1000):
        changed = b"spectrum-%d" % i
        if (hashlib.sha256(changed).hexdigest() > digest) is greater:
            return blob, changed
    raise AssertionError("unreachable")


@pytest.mark.parametrize("greater", [True, False])
def test_a_blob_that_changed_on_disk_fails_its_checksum(tmp_path, greater):
    blob, changed = _stored_digest_ordered(greater)
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG) as j:
        j.append("reply", {}, request_id="r", blob=blob)
        j.append("reply", {}, request_id="s")  # no blob: nothing to check
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")  # what a bit flip would do without asking
    conn.execute("UPDATE events SET blob = ? WHERE request_id = 'r'", (changed,))
    conn.commit()
    conn.close()
    with Journal.open(path, readonly=True) as j:
        with pytest.raises(JournalError, match="checksum"):
            list(j.events())
        assert [e.request_id for e in j.events("config")] == [None]


def test_unknown_kinds_and_durabilities_are_refused(tmp_path):
    with Journal.create(tmp_path / "j.sqlite", CONFIG) as j:
        with pytest.raises(ValueError, match="kind"):
            j.append("note", {})
        with pytest.raises(ValueError, match="durability"):
            j.append("error", {}, durability="soon")
        assert [e.kind for e in j.events()] == ["config"]
