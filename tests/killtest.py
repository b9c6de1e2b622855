"""Kill -9 the daemon at chosen states of its journal until its campaign is done; check nothing was lost or doubled.

    python tests/killtest.py --kills 200 [--budget 320] [--seed 0] [--policy epsilon-greedy] [--max-seconds S]

Runs a simulated instrument agent in this process (counting every request
its driver measures) and ``abduce daemon`` as a subprocess, SIGKILLs the
daemon in a state chosen in advance, restarts it, and repeats until the
journal holds the whole budget (after the last scheduled kill the daemon is
left to finish). The kills follow a seeded schedule (:func:`schedule`): one
in four at start-up, the rest spread evenly over three mid-campaign states,
each defined by what the journal holds:

``start-up``
    the daemon answers on its control lane and waits for the instrument
    (whose hello this test holds back); it has journalled nothing.
``in-flight``
    a request is journalled, sent and measured by the instrument, whose reply
    this test holds back: the journal ends with that request, no measurement
    for it. The next start settles it with ``query`` from the agent's cache.
``mid-fit``
    a measurement is journalled and the campaign is being told it (the fit):
    the journal ends with that measurement, no decision for it.
``between-steps``
    a step's decision is journalled, the next request is not: the daemon is
    paused on its control lane while that step runs, and killed once it
    reports ``paused`` (the moment between two steps, held still).

Each mid-campaign kill lets 0 or 1 measurements pass first (the schedule
says which), so each costs the campaign one to three steps (a request left
in flight is settled by the next start; a mid-fit kill costs one more for each
moment it misses) and the budget bounds the kills: allow about 1.5
measurements a kill, 2 a mid-campaign kill (40 kills took 56 of 80).
Nothing waits on a clock: each state is reached by polling the journal
(read-only), the control lane or the instrument, then the daemon is frozen
(SIGSTOP), the journal read again with no write in progress, and only then
killed; a moment the daemon had already left (only ``mid-fit`` can race) is
let go (SIGCONT) and the next one caught. After each kill the journal is
opened afresh, as the next daemon will find it, and the state it is in
recorded (``kill_log``). Timeouts are hang guards only.

Then checks: every measurement is in the journal exactly once; no request id
was measured twice by the instrument; the dataset equals that of an
uninterrupted in-process run with the same seed and the same simulator noise
stream. Linux only (``struct flock``, SIGSTOP). The test suite runs it with 8 kills
(tests/controller/test_killtest.py).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from abduce.controller.drive.control import ControlError, request  # noqa: E402
from abduce.controller.journal.events import read  # noqa: E402
from abduce.controller.journal.store import Journal  # noqa: E402
from abduce.instruments.agent import InstrumentAgent  # noqa: E402
from abduce.instruments.drivers.simulated import SimulatedDriver  # noqa: E402
from abduce.instruments.keys import load_key, new_key  # noqa: E402
from abduce.instruments.protocol.codec import Codec, Keyring  # noqa: E402
from abduce.instruments.protocol.models import Hello  # noqa: E402
from abduce.simulators.channels import TwoChannel  # noqa: E402
from abduce.simulators.transition1d import Transition1D  # noqa: E402
from tests.instruments.conftest import ipc_endpoint  # noqa: E402

HYPOTHESES = ("second-order", "linear")
N_INIT = 4  # measurements before the first fit: a mid-fit kill targets the n_init-th or a later one
KINDS = ("start-up", "in-flight", "mid-fit", "between-steps")
HANG_S = 120.0  # how long any one wait may take before the test calls it a hang (never what is asserted)
POLL_S = 0.002  # between two looks at the journal while a moment is awaited (a fit takes 5 ms and more)
STATUS_POLL_S = 0.02  # between two questions on the control lane (it answers for states held still)


def grid_for(budget: int) -> int:
    """Candidates enough that the budget, not the grid, ends the campaign (a campaign stops once
    every candidate is measured)."""
    return max(101, 2 * budget + 1)


# ---------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Target:
    """One scheduled kill: the state to kill the daemon in, after ``skip`` measurements of its own."""

    kind: str
    skip: int


def schedule(kills: int, seed: int) -> list[Target]:
    """The kills, in order: ``kills // 4`` at start-up, the rest spread evenly over the mid-campaign
    kinds (in-flight, mid-fit, between-steps, in that order of priority for the remainder), shuffled;
    each mid-campaign kill lets 0 or 1 measurements of its run pass first."""
    rng = random.Random(seed)
    start_up = kills // 4
    kinds = ["start-up"] * start_up + [KINDS[1 + i % 3] for i in range(kills - start_up)]
    rng.shuffle(kinds)
    return [Target(kind, 0 if kind == "start-up" else rng.randint(0, 1)) for kind in kinds]


# ---------------------------------------------------------------- the instrument side


class CountingDriver(SimulatedDriver):
    """The simulated driver, counting how often each request id is measured; it can hold the reply to
    one request back (measured, not yet returned) until :meth:`release`."""

    def __init__(self, seed: int, grid: int, law: str = "second-order", channels: bool = False) -> None:
        kind = TwoChannel if channels else Transition1D  # two channels: a costly y and a cheap image
        super().__init__(kind(law=law, grid=grid, seed=seed))
        self.blocking = True  # measured on the agent's worker thread: a held reply never stalls its heartbeats
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._hold_at: int | None = None
        self._seen = 0
        self.held: str | None = None
        self._holding, self._release = threading.Event(), threading.Event()

    def hold(self, nth: int | None) -> None:
        """Hold the reply to the ``nth`` request measured from now (1-based); None: hold nothing."""
        with self._lock:
            self._hold_at, self._seen, self.held = nth, 0, None
        self._holding.clear()
        self._release.clear()

    def measure(self, request):
        self.counts[request.request_id] += 1
        reading = super().measure(request)
        with self._lock:
            self._seen += 1
            hold = self._seen == self._hold_at
            if hold:
                self.held, self._hold_at = request.request_id, None
        if hold:
            self._holding.set()
            self._release.wait()
        return reading

    def wait_held(self, proc: subprocess.Popen) -> str | None:
        """Wait until a reply is held (its request id), or None if the daemon exited first."""
        deadline = time.monotonic() + HANG_S
        while not self._holding.wait(0.05):
            if proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no request reached the instrument within {HANG_S} s")
        return self.held

    def release(self) -> None:
        self._release.set()


class GatedAgent(InstrumentAgent):
    """The agent, with a gate on its hello (closed, it cannot register, so a starting daemon waits for
    it), reconnecting every 100 ms without backoff (the daemon restarts often, and a backoff of up to
    5 s would dominate the test's time)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hello_gate = threading.Event()
        self.hello_gate.set()

    def _dealer(self, ctx: zmq.Context, endpoint: str) -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 0)  # no backoff
        s.connect(endpoint)
        return s

    def _send(self, sock, content, parent=None, buffers=(), block: bool = True) -> None:
        if isinstance(content, Hello):
            while not self.hello_gate.wait(0.05):
                if self._stop.is_set():
                    return
        super()._send(sock, content, parent=parent, buffers=buffers, block=block)


