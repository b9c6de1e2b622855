"""The ``abduce`` command line.

Argument parsing lives here; the work lives in :func:`run_in_process` and the
modules it calls, so a notebook or a test can do the same without a shell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from abduce.controller.errors import AbduceError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="abduce: autonomous experiments that pick measurements by testing competing physical hypotheses.",
)
console = Console(stderr=True)


def _pin_threads(all_cores: bool = False) -> None:
    """Thread defaults measured by tests/benchmarks/thread_settings.py (README, "Speed").

    Passive OpenMP waits and one intra-op thread were fastest for the small
    GP fits that dominate a campaign; OMP_NUM_THREADS, when set, wins. Must run
    before torch is imported (the commands import it lazily). ``all_cores``:
    plot, report and export, whose work is a few large products (a 10^4-measurement
    journal here: plot 10.0 -> 8.5 s, report 10.8 -> 7.2 s with both cores,
    tests/benchmarks/large_journal.py, two runs in a row on an idle machine).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1) if all_cores else "1")


def _progress(label: str, total: int, progress: bool):
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    task = bar.add_task(label, total=total, status="")

    def show(record) -> None:
        lead = max(record.probabilities, key=record.probabilities.get) if record.probabilities else "-"
        p = record.probabilities.get(lead, 0.0) if record.probabilities else 0.0
        status = (
            f"leader {lead} ({p:.2f})" if not record.unfitted else f"no leader: {', '.join(record.unfitted)} unfitted"
        )
        if record.none is not None:
            status += f", none of these {record.none['probability']:.2f}"
        if (record.checks.get(lead) or {}).get("misfit"):
            status += f", {lead} fails its checks"
        bar.update(task, completed=record.step + 1, status=status)

    return bar, show


def run_in_process(opts, out: Path, progress: bool = True) -> dict:
    """Run a :class:`~abduce.controller.rehearse.simulated.SimulatedRun`; write the run directory; return the "
    "summary."""
    import dataclasses

    from abduce.controller.journal.rundir import RunDirectory

    rundir = RunDirectory(out, {"mode": "in-process", **dataclasses.asdict(opts)})
    bar, show = _progress(opts.policy, opts.budget, progress)
    with bar:
        try:
            campaign = opts.run([rundir, show], journal=rundir.journal)
        except BaseException:
            rundir.close()
            raise
    return rundir.finish(campaign)


def run_listening(
    opts,
    key: Path,
    out: Path,
    progress: bool = True,
    curve_secret: Path | None = None,
    curve_clients: Path | None = None,
    on_listening=None,
) -> dict:
    """Bind ``opts.listen``, wait for an instrument agent, run the campaign through it.

    ``on_listening(endpoint)``, if given, is called with the endpoint bound
    (port 0 binds free ports) before the wait; ``OUT/endpoints.json`` names it too.
    """
    import dataclasses

    from abduce.controller.drive.link import InstrumentLink
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.drive.remote import AuditLog, LinkInstrument
    from abduce.controller.intake.capabilities import space_of
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.instruments.keys import load_certificate, load_key
    from abduce.instruments.protocol.codec import Codec, Keyring

    key_id, secret = load_key(key)
    codec = Codec(Keyring({key_id: secret}), key_id)
    RunDirectory.check_free(out)  # before waiting for an instrument, not after
    out.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(out / "audit.jsonl")
    try:
        curve = load_certificate(curve_secret)
        if curve is not None and curve[1] is None:
            raise typer.BadParameter(f"{curve_secret} holds no secret key (use the .key_secret file)")
        link = InstrumentLink(
            opts.listen, codec, audit=audit, curve=curve, curve_clients=str(curve_clients) if curve_clients else None
        )
        with link:
            from abduce.controller.journal.rundir import write_endpoints

            write_endpoints(out, instrument=link.endpoint)
            console.print(f"listening on {link.endpoint}; waiting for an instrument agent")
            if on_listening is not None:
                on_listening(link.endpoint)
            agent = link.wait_for_agent(timeout_s=opts.wait_s)
            console.print(f"instrument {agent.instrument_id!r} registered (key {agent.key_id!r})")
            campaign = opts.campaign(space_of(agent.capabilities))
            config = {
                "mode": "listen",
                **dataclasses.asdict(opts),
                "instrument": agent.instrument_id,
                "capabilities": agent.capabilities.model_dump(),
            }
            rundir = RunDirectory(out, config)
            bar, show = _progress(opts.policy, opts.budget, progress)
            with bar:
                try:
                    run_campaign(campaign, LinkInstrument(link, agent), [rundir, show], journal=rundir.journal)
                except BaseException:
                    rundir.close()
                    raise
            return rundir.finish(campaign)
    finally:
        audit.close()


