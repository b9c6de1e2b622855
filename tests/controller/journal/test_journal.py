import json
import os
import sqlite3

import numpy as np
import pytest

from abduce.controller.core.measurements import Measurement
from abduce.controller.drive.loop import run_campaign
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal, JournalError, JournalLocked
from tests.controller.core.test_campaign import make

CONFIG = {"policy": "discriminate", "seed": 0}


def instrument_for(sim):
    return lambda r: Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]))


def test_a_journalled_campaign_replays_to_the_same_state_and_next_request(tmp_path):
    path = tmp_path / "j.sqlite"
    full, sim = make(budget=9, seed=5)
    with Journal.create(path, CONFIG) as journal:
        run_campaign(full, instrument_for(sim), journal=journal)
    kinds = [e.kind for e in Journal.open(path, readonly=True).events()]
    assert kinds[0] == "config" and kinds.count("measurement") == 9 and kinds.count("decision") == 9
    # a crash after 6 steps: replay the journal's first 6 measurements into a fresh campaign
    partial, sim2 = make(budget=9, seed=5)
    with Journal.create(tmp_path / "p.sqlite", CONFIG) as journal:
        for _ in range(6):
            r = partial.ask()
            journal.append(
                "request",
                {"step": r.step, "x": list(r.x), "hypothesis": r.hypothesis, "reason": r.reason},
                request_id=r.request_id,
            )
            m = instrument_for(sim2)(r)
            journal.append("measurement", {"x": list(m.x), "y": m.y}, request_id=r.request_id)
            partial.tell(m)
        r = partial.ask()  # sent, never answered: in flight at the crash
        journal.append(
            "request",
            {"step": r.step, "x": list(r.x), "hypothesis": r.hypothesis, "reason": r.reason},
            request_id=r.request_id,
        )
    fresh, _ = make(budget=9, seed=5)
    with Journal.open(tmp_path / "p.sqlite") as journal:
        resumed = retell(fresh, journal)
    assert resumed.campaign.history == partial.history
    assert [r.request_id for r in resumed.in_flight] == [r.request_id]
    nxt = resumed.campaign.ask()  # the request an uninterrupted run sent next
    assert (nxt.request_id, nxt.x) == (full.history[6].request_id, full.history[6].x) == (r.request_id, r.x)


def test_a_journal_of_another_campaign_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    c, sim = make(budget=6, seed=1)
    with Journal.create(path, CONFIG) as journal:
        run_campaign(c, instrument_for(sim), journal=journal)
    other, _ = make(budget=6, seed=2)
    with Journal.open(path) as journal, pytest.raises(JournalError, match="other settings"):
        retell(other, journal)


def test_truncated_corrupt_and_foreign_files_are_refused_and_left_untouched(tmp_path):
    good = tmp_path / "good.sqlite"
    with Journal.create(good, CONFIG) as j:
        j.append("error", {"reason": "x"})
    data = good.read_bytes()
    cases = {
        "truncated.sqlite": data[:50],
        "text.sqlite": b"not a database at all\n" * 10,
    }
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 2000] = b"\xff" * 2000
    cases["corrupt.sqlite"] = bytes(corrupt)
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(JournalError):
            Journal.open(p)
        assert p.read_bytes() == blob
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    before = foreign.read_bytes()
    with pytest.raises(JournalError, match="another application"):
        Journal.open(foreign)
    assert foreign.read_bytes() == before


def test_another_schema_version_is_refused_not_misread(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal.create(path, CONFIG).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="schema version 99"):
        Journal.open(path)


def test_two_writers_cannot_open_the_same_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG):
        with pytest.raises(JournalLocked):
            Journal.open(path)
        Journal.open(path, readonly=True).close()  # readers are welcome