# ---------------------------------------------------------------- looking at the journal


@dataclass(frozen=True)
class State:
    """What a journal ends with: its last event (seq 0: none) and how many measurements it holds."""

    seq: int = 0
    kind: str | None = None
    request_id: str | None = None
    measurements: int = 0


_LAST = (
    "SELECT seq, kind, request_id, (SELECT COUNT(*) FROM events WHERE kind = 'measurement') "
    "FROM events ORDER BY seq DESC LIMIT 1"
)  # one statement: one consistent snapshot


class Watch:
    """Cheap repeated looks at a journal a daemon is writing (one read-only connection, one SQL statement)."""

    def __init__(self, path: Path) -> None:
        self.path, self._conn = path, None

    def state(self) -> State | None:
        """The journal's state now; None when it cannot be read at this moment (being created, busy)."""
        try:
            if self._conn is None:
                if not self.path.exists():
                    return State()
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
            row = self._conn.execute(_LAST).fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return State(*row) if row else State()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def writing(path: Path) -> bool:
    """Whether a process holds the journal's WAL write lock: a transaction is under way.

    SQLite takes byte 120 of ``PATH-shm`` (``WALINDEX_LOCK_OFFSET + WAL_WRITE_LOCK``) exclusively
    from the start of a write until its commit is visible; a commit whose frames are in the WAL but not
    yet in its index is invisible to a reader and yet survives a kill. ``F_GETLK`` only asks. Call it
    with no SQLite connection to this journal open in this process (closing the probe's descriptor
    drops the process's POSIX locks on the file).
    """
    try:
        fd = os.open(f"{path}-shm", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        probe = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 120, 1, 0)  # struct flock (Linux, LP64)
        return struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