def summary_table(summary: dict) -> Table:
    """The end-of-run table: hypothesis, probability, parameters +- sd, times chosen."""
    table = Table(title=f"{summary['measurements']} measurements; leader: {summary['leader']}")
    table.add_column("hypothesis")
    table.add_column("probability", justify="right")
    table.add_column("parameters (posterior mean ± sd)")
    table.add_column("times chosen", justify="right")
    table.add_column("fit failures", justify="right")
    table.add_column("checks")
    failures = summary.get("fit_failures", {})
    for h in sorted(summary["hypotheses"], key=lambda h: -h["probability"]):
        params = ", ".join(f"{k} = {v['mean']:.4g} ± {v['sd']:.2g}" for k, v in h["parameters"].items())
        name = h["name"] + (" (never fitted)" if h["name"] in summary.get("unfitted", ()) else "")
        table.add_row(
            name,
            f"{h['probability']:.3f}",
            params,
            str(h["times_chosen"]),
            str(failures.get(h["name"], 0)),
            _check_text(h.get("check")),
        )
    none = summary.get("none")
    if none is not None:
        table.add_row(
            "[italic]none of these[/italic]",
            f"{none['probability']:.3f}",
            "a flexible GP, no law",
            "-",
            str(failures.get("none of these", 0)),
            _check_text(none.get("check")),
        )
    if summary.get("explained") is False:
        table.caption = (
            "no hypothesis explains the data: none of these is the most probable explanation"
            if none is not None and none["probability"] > max(h["probability"] for h in summary["hypotheses"])
            else "the most probable law fails its posterior predictive checks (see its row)"
        )
    return table


def _check_text(check: dict | None) -> str:
    """``ok`` / ``misfit`` / ``-`` (the statistics are in summary.json and ``abduce inspect``)."""
    return "-" if check is None else ("misfit" if check["misfit"] else "ok")