def test_the_journal_is_append_only_and_never_overwritten(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.create(path, CONFIG) as j:
        j.append("decision", {"step": 0}, blob=b"\x00\x01")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            j._conn.execute("DELETE FROM events")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            j._conn.execute("UPDATE events SET body = '{}'")
    with pytest.raises(JournalError, match="never overwritten"):
        Journal.create(path, CONFIG)
    with Journal.open(path, readonly=True) as j:
        events = list(j.events())
        assert j.config() == CONFIG and events[-1].blob == b"\x00\x01"


def test_a_failed_write_is_a_clear_error_and_keeps_what_was_committed(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    j = Journal.create(path, CONFIG)
    j.append("decision", {"step": 0})

    class FullDisk:
        def execute(self, *a):
            raise sqlite3.OperationalError("database or disk is full")

    real = j._conn
    j._conn = FullDisk()
    with pytest.raises(JournalError, match="disk is full"):
        j.append("decision", {"step": 1})
    j._conn = real
    j.close()
    with Journal.open(path, readonly=True) as r:
        assert [e.body for e in r.events("decision")] == [{"step": 0}]


FULL_DISK = r"""
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
from abduce.controller.journal.store import Journal, JournalError
from abduce.controller.rehearse.simulated import SimulatedRun
path, limit = sys.argv[1], int(sys.argv[2])
run = SimulatedRun(hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=200, n_init=4, grid=101)
journal = Journal.create(path, {"policy": "epsilon-greedy"})
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # from here on, no file of ours may grow past `limit`
campaign = None
try:
    run.run(journal=journal)
except JournalError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(3)
sys.exit(0)
"""


def test_a_full_disk_stops_the_campaign_with_a_clear_error_and_keeps_what_was_committed(tmp_path):
    """A real size-limited file (RLIMIT_FSIZE, no root needed): the journal's writes hit the limit."""
    import subprocess
    import sys

    path = tmp_path / "j.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path), str(256 * 1024)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    error = json.loads(proc.stdout.strip().splitlines()[-1])["error"]
    assert str(path) in error and "failed" in error
    with Journal.open(path) as j:  # opens cleanly (integrity checked), and is writable again
        ids = [e.request_id for e in j.events("measurement")]
        assert len(ids) >= 5 and len(ids) == len(set(ids))
        requests = [e.request_id for e in j.events("request")]
        assert requests[: len(ids)] == ids  # every measurement's request came first, in order
    # and the campaign carries on from it once there is room: replay re-tells every committed measurement
    from abduce.controller.rehearse.simulated import SimulatedRun

    campaign, _ = SimulatedRun(
        hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=200, n_init=4, grid=101
    ).build()
    with Journal.open(path, readonly=True) as j:
        resumed = retell(campaign, j)
    assert resumed.campaign.n == len(ids)


class Disk:
    """What reached the disk: wraps ``os.fsync`` (the OS boundary) and notes, per file, how many bytes a
    *finished* fsync covered (the file's size as the call began: fsync makes everything written before it
    durable). Thread-safe: the journal's background fsync runs on a helper thread."""

    def __init__(self, real) -> None:
        import threading

        self.real, self.lock, self.covered = real, threading.Lock(), {}

    def fsync(self, fd: int) -> None:
        st = os.fstat(fd)
        self.real(fd)
        with self.lock:
            key = (st.st_dev, st.st_ino)
            self.covered[key] = max(self.covered.get(key, 0), st.st_size)

    def durable(self, path) -> bool:
        """Every byte now in ``path`` was in it when a finished fsync began."""
        st = os.stat(path)
        with self.lock:
            return st.st_size <= self.covered.get((st.st_dev, st.st_ino), -1)


def committed(path, kind: str, request_id: str) -> bool:
    """Another connection (as another process would) sees the event: it was committed, not just written."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return (
            conn.execute(
                "SELECT COUNT(*) FROM events WHERE kind = ? AND request_id = ?", (kind, request_id)
            ).fetchone()[0]
            == 1
        )


def test_every_request_is_on_disk_before_it_is_sent_and_every_measurement_committed_before_it_is_told(
    tmp_path, monkeypatch
):
    """The journal's promise (README, "Journal"): a request is committed and fsync'd before it leaves; a
    measurement is committed before the campaign is told of it, and fsync'd before the next request leaves.
    Checked at the moment of each send and each tell, against the OS's own record of fsyncs; it fails if the
    fsync is skipped, runs after the send, or an append is left uncommitted."""
    from abduce.controller.core.campaign import Campaign

    disk = Disk(os.fsync)
    monkeypatch.setattr(os, "fsync", disk.fsync)
    path = tmp_path / "j.sqlite"
    wal = tmp_path / "j.sqlite-wal"
    c, sim = make(budget=8, seed=5)
    seen = {"sent": [], "told": []}

    class Watched(Campaign):  # observes tell; the campaign itself is unchanged
        def tell(self, m):
            assert committed(path, "measurement", m.request_id), f"{m.request_id} told before it was committed"
            seen["told"].append(m.request_id)
            return super().tell(m)

    c.__class__ = Watched
    measure = instrument_for(sim)

    def send(r):
        assert committed(path, "request", r.request_id), f"{r.request_id} sent before it was committed"
        assert disk.durable(wal), f"{r.request_id} sent before the journal's WAL was fsync'd"
        seen["sent"].append(r.request_id)
        return measure(r)

    with Journal.create(path, CONFIG) as journal:
        header = wal.read_bytes()[:32]
        run_campaign(c, send, journal=journal)
        assert wal.read_bytes()[:32] == header  # the WAL was never restarted: its size measures what it holds
    assert len(seen["sent"]) == 8 and seen["told"] == seen["sent"]


def test_background_fsync_completes_before_the_next_durable_append(tmp_path, monkeypatch):
    disk = Disk(os.fsync)
    monkeypatch.setattr(os, "fsync", disk.fsync)
    j = Journal.create(tmp_path / "j.sqlite", CONFIG)
    wal = tmp_path / "j.sqlite-wal"
    j.append("measurement", {"x": [0.1], "y": 1.0}, request_id="a", durability="background")
    pending = j._pending_sync
    assert pending is not None
    j.append("decision", {"step": 0}, durability="next")
    j.append("request", {"step": 1}, request_id="b")  # "now": waits for the measurement's fsync first
    assert pending.done() and pending.exception() is None and j._pending_sync is None
    assert disk.durable(wal)  # all three events, the decision included, are on disk
    with pytest.raises(ValueError, match="durability"):
        j.append("decision", {}, durability="later")
    j.close()


def test_a_resume_restores_journalled_fits_instead_of_refitting(tmp_path, monkeypatch):
    from abduce.controller.rehearse.simulated import SimulatedRun
    from abduce.hypotheses import belief as belief_module

    run = SimulatedRun(hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=12, grid=101, n_init=4)
    with Journal.create(tmp_path / "j.sqlite", CONFIG) as j:
        live = run.run(journal=j)
    fits = []
    real = belief_module.plan_fit  # every fit, one by one or batched, starts from a plan
    monkeypatch.setattr(belief_module, "plan_fit", lambda *a, **k: fits.append(1) or real(*a, **k))

    longer = run.model_copy(update={"budget": run.budget + 1})  # same request ids; one more step to ask for
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        resumed = retell(longer.build()[0], j)
    assert fits == []  # every refit came from the journal
    assert resumed.campaign.summary() == live.summary() and resumed.campaign.ask() == live_next(run)


def live_next(run):
    """The request an uninterrupted campaign would send after its budget (asked of a longer twin)."""

    twin = run.model_copy(update={"budget": run.budget + 1})
    campaign, sim = twin.build()
    while campaign.n < run.budget:
        r = campaign.ask()
        campaign.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    return campaign.ask()


def test_a_stop_while_the_journal_was_being_created_leaves_a_run_that_starts_afresh(tmp_path):
    """Creation writes ``.NAME.creating`` and renames it into place: a stop before the rename leaves no
    journal (the next start begins afresh, over the stale file), never half of one."""
    from abduce.controller.journal.rundir import RunDirectory

    run = tmp_path / "run"
    run.mkdir()
    (run / ".journal.sqlite.creating").write_bytes(b"SQLite format 3\x00 half written")
    RunDirectory.check_free(run)  # nothing of a run is there
    rundir = RunDirectory(run, CONFIG)
    assert rundir.journal.config()["policy"] == CONFIG["policy"]
    rundir.close()
    assert not (run / ".journal.sqlite.creating").exists()


def test_a_run_stopped_after_its_journal_and_before_its_other_files_resumes(tmp_path):
    from abduce.controller.journal.rundir import RunDirectory

    run = tmp_path / "run"
    with Journal.create(run / "journal.sqlite", CONFIG):
        pass  # the journal is made first; nothing else yet
    rundir = RunDirectory.reopen(run)
    assert json.loads((run / "config.json").read_text()) == CONFIG
    rundir.journal.append("error", {"reason": "x"})
    rundir.close()