def settled(path: Path) -> tuple[State, list]:
    """The journal as the next daemon will find it (opened afresh, checked by :class:`Journal`): its
    state and its events. Only with no daemon alive."""
    if not path.exists():
        return State(), []
    with Journal.open(path, readonly=True) as j:
        events = list(j.events())
    if not events:
        return State(), events
    last = events[-1]
    return State(last.seq, last.kind, last.request_id, sum(e.kind == "measurement" for e in events)), events


def journal_measurements(path: Path) -> list[tuple[str, list[float], float]]:
    if not path.exists():
        return []
    with Journal.open(path, readonly=True) as j:
        return [(e.request_id, e.body["x"], e.body["y"]) for e in j.events("measurement")]


def classify(state: State, seq0: int) -> str:
    """The kill kind a journal state is (``seq0``: its last event when that daemon started)."""
    if state.seq == seq0:
        return "start-up"
    kinds = {"request": "in-flight", "measurement": "mid-fit", "decision": "between-steps"}
    return kinds.get(state.kind, str(state.kind))


# ---------------------------------------------------------------- driving the daemon


class Exited(Exception):
    """The daemon exited before it reached the state it was to be killed in."""


def freeze(proc: subprocess.Popen) -> None:
    """SIGSTOP the daemon and wait until every thread of it is stopped (raises Exited if it exited)."""
    if proc.poll() is not None:
        raise Exited
    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + HANG_S
    while True:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid and os.WIFSTOPPED(status):
            return
        if pid:  # it exited: reaped here, so tell Popen
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise Exited
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not stop within {HANG_S} s of SIGSTOP")
        time.sleep(0.001)


def status(proc: subprocess.Popen, control: str, secret: bytes, states: tuple[str, ...]) -> dict:
    """Poll the control lane until the daemon reports one of ``states`` (raises Exited if it exits)."""
    deadline = time.monotonic() + HANG_S
    while True:
        if proc.poll() is not None:
            raise Exited
        try:
            now = request(control, secret, "status", timeout_s=0.5)["status"]
            if now["state"] in states:
                return now
        except ControlError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not report {'/'.join(states)} within {HANG_S} s")
        time.sleep(STATUS_POLL_S)


def catch(proc: subprocess.Popen, journal: Path, wanted: Callable[[State], bool], misses: list[int]) -> State:
    """Freeze the daemon in a journal state ``wanted`` accepts, and return that state.

    Polls the journal; once the state is there, freezes the daemon, makes sure no write is under way,
    and reads the journal again. A moment the daemon had already left is let go (SIGCONT, counted in
    ``misses``) and the next one awaited.
    """
    watch = Watch(journal)
    deadline = time.monotonic() + HANG_S
    try:
        while True:
            if proc.poll() is not None:
                raise Exited
            if time.monotonic() > deadline:
                raise TimeoutError(f"the daemon did not reach the targeted journal state within {HANG_S} s")
            now = watch.state()
            if now is None or not wanted(now):
                time.sleep(POLL_S)
                continue
            watch.close()  # no connection of ours open while probing the lock (see writing())
            freeze(proc)
            if not writing(journal):
                with closing(Watch(journal)) as fresh:
                    now = fresh.state()
                if now is not None and wanted(now):
                    return now
            os.kill(proc.pid, signal.SIGCONT)
            misses[0] += 1
    finally:
        watch.close()


