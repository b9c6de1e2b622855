"""``abduce daemon CONFIG``: one campaign, run to the end, resumed from its journal after any stop.

A thin driver around the pure campaign::

    wait for the instrument -> (replay the journal if the run directory has one)
    loop: [paused? wait] ask -> journal -> measure -> journal -> tell -> journal -> status

The status names the part of the step the campaign thread is in (``phase``:
deciding, measuring, learning) and the endpoints bound (``endpoints``; port 0
in the config binds free ports, also named in ``RUN/endpoints.json``).

The control lane (:mod:`abduce.controller.drive.control`) answers on its own
thread, from a snapshot the loop updates after every step, so ``abduce
status`` answers at once even while a fit takes seconds. An operator's
``accept`` of a suggested composed law (``[campaign] propose = "suggest"``)
waits for the loop's next boundary between requests, where the campaign
thread journals and applies it (:mod:`abduce.controller.drive.accepts`). ``stop`` and SIGTERM
let the current step finish its journal writes and exit cleanly; SIGHUP
re-reads the config and applies what is safe to change (the log level).
A request that was in flight when the daemon stopped is settled with
``query`` under its own request id: the agent answers from its result cache,
or, if it never saw the request (it restarted too) and the instrument is
idempotent, measures it once; for a non-idempotent instrument the link
reports it ``lost`` instead of measuring it again.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from abduce.controller.core.verdict import leader
from abduce.controller.drive.accepts import AcceptQueue, say_suggested, suggested
from abduce.controller.drive.buttons import InstrumentButtons
from abduce.controller.drive.control import ControlServer
from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.controller.drive.loop import steps
from abduce.controller.drive.remote import AuditLog, LinkInstrument, channel_names, check_agent, listening_link
from abduce.controller.errors import AbduceError
from abduce.controller.intake.capabilities import space_of
from abduce.controller.journal.events import append, decision_body
from abduce.controller.journal.rebuild import with_transfer
from abduce.controller.journal.resume import retell
from abduce.controller.journal.rundir import RunDirectory, write_endpoints
from abduce.controller.recipe.settings import Settings, load_settings
from abduce.instruments.keys import load_key

log = logging.getLogger("abduce.daemon")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"t": record.created, "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(settings: Settings) -> None:
    handler = (
        logging.StreamHandler(sys.stderr)
        if settings.daemon.log == "stderr"
        else logging.FileHandler(settings.daemon.log)
    )
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.daemon.log_level)


class Daemon:
    """Runs the campaign a :class:`Settings` describes.

    Args:
        settings: validated settings.
        config_path: the file they came from (re-read on SIGHUP).
    """

    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings, self.config_path = settings, config_path
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._nothing_explains = False  # "none of these" more probable than every law, at the last step
        self._leader_misfits = False  # the most probable law failed its posterior predictive checks, at the last step
        self._lock = threading.Lock()
        self._buttons: InstrumentButtons | None = None  # the operator's, once the instrument has registered
        self._accepts = AcceptQueue()  # operator accepts of suggested laws, applied between requests
        self._campaign = None
        self._status: dict = {
            "state": "starting",
            "campaign": settings.campaign.name,
            "n": 0,
            "budget": settings.campaign.budget,
            "run_dir": str(settings.daemon.run_dir),
        }

    # ------------------------------------------------------------ control (control thread)

    def control(self, command: str, args: dict | None = None):
        if command == "accept":  # a future: the lane replies once the campaign thread has applied or refused it
            return self._accepts.submit((args or {}).get("name"))
        if command in ("abort", "safe-state", "release"):
            return {"reply": self.instrument_command(command, "operator", **(args or {})), "status": self._snapshot()}
        if command == "pause":
            if self._running.is_set():
                self._running.clear()
                self._set(state="pausing")  # "paused" once the current measurement is done
        elif command == "resume":
            if self._buttons is not None and self._buttons.agent().state == "safe":
                raise AbduceError("the instrument is in its safe state: release it first (abduce release)")
            self._running.set()
            self._set(state="running")
        elif command == "stop":
            self.stop()
        status = self._snapshot()
        if command == "list":
            return {"campaigns": [status]}
        return {"status": status}

    def _phase(self, name: str) -> None:
        """The part of the step the campaign thread is in, and the request it measures (status)."""
        pending = self._campaign.pending if name == "measuring" and self._campaign is not None else None
        self._set(phase=name, request=pending.request_id if pending is not None else None)

    def _pending_id(self) -> str | None:
        pending = self._campaign.pending if self._campaign is not None else None
        return pending.request_id if pending is not None else None

    def _snapshot(self) -> dict:
        with self._lock:
            return dict(self._status)

    def instrument_command(self, command: str, by: str, reason: str = "", request_id: str | None = None) -> dict:
        """``abort``, ``safe-state`` or ``release`` to the instrument (:mod:`~abduce.controller.drive.buttons`);
        the safe state (and an abort, with ``on_abort = "pause"``) pauses the campaign.

        Raises:
            AbduceError: no instrument is registered yet.
        """
        if self._buttons is None:
            raise AbduceError("no instrument is registered yet")
        reply = self._buttons.press(command, by, reason, request_id)
        self._set(instrument_state=self._buttons.agent().state)
        if command == "safe-state" or (command == "abort" and self.settings.instrument.on_abort == "pause"):
            self.control("pause")  # nothing is sent to an instrument in its safe state: resume after release
        return reply

    def _journal_replies(self, journal) -> None:
        if self._buttons is not None:
            self._buttons.journal(journal)

    def stop(self) -> None:
        self._set(state="stopping")
        self._stop.set()
        self._running.set()  # a paused loop must wake to stop

    def _set(self, **fields) -> None:
        with self._lock:
            self._status.update(fields)

    # ------------------------------------------------------------ main loop

    def run(self) -> dict:
        """Run until the campaign is done or stopped; returns the final status."""
        _, secret = load_key(self.settings.instrument.key)  # the control lane signs with it too
        run_dir = Path(self.settings.daemon.run_dir)
        resuming = (run_dir / "journal.sqlite").exists()
        s = self.settings = with_transfer(self.settings, resuming)  # prior_from read once, before any wait
        run_dir.mkdir(parents=True, exist_ok=True)
        control = ControlServer(s.daemon.control, secret, self.control).start()
        audit = AuditLog(run_dir / "audit.jsonl")
        link = listening_link(
            s.instrument.listen, s.instrument.key, audit, s.instrument.curve_secret, s.instrument.curve_clients
        )
        rundir = web = campaign = failure = None
        try:
            web = self._start_web(run_dir)
            link.start()
            write_endpoints(run_dir, instrument=link.endpoint, control=control.endpoint)
            self._set(
                state="waiting-for-instrument", endpoints={"instrument": link.endpoint, "control": control.endpoint}
            )
            log.info("listening on %s (control lane %s); waiting for an instrument", link.endpoint, control.endpoint)
            agent = self._wait_for_agent(link)
            if agent is None:
                self._set(state="stopped")
                return dict(self._status)
            self._buttons = InstrumentButtons(link, agent, self._pending_id)
            self._set(instrument=agent.instrument_id, instrument_state=agent.state)
            c = s.campaign
            campaign = c.build_campaign(space_of(agent.capabilities, c.channel, c.reduction))  # as a rebuild names it
            channels = check_agent(agent, channel_names(campaign))  # before the run directory
            in_flight: set[str] = set()
            if resuming:
                rundir = RunDirectory.reopen(run_dir)
                resumed = retell(campaign, rundir.journal)
                in_flight = {r.request_id for r in resumed.in_flight}
                for record in resumed.undecided:  # stopped mid-fit: the decision the step never journalled
                    append(
                        rundir.journal,
                        decision_body(record, campaign.fit_states(record.refit)),
                        request_id=record.request_id,
                        durability="next",
                    )
                    rundir(record)
                log.info("resumed %s at %d measurements (%d in flight)", c.name, campaign.n, len(in_flight))
            else:
                rundir = RunDirectory(
                    run_dir,
                    {
                        "mode": "daemon",
                        **json.loads(s.model_dump_json()),
                        "instrument": agent.instrument_id,
                        "capabilities": agent.capabilities.model_dump(),
                    },
                )
            instrument = LinkInstrument(
                link, agent, channel=c.channel, in_flight=in_flight, reduction=c.reduction, channels=channels
            )
            self._campaign = campaign
            self._set(
                state="running" if self._running.is_set() else "paused", n=campaign.n, suggested=suggested(campaign)
            )
            self._accepts.open()
            while not campaign.done and not self._stop.is_set():
                if not self._running.is_set():
                    self._set(state="paused", phase=None)
                    while not self._running.wait(timeout=0.5):  # commands sent while paused: journalled now
                        self._journal_replies(rundir.journal)
                        self._accept_waiting(campaign, rundir.journal, instrument)
                    self._journal_replies(rundir.journal)
                    if self._stop.is_set():
                        break
                    self._set(state="running")
                self._accept_waiting(campaign, rundir.journal, instrument)
                try:
                    records = steps(campaign, instrument, rundir.journal, phase=self._phase)  # one per point told
                except LinkError as exc:  # busy (its safe state, manual use): the request waits for resume
                    if exc.code != "rejected:busy":
                        raise
                    log.warning("the instrument refused the measurement (%s): paused until released and resumed", exc)
                    self.control("pause")
                    continue
                finally:
                    self._journal_replies(rundir.journal)  # the operator's commands during the step, and replies
                if not records:  # a NaN/inf or aborted reading, journalled and skipped
                    self._set(phase=None, request=None)
                    continue
                for record in records:
                    rundir(record)
                    self._warn_if_nothing_explains(record)
                    say_suggested(record, self.settings.daemon.run_dir)
                self._set(
                    n=campaign.n,
                    suggested=suggested(campaign),
                    leader=campaign.leader(),
                    probabilities=record.probabilities,
                    phase=None,
                    none=record.none["probability"] if record.none else None,
                )
            if campaign.done:
                rundir.finish(campaign)
                rundir = None
                self._set(state="done")
            else:
                self._set(state="stopped")
            return dict(self._status)
        except BaseException as exc:
            failure = exc
            if s.instrument.safe_state_on_error and self._buttons is not None and isinstance(exc, Exception):
                self._safe_state_on_error(exc, rundir)
            raise
        finally:
            # 1.1 agents stop re-registering: the campaign ended (done, stopped by the operator, or failed)
            done = campaign is not None and campaign.done
            reason = "error" if failure is not None else ("done" if done else "stopped")
            self._accepts.close(f"the campaign has ended ({reason})")
            link.bye(reason, f"{type(failure).__name__}: {failure}" if failure is not None else "")
            if rundir is not None:
                try:
                    self._journal_replies(rundir.journal)  # commands after the last step
                except Exception as exc:  # never hide the first error behind the second
                    log.error("operator commands not journalled: %s", exc)
                rundir.close()
            if web is not None:
                web.close()
            link.close()
            audit.close()
            control.close()

    def _accept_waiting(self, campaign, journal, instrument: LinkInstrument) -> None:
        """The operator's accepts queued on the control lane, applied here, between requests; they wait while
        a request from before a restart is still to be settled (it must be asked again as it was)."""
        if self._accepts.apply(campaign, journal, ready=not instrument.in_flight):
            self._set(suggested=suggested(campaign))

    def _safe_state_on_error(self, exc: Exception, rundir) -> None:
        """``[instrument] safe_state_on_error``: the instrument to its safe state, journalled when the journal
        still takes it (the error may be the journal's own)."""
        try:
            self.instrument_command("safe-state", "daemon", reason=f"the campaign stopped: {exc}"[:300])
            if rundir is not None:
                self._journal_replies(rundir.journal)
        except Exception as second:  # never hide the first error behind the second
            log.error("safe state after the error not confirmed or not journalled: %s", second)

    def _warn_if_nothing_explains(self, record) -> None:
        """Log a warning when "none of these" becomes more probable than every law (once, until it is not)."""
        lead = leader(record.probabilities, record.log_evidence)
        best = record.probabilities[lead] if lead is not None else 0.0
        nothing = record.none is not None and record.none["probability"] > best
        if nothing and not self._nothing_explains:
            log.warning(
                "after %d measurements no hypothesis explains the data: none of these at p = %.3f, "
                "the best law %s at %.3f",
                record.step + 1,
                record.none["probability"],
                lead or "-",
                best,
            )
        elif not nothing and self._nothing_explains:
            log.info("after %d measurements a hypothesis explains the data better than none of these", record.step + 1)
        self._nothing_explains = nothing
        check = record.checks.get(lead) if lead is not None else None
        misfit = bool(check and check["misfit"]) and not nothing
        if misfit and not self._leader_misfits:
            log.warning(
                "after %d measurements the most probable law %s fails its checks: %s",
                record.step + 1,
                lead,
                "; ".join(check["reasons"]),
            )
        self._leader_misfits = misfit

    def _start_web(self, run_dir: Path):
        """The live web view of the run (``[daemon] web = "HOST:PORT"``, see ``abduce serve``), or None.

        A malformed address, or one beyond loopback without ``web_token``,
        stops the daemon before it measures anything; a port that cannot be
        bound is logged and the campaign goes on without its view.
        """
        address = self.settings.daemon.web
        if not address:
            return None
        from abduce.controller.recipe.addresses import check_bind, parse_address
        from abduce.controller.views.web import WebServer

        host, port = parse_address(address)
        secret = self.settings.daemon.web_token
        token = secret.get_secret_value() if secret is not None else None
        check_bind(host, token, token_from="[daemon] web_token")
        try:
            web = WebServer([run_dir], host, port, token, own_logging=False).start()
        except OSError as exc:
            log.error("web view on %s not started: %s", address, exc)
            return None
        log.info("web view of %s at %s", run_dir, web.url)
        return web

    def _wait_for_agent(self, link: InstrumentLink):
        """Wait up to ``wait_s`` for the instrument, giving up early (None) on stop."""
        from abduce.controller.drive.link import LinkError

        deadline = time.monotonic() + self.settings.instrument.wait_s
        while not self._stop.is_set():
            try:
                return link.wait_for_agent(
                    min(1.0, max(0.01, deadline - time.monotonic())), self.settings.instrument.instrument_id
                )
            except LinkError:
                if time.monotonic() >= deadline:
                    raise
        return None

    def reload(self) -> None:
        """SIGHUP: re-read the config; apply the log level (the rest needs a restart)."""
        if self.config_path is None:
            return
        try:
            fresh = load_settings(self.config_path)
        except Exception as exc:  # a bad edit must not kill a running campaign
            log.error("reload refused: %s", exc)
            return
        logging.getLogger().setLevel(fresh.daemon.log_level)
        log.info("reloaded %s: log level %s", self.config_path, fresh.daemon.log_level)


def main(config: Path) -> dict:
    """Entry point of ``abduce daemon``: signals wired, logging configured, campaign run."""
    settings = load_settings(config)
    configure_logging(settings)
    daemon = Daemon(settings, config)
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGHUP, lambda *_: daemon.reload())
    try:
        return daemon.run()
    except Exception as exc:  # the reason goes to the structured log as well as to the terminal
        log.error("campaign %s stopped: %s", settings.campaign.name, exc, exc_info=not isinstance(exc, AbduceError))
        raise