def _fail(exc: Exception) -> None:
    """Print a clear one-line error (unwrapped, so it can be grepped) and exit with status 2."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _split(names: str) -> tuple[str, ...]:
    out = tuple(n.strip() for n in names.split(",") if n.strip())
    if not out:
        raise typer.BadParameter("give at least one hypothesis name")
    return out


@app.command()
def run(
    out: Path = typer.Option(..., "--out", help="Run directory to create (must not already hold a run)."),
    simulator: str = typer.Option("transition-1d", help="Simulated instrument."),
    truth: str = typer.Option("second-order", help="Which law the simulator's data follow."),
    hypotheses: str = typer.Option(
        "second-order,first-order,linear,sigmoid", help="Comma-separated hypothesis names or dotted paths."
    ),
    policy: str = typer.Option("epsilon-greedy", help="epsilon-greedy (the paper's) or discriminate."),
    acquisition: str = typer.Option(None, help="variance, ucb, nipv or discriminate (default: the policy's)."),
    budget: int = typer.Option(40, min=1, help="Number of measurements."),
    seed: int = typer.Option(0, help="Seeds the campaign and the simulator's noise."),
    x_c: float = typer.Option(0.6, "--x-c", help="Simulator: critical composition."),
    beta: float = typer.Option(0.5, help="Simulator: order-parameter exponent."),
    noise: float = typer.Option(None, help="Simulator: noise sd (default 5% of the amplitude)."),
    grid: int = typer.Option(501, min=0, help="Simulator: candidate grid size (0 = continuous space)."),
    n_init: int = typer.Option(5, min=1, help="Space-filling measurements before the first fit."),
    epsilon: float = typer.Option(0.1, min=0.0, max=1.0, help="epsilon-greedy: exploration probability."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    listen: str = typer.Option(
        None,
        help="Bind here (e.g. tcp://127.0.0.1:5555) and run through the instrument agent that registers; the "
        "simulator options are then unused.",
    ),
    key: Path = typer.Option(None, help="Signing key file (with --listen)."),
    wait: float = typer.Option(60.0, help="With --listen: seconds to wait for an agent."),
    curve_secret: Path = typer.Option(
        None,
        help="With --listen: this controller's CURVE secret certificate (PATH.curve.key_secret); turns encryption on.",
    ),
    curve_clients: Path = typer.Option(
        None, help="With --curve-secret: directory of the agents' public certificates allowed in."
    ),
) -> None:
    """Run a campaign (in-process against a simulator, or through an instrument agent with --listen)."""
    _pin_threads()
    try:
        if listen:
            if key is None:
                raise typer.BadParameter("--listen needs --key (make one with `abduce keys new PATH`)")
            from abduce.controller.drive.remote import ListenRun

            opts = ListenRun(
                listen=listen,
                hypotheses=_split(hypotheses),
                policy=policy,
                acquisition=acquisition,
                budget=budget,
                seed=seed,
                n_init=n_init,
                epsilon=epsilon,
                wait_s=wait,
            )
            summary = run_listening(
                opts, key, out, progress=not quiet, curve_secret=curve_secret, curve_clients=curve_clients
            )
        else:
            from abduce.controller.rehearse.simulated import SimulatedRun

            opts = SimulatedRun(
                simulator=simulator,
                truth=truth,
                hypotheses=_split(hypotheses),
                policy=policy,
                acquisition=acquisition,
                budget=budget,
                seed=seed,
                x_c=x_c,
                beta=beta,
                noise=noise,
                grid=grid,
                n_init=n_init,
                epsilon=epsilon,
            )
            summary = run_in_process(opts, out, progress=not quiet)
    except AbduceError as exc:
        _fail(exc)
    Console().print(summary_table(summary))
    console.print(f"run directory: {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory to create."),
    seed: int = typer.Option(0, help="Seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """The main job: a simulated microscope agent in its own process, a campaign against it over signed TCP;
    leaves the run directory and its report (report.html)."""
    import subprocess
    import sys

    from abduce.instruments.keys import new_key

    _pin_threads()
    from abduce.controller.journal.rundir import RunDirectory

    try:
        RunDirectory.check_free(out)
    except AbduceError as exc:
        _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    key = out / "demo.key"
    if not key.exists():
        new_key(key, "abduce-demo")
    agents: list[subprocess.Popen] = []

    def start_agent(endpoint: str) -> None:  # once the controller has bound its free ports
        agents.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "abduce.controller.cli",
                    "instrument",
                    "serve",
                    "--driver",
                    "simulated:transition-1d",
                    "--connect",
                    endpoint,
                    "--key",
                    str(key),
                    "--truth",
                    "second-order",
                    "--seed",
                    str(seed),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(out / "agent.log", "a"),
            )
        )

    from abduce.controller.drive.remote import ListenRun

    opts = ListenRun(
        listen="tcp://127.0.0.1:0",
        hypotheses=("second-order", "first-order", "linear", "sigmoid"),
        policy="discriminate",
        budget=40,
        seed=seed,
        n_init=5,
        wait_s=60.0,
    )
    try:
        summary = run_listening(opts, key, out, progress=not quiet, on_listening=start_agent)
    except AbduceError as exc:
        _fail(exc)
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(timeout=10)
    Console().print(summary_table(summary))
    console.print(f"run directory: {out}")
    from abduce.controller.views.report import write_report

    try:
        console.print(f"report: {write_report(out, out / 'report.html')}")
    except AbduceError as exc:
        _fail(exc)


def _options(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` pairs -> options; a value is read as JSON where it parses (numbers, true, lists), else a string."""
    from abduce.controller.errors import ConfigError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"option {pair!r}: use KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


keys_app = typer.Typer(help="Signing and CURVE keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    path: Path = typer.Argument(..., help="Key file to create (never overwritten)."),
    key_id: str = typer.Option(None, "--key-id", help="The key's name in the audit log (default: the file name)."),
    curve: bool = typer.Option(False, "--curve", help="Also make a CURVE key pair beside it."),
) -> None:
    """Make a signing key (and, with --curve, a CURVE key pair)."""
    from abduce.instruments.keys import new_key

    try:
        for f in new_key(path, key_id or path.stem, curve=curve):
            console.print(f"wrote {f}")
    except AbduceError as exc:
        _fail(exc)