@dataclass
class Rig:
    """What the kills act through: the journal, the daemon's control lane, the instrument's driver."""

    journal: Path
    control: str
    secret: bytes
    driver: CountingDriver
    misses: list[int]  # moments the daemon had left before it froze (mid-fit only): let go, the next one caught
    first_fit: int = N_INIT  # the measurement whose telling fits first (over channels: the design is longer)


def reach(rig: Rig, target: Target, proc: subprocess.Popen, before: State) -> str | None:
    """Bring the daemon to the state ``target`` names and leave it frozen there (raises Exited if it exits
    first); returns the request id whose reply the instrument held back (in-flight, between-steps)."""
    if target.kind == "start-up":  # the hello is held back: it cannot get past waiting for the instrument
        status(proc, rig.control, rig.secret, ("waiting-for-instrument",))
        catch(proc, rig.journal, lambda s: s.seq == before.seq, rig.misses)
        return None
    if target.kind == "mid-fit":  # the only moment not held still: caught by polling, missed ones let go
        need = max(before.measurements + target.skip + 1, rig.first_fit)
        status(proc, rig.control, rig.secret, ("running",))  # replayed: its steps begin (no journal polls till then)
        catch(
            proc,
            rig.journal,
            lambda s: s.kind == "measurement" and s.seq > before.seq and s.measurements >= need,
            rig.misses,
        )
        return None
    held = rig.driver.wait_held(proc)  # measured; the daemon waits for the reply
    if held is None:
        raise Exited
    if target.kind == "between-steps":  # pause after this step: it stops between two steps and says so
        request(rig.control, rig.secret, "pause", timeout_s=HANG_S)
        rig.driver.release()
        status(proc, rig.control, rig.secret, ("paused",))
        catch(proc, rig.journal, lambda s: s.kind == "decision" and s.request_id == held, rig.misses)
    else:
        catch(proc, rig.journal, lambda s: s.kind == "request" and s.request_id == held, rig.misses)
    return held


def verify(rig: Rig, target: Target, before: State, held: str | None) -> dict:
    """After the kill: the journal as the next start will find it, and whether it is in the state targeted."""
    after, events = settled(rig.journal)
    state = classify(after, before.seq)
    ok = state == target.kind
    if target.kind == "in-flight":  # measured by the instrument once, its measurement nowhere in the journal
        ok = (
            ok
            and after.request_id == held
            and rig.driver.counts[held] == 1
            and not any(e.kind == "measurement" and e.request_id == held for e in events)
        )
    elif target.kind == "between-steps":
        ok = ok and after.request_id == held
    elif target.kind == "mid-fit":  # told to nobody: no decision for it
        ok = (
            ok
            and after.measurements >= max(before.measurements + target.skip + 1, rig.first_fit)
            and not any(e.kind == "decision" and e.request_id == after.request_id for e in events)
        )
    return {
        "target": target.kind,
        "state": state,
        "ok": ok,
        "measurements": after.measurements,
        "last_event": after.kind,
        "request_id": after.request_id,
    }