instrument_app = typer.Typer(help="Instrument agents.", no_args_is_help=True)
app.add_typer(instrument_app, name="instrument")


@instrument_app.command("serve")
def instrument_serve(
    driver: str = typer.Option(
        ...,
        help="simulated:SIMULATOR (transition-1d, loops, phase-2d, spm-image), recorded:PATH (HDF5/NSID, "
        "NetCDF, NPZ) or package.module:DriverClass.",
    ),
    connect: str = typer.Option(..., help="The controller's endpoint, e.g. tcp://127.0.0.1:5555."),
    key: Path = typer.Option(..., help="Signing key file."),
    instrument_id: str = typer.Option(None, "--id", help="Instrument name (default: the driver spec)."),
    truth: str = typer.Option("second-order", help="Simulator: the law its data follow."),
    seed: int = typer.Option(0, help="Simulator: noise seed."),
    grid: int = typer.Option(501, min=0, help="Simulator: candidate grid size (0 = continuous)."),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="Driver option KEY=VALUE (repeatable), e.g. -o law=sigmoid -o dwell_s=0.01."
    ),
    duration: float = typer.Option(None, help="Stop after this many seconds (default: run until killed)."),
    curve_secret: Path = typer.Option(None, help="This agent's CURVE secret certificate (PATH.curve.key_secret)."),
    curve_server: Path = typer.Option(None, help="The controller's CURVE public certificate (PATH.curve.key)."),
    faults: str = typer.Option(
        None,
        "--faults",
        help="Inject faults, for rehearsals and tests: e.g. "
        "latency=0.01,drop=0.05,nan=0.02,crash=0.01,reorder=0.05,seed=3 "
        "(keys: latency, jitter, drop, nan, inf, crash, reorder, hold, seed). A crash exits with status 1.",
    ),
) -> None:
    """Serve a driver to a controller (an instrument agent)."""
    import logging
    import signal

    from abduce.instruments.agent import InstrumentAgent
    from abduce.instruments.keys import load_certificate, load_key
    from abduce.instruments.protocol.codec import Codec, Keyring

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        key_id, secret = load_key(key)
        from abduce.instruments.drivers.sources import build_driver

        options = _options(option)
        if driver == "simulated:transition-1d":
            options = {"truth": truth, "grid": grid, **options}
        if driver.startswith("simulated:"):
            options = {"seed": seed, **options}
        drv = build_driver(driver, options)
        injected = None
        if faults:
            from abduce.instruments.drivers.faults import Faults, FaultyDriver, hard_exit

            injected = Faults.parse(faults)
            drv = FaultyDriver(drv, injected, on_crash=hard_exit)
        curve = None
        if (curve_secret is None) != (curve_server is None):
            raise typer.BadParameter("--curve-secret and --curve-server go together")
        if curve_secret is not None:
            own, server = load_certificate(curve_secret), load_certificate(curve_server)
            curve = (server[0], own[0], own[1])
    except AbduceError as exc:
        _fail(exc)
    agent = InstrumentAgent(
        drv, connect, Codec(Keyring({key_id: secret}), key_id), instrument_id or driver, curve=curve, faults=injected
    )
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    agent.serve(duration_s=duration)


@app.command()
def daemon(config: Path = typer.Argument(..., help="TOML settings (see deploy/config/).")) -> None:
    """Run the campaign a config describes; resumes from its journal after any stop."""
    _pin_threads()
    from abduce.controller.daemon import main as daemon_main

    try:
        status = daemon_main(config)
    except AbduceError as exc:
        _fail(exc)
    console.print(f"daemon finished: {status.get('state')} at {status.get('n')} measurements")


def _control(config: Path, command: str, as_json: bool, timeout: float = 5.0) -> None:
    from abduce.controller.drive.control import request
    from abduce.controller.recipe.settings import load_settings
    from abduce.instruments.keys import load_key

    try:
        settings = load_settings(config)
        _, secret = load_key(settings.instrument.key)
        endpoint = settings.daemon.control
        if endpoint.rpartition(":")[2] == "0":  # bound on a free port: the daemon named it in its run directory
            from abduce.controller.journal.rundir import read_endpoints

            endpoint = read_endpoints(settings.daemon.run_dir)["control"]
        reply = request(endpoint, secret, command, timeout_s=timeout)
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(reply))
        return
    status = reply.get("status") or {}
    if command == "list":
        for c in reply.get("campaigns", []):
            Console().print(f"{c['campaign']}: {c['state']} at {c['n']}/{c['budget']}")
        return
    lead = status.get("leader")
    prob = (status.get("probabilities") or {}).get(lead) if lead else None
    Console().print(
        f"{status.get('campaign')}: {status.get('state')}, {status.get('n')}/{status.get('budget')} measurements"
        + (f", leader {lead} ({prob:.3f})" if lead and prob is not None else "")
    )


@app.command()
def status(
    config: Path = typer.Option(..., "--config", help="The daemon's TOML settings."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable reply."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the daemon."),
) -> None:
    """Ask a running daemon how its campaign stands (answers at once, even mid-fit)."""
    _control(config, "status", as_json, timeout)


@app.command()
def pause(config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Pause after the current measurement."""
    _control(config, "pause", as_json)


@app.command()
def resume(config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Resume a paused campaign."""
    _control(config, "resume", as_json)


@app.command()
def stop(config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Stop cleanly after the current measurement (the daemon resumes from its journal on restart)."""
    _control(config, "stop", as_json)


@app.command()
def sweep(
    config: Path = typer.Argument(..., help="Sweep config (TOML; see controller/rehearse/sweep.py and sweeps/)."),
    out: Path = typer.Option(None, "--out", help="Results folder (default: runs/sweeps/NAME)."),
    scheduler: str = typer.Option(None, help="Address of a running Dask scheduler (default: a LocalCluster here)."),
    workers: int = typer.Option(None, min=1, help="LocalCluster worker processes (default: the cores)."),
    family: list[str] = typer.Option(None, "--family", help="Run only this family of the config (repeatable)."),
) -> None:
    """Run a grid of campaigns (problems x hypothesis sets x policies x seeds) on Dask; table, summary, plot."""
    _pin_threads()
    from abduce.controller.rehearse.sweep import load_sweep, run_sweep

    try:
        cfg = load_sweep(config)
        if family:
            cfg = cfg.only(family)
        total = len(cfg.cells())
    except AbduceError as exc:
        _fail(exc)
    out = out or Path("runs/sweeps") / cfg.sweep.name
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = bar.add_task(f"sweep {cfg.sweep.name}", total=total)
    try:
        with bar:
            _, summary = run_sweep(
                cfg,
                out,
                scheduler=scheduler,
                workers=workers,
                progress=lambda done, _: bar.update(task, completed=done),
            )
    except AbduceError as exc:
        _fail(exc)
    table = Table(title=f"{total} campaigns; n95 = measurements to identify the truth in 95% of seeds")
    for col in summary.columns:
        table.add_column(col)
    for row in summary.itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)
    console.print(f"results: {out}/results.csv, {out}/summary.csv, {out}/identification.png")


@app.command()
def replay(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite."),
    policy: str = typer.Option(None, help="Policy for the what-if run (default: the recorded one)."),
    hypotheses: str = typer.Option(
        None, help="Comma-separated hypotheses for the what-if run (default: the recorded ones)."
    ),
    against: str = typer.Option(None, help="simulated:NAME or recorded:PATH (default: the simulator the run used)."),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="Option KEY=VALUE of --against's driver (repeatable)."
    ),
    truth: str = typer.Option(None, help="The hypothesis that is true for this sample, where known."),
    out: Path = typer.Option(None, "--out", help="Keep the what-if run's run directory here."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Re-run a recorded campaign with another policy or hypothesis set; print both side by side."""
    _pin_threads()
    from abduce.controller.rehearse.whatif import rows, what_if

    try:
        result = what_if(
            run,
            policy=policy,
            hypotheses=_split(hypotheses) if hypotheses else None,
            against=against,
            options=_options(option),
            truth=truth,
            out=out,
        )
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result, default=float))
        return
    table = Table(title=f"{run} replayed against {result['source']}")
    table.add_column("")
    table.add_column("recorded")
    table.add_column("what if")
    for row in rows(result):
        table.add_row(*row)
    Console().print(table)