def run(
    kills: int,
    budget: int,
    seed: int,
    workdir: Path,
    log=print,
    policy: str = "discriminate",
    max_seconds: float | None = None,
    law: str = "second-order",
    propose: str = "off",
    prior_from: Path | None = None,
    cheap: dict[str, float] | None = None,
) -> dict:
    """Kill the daemon ``kills`` times on the schedule; ``law``: the sample's truth, ``propose``: abduction
    (a kill mid-fit then also lands in proposal rounds, which run inside the step's decision);
    ``prior_from``: a past run the daemon's campaign takes its priors from (``[campaign] prior_from``; every
    resume takes them from the journal, and the uninterrupted reference from the same past run); ``cheap``: the
    campaign models the two-channel simulator's cheap channel beside the explained one (``{"image": cost}``;
    ``budget`` then counts the readings of both)."""
    began = time.monotonic()
    new_key(workdir / "lab.key", "lab")
    listen, control = ipc_endpoint(), ipc_endpoint()  # stable across the daemon's restarts
    config = workdir / "daemon.toml"
    transfer = f"prior_from = {json.dumps(str(prior_from))}\n" if prior_from is not None else ""
    if cheap:
        transfer += "cheap_channels = { " + ", ".join(f"{k} = {v}" for k, v in cheap.items()) + " }\n"
    config.write_text(
        f'[campaign]\nname = "killtest"\nhypotheses = {json.dumps(list(HYPOTHESES))}\npolicy = "{policy}"\n'
        f'budget = {budget}\nseed = {seed}\nn_init = {N_INIT}\npropose = "{propose}"\n{transfer}\n'
        f'[instrument]\nlisten = "{listen}"\nkey = "lab.key"\nwait_s = {HANG_S}\n\n'
        f'[daemon]\nrun_dir = "run"\ncontrol = "{control}"\nlog = "daemon.log"\n'
    )
    key_id, secret = load_key(workdir / "lab.key")
    grid = grid_for(budget)
    driver = CountingDriver(seed, grid, law, channels=bool(cheap))
    agent = GatedAgent(driver, listen, Codec(Keyring({key_id: secret}), key_id), "sim")
    agent_thread = threading.Thread(target=agent.serve, daemon=True)
    agent_thread.start()
    rig = Rig(workdir / "run" / "journal.sqlite", control, secret, driver, [0], N_INIT + 2 * bool(cheap))
    plan = schedule(kills, seed)
    kill_log: list[dict] = []
    starts, failures = 0, []
    deadline = None if max_seconds is None else began + max_seconds
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = None
    try:
        while True:
            before, _ = settled(rig.journal)  # no daemon alive: the journal as this start will find it
            target = None
            if len(kill_log) < len(plan) and (deadline is None or time.monotonic() < deadline):
                target = plan[len(kill_log)]
            if target is not None and target.kind == "start-up":
                agent.hello_gate.clear()
            else:
                agent.hello_gate.set()
            holds = target is not None and target.kind in ("in-flight", "between-steps")
            driver.hold(target.skip + 1 if holds else None)
            proc = subprocess.Popen(
                [sys.executable, "-m", "abduce.controller.cli", "daemon", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            starts += 1
            spawned = time.monotonic()
            try:
                if target is None:  # the last run: let it finish
                    proc.wait(timeout=30 * HANG_S)
                    raise Exited
                held = reach(rig, target, proc, before)
            except Exited:
                driver.release()
                proc.wait()
                if proc.returncode == 0 and (workdir / "run" / "summary.json").exists():
                    if target is not None:
                        log(f"the campaign was done before kill {len(kill_log) + 1} of {len(plan)}")
                    break
                failures.append(
                    {"start": starts, "returncode": proc.returncode, "target": None if target is None else target.kind}
                )
                if len(failures) >= 3:
                    raise RuntimeError(
                        f"the daemon exited on its own 3 times: {failures}; see {workdir / 'daemon.log'}"
                    ) from None
                continue
            proc.send_signal(signal.SIGKILL)  # frozen; SIGKILL ends a stopped process too
            proc.wait()
            driver.release()  # the held reply goes to the agent's cache, for the next start's query
            k = verify(rig, target, before, held)
            k["life_s"] = round(time.monotonic() - spawned, 2)  # spawn to kill, for the record
            kill_log.append(k)
            how = target.kind if k["ok"] else f"{target.kind}, NOT AS TARGETED: {k['state']}"
            log(
                f"kill {len(kill_log)}/{len(plan)} ({how}): journal holds {k['measurements']}/{budget}, "
                f"ends with {k['last_event']} {k['request_id'] or ''}"
            )
    finally:
        driver.release()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        agent.stop()
        agent_thread.join(10)
    rows = journal_measurements(rig.journal)
    ids = [r[0] for r in rows]
    from abduce.controller.journal.rebuild import transfer_from_run
    from abduce.controller.rehearse.simulated import SimulatedRun

    if cheap:  # the same campaign through the simulated driver in this process (an in-process run reads one channel)
        from abduce.controller.rehearse.rehearsal import Rehearsal

        reference = Rehearsal(
            source="simulated:two-channel", options={"law": law, "grid": grid}, hypotheses=HYPOTHESES, policy=policy,
            budget=budget, seed=seed, n_init=N_INIT, propose=propose, cheap_channels=cheap,
            transfer=None if prior_from is None else transfer_from_run(prior_from),
        ).run()  # fmt: skip
    else:
        reference = SimulatedRun(
            truth=law, hypotheses=HYPOTHESES, policy=policy, budget=budget, seed=seed, grid=grid, n_init=N_INIT,
            propose=propose, transfer=None if prior_from is None else transfer_from_run(prior_from),
        ).run()  # fmt: skip
    with Journal.open(rig.journal, readonly=True) as journal:
        journalled = [(e.body.step, p["name"], p["added"]) for e in read(journal, "decision") for p in e.body.proposals]
    if cheap:  # every reading: its point, its channel (the journal's last coordinate), its value
        names = ("y", *cheap)
        rows = [(rid, [*x[:-1], names[round(x[-1])]], y) for rid, x, y in rows]
        ref_x, ref_y = [(*x, c) for x, c, _ in reference.readings()], [y for _, _, y in reference.readings()]
    else:
        ref_x, ref_y = reference.data
    by_state = Counter(k["state"] for k in kill_log)
    return {
        "kills": len(kill_log),
        "mid_campaign_kills": len(kill_log) - by_state["start-up"],
        "scheduled": dict(Counter(t.kind for t in plan)),
        "kills_by_kind": dict(by_state),
        "not_as_targeted": [k for k in kill_log if not k["ok"]],
        "moments_missed": rig.misses[0],
        "starts": starts,
        "failures": failures,
        "measurements": len(rows),
        "unique_ids": len(set(ids)),
        "undecided": undecided(rig.journal),
        "measured_twice": sorted(rid for rid, n in driver.counts.items() if n > 1),
        "instrument_measurements": sum(driver.counts.values()),
        "equals_uninterrupted": [tuple(r[1]) for r in rows] == ref_x and [r[2] for r in rows] == ref_y,
        "proposals": journalled,
        "proposals_as_uninterrupted": journalled == [(p["step"], p["name"], p["added"]) for p in reference.proposals],
        "seconds": round(time.monotonic() - began, 1),
        "kill_log": kill_log,
    }


def undecided(path: Path) -> list[str]:
    """Request ids whose measurement the journal holds without a decision (a step killed mid-fit whose
    resume did not journal the decision it never wrote)."""
    with Journal.open(path, readonly=True) as j:
        events = list(j.events())
    decided = {e.request_id for e in events if e.kind == "decision"}
    return [e.request_id for e in events if e.kind == "measurement" and e.request_id not in decided]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--budget", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="epsilon-greedy")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop killing after this long (then let it finish)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        result = run(args.kills, args.budget, args.seed, Path(d), policy=args.policy, max_seconds=args.max_seconds)
    print(json.dumps({k: v for k, v in result.items() if k != "kill_log"}, indent=2))
    ok = (
        result["measurements"] == result["unique_ids"] == args.budget
        and not result["measured_twice"]
        and result["instrument_measurements"] == args.budget
        and result["equals_uninterrupted"]
        and not result["not_as_targeted"]
        and not result["failures"]
        and not result["undecided"]
        and (args.max_seconds is not None or result["kills"] == args.kills)
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