@app.command("inspect")
def inspect_cmd(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite (read-only; a running daemon's too)."),
    step: int = typer.Option(None, "--step", min=0, help="Show the campaign as it stood after N measurements."),
    as_json: bool = typer.Option(
        False, "--json", help="The same as JSON (schema: abduce.controller.views.inspection)."
    ),
) -> None:
    """Summarise a campaign from its journal: hypotheses, measurements, stopping state (no refitting)."""
    from abduce.controller.views.inspection import inspect_run, render

    try:
        inspection = inspect_run(run, step)
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(inspection.model_dump_json(indent=2))
        return
    out = Console()
    for part in render(inspection):
        out.print(part)


@app.command()
def plot(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite."),
    out: Path = typer.Option(..., "--out", help="Folder for the figures (NAME.png or NAME.svg)."),
    step: int = typer.Option(None, "--step", min=0, help="The campaign as it stood after N measurements."),
    fmt: str = typer.Option("png", "--format", help="png or svg."),
) -> None:
    """Plot posteriors, probabilities, choices and rewards, the acquisition and raw spectra."""
    _pin_threads(all_cores=True)
    from abduce.controller.views.plots import write_plots

    try:
        plots = write_plots(run, out, step, fmt)
    except AbduceError as exc:
        _fail(exc)
    for name in plots.figures:
        console.print(f"wrote {out / f'{name}.{fmt}'}")
    for name, why in plots.skipped.items():
        console.print(f"skipped {name}: {why}")


@app.command()
def report(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite."),
    out: Path = typer.Option(..., "--out", help="The HTML file to write (self-contained)."),
    step: int = typer.Option(None, "--step", min=0, help="The campaign as it stood after N measurements."),
) -> None:
    """One self-contained HTML page: summary tables, plots, measurements and the config."""
    _pin_threads(all_cores=True)
    from abduce.controller.views.report import write_report

    try:
        path = write_report(run, out, step)
    except AbduceError as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite."),
    out: Path = typer.Option(..., "--out", help="FILE.nc or FILE.h5 (NetCDF-4 / HDF5, never overwritten)."),
    step: int = typer.Option(None, "--step", min=0, help="The campaign as it stood after N measurements."),
    posteriors: bool = typer.Option(
        True, "--posteriors/--no-posteriors", help="Rebuild the campaign for its posteriors."
    ),
) -> None:
    """Measurements, raw arrays and posteriors as one NetCDF/HDF5 file (xarray, h5netcdf)."""
    _pin_threads(all_cores=True)
    from abduce.controller.views.export import export_run

    try:
        path = export_run(run, out, step, posteriors)
    except AbduceError as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@app.command()
def serve(
    runs: list[Path] = typer.Argument(
        ..., help="Run directories or journal files (a directory may wait for its journal)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback a token is required."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port (0: a free one)."),
    token: str = typer.Option(
        None,
        envvar="ABDUCE_WEB_TOKEN",
        show_envvar=True,
        help="Every request must carry it (?token= or Authorization: Bearer); required beyond loopback.",
    ),
) -> None:
    """A live, read-only web page of campaigns: status and plots, updated as measurements arrive."""
    _pin_threads()
    from abduce.controller.errors import ConfigError
    from abduce.controller.recipe.addresses import loopback
    from abduce.controller.views.web import WebServer

    try:
        missing = [str(r) for r in runs if not r.exists()]
        if missing:
            raise ConfigError(f"no such run directory or journal: {', '.join(missing)}")
        server = WebServer(runs, host, port, token)
    except AbduceError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"))
    console.print(
        f"serving {len(runs)} campaign{'s' if len(runs) != 1 else ''} at {server.url}"
        + ("?token=..." if token else ""),
        soft_wrap=True,
        highlight=False,
    )
    if not loopback(host):
        console.print(
            "plain HTTP beyond loopback: the token travels in clear; prefer an SSH tunnel or a TLS proxy",
            soft_wrap=True,
            highlight=False,
        )
    server.run()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m abduce.controller.cli`
    app()
