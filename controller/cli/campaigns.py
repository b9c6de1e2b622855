"""Running a campaign: ``abduce run`` (in-process, or through an agent with ``--listen``) and ``abduce demo``.

The work lives in :func:`run_in_process` and :func:`run_listening` and the modules they call, so a notebook
or a test can do the same without a shell.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console

from abduce.controller.cli.common import _fail, _pin_threads, _progress, _split, app, console, summary_table
from abduce.controller.cli.names import (
    IN_PROCESS_SIMULATORS,
    PROPOSE_MODES,
    SERVED_SIMULATORS,
    check_run,
    import_plugins,
    one_of,
)
from abduce.controller.cli.paths import out_folder, run_path
from abduce.controller.errors import AbduceError, ConfigError
from abduce.controller.recipe.recipe import TRANSITION_LAWS, Recipe
from abduce.controller.recipe.transfer import checked_transfer


def _given(**options):
    """The options the user gave (the others keep the run's own defaults)."""
    return {k: v for k, v in options.items() if v is not None}


def cheap_channels(pairs: list[str]) -> dict[str, float]:
    """``NAME=COST`` pairs (``--cheap-channel``) -> ``{name: cost}``, in the order given.

    Raises:
        ConfigError: a pair without ``=``, a repeated name, or a cost that is not a number > 0 (naming it).
    """
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        try:
            cost = float(value)
        except ValueError:
            cost = math.nan
        if not sep or not name or not (math.isfinite(cost) and cost > 0):
            raise ConfigError(f"--cheap-channel {pair!r}: give NAME=COST with a cost > 0 (e.g. image=0.05)")
        if name in out:
            raise ConfigError(f"--cheap-channel {name!r} is given twice")
        out[name] = cost
    return out


def _run(field: str):
    """The default of ``abduce run``'s option ``field``: the recipe's (they live in one place)."""
    return Recipe.model_fields[field].default


def past_run(run: Path, **given: float | None):
    """The :class:`~abduce.controller.recipe.transfer.Transfer` from the run ``run`` (a directory or its journal)
    at its end: read-only, before anything of the new run is written."""
    from abduce.controller.journal.rebuild import transfer_from_run

    return transfer_from_run(run_path(run), **given)


def run_in_process(opts, out: Path, progress: bool = True) -> dict:
    """Run a :class:`~abduce.controller.rehearse.simulated.SimulatedRun`; write the run directory; return the
    summary. The campaign and simulator are built once before the run directory exists, so a name or an
    option that cannot be built leaves nothing behind."""
    from abduce.controller.journal.rundir import RunDirectory

    RunDirectory.check_free(out)
    opts.build()  # every name resolved, the simulator's options checked: milliseconds
    rundir = RunDirectory(out, {"mode": "in-process", **opts.model_dump(mode="json")})
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
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.drive.remote import AuditLog, LinkInstrument, channel_names, listening_link
    from abduce.controller.intake.capabilities import space_of
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.instruments.keys import load_key

    load_key(key)  # a bad key is an error before the run directory exists
    RunDirectory.check_free(out)  # before waiting for an instrument, not after
    out.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(out / "audit.jsonl")
    try:
        with listening_link(opts.listen, key, audit, curve_secret, curve_clients) as link:
            from abduce.controller.journal.rundir import write_endpoints

            write_endpoints(out, instrument=link.endpoint)
            console.print(f"listening on {link.endpoint}; waiting for an instrument agent")
            if on_listening is not None:
                on_listening(link.endpoint)
            agent = link.wait_for_agent(timeout_s=opts.wait_s)
            console.print(f"instrument {agent.instrument_id!r} registered (key {agent.key_id!r})")
            # the explained value named by the campaign's channel/reduction, as a rebuild from the journal names it;
            # a channel the instrument lacks is a ConfigError here, before the run directory or any measurement
            campaign = opts.build_campaign(space_of(agent.capabilities, opts.channel, opts.reduction))
            instrument = LinkInstrument(
                link, agent, channel=opts.channel, reduction=opts.reduction, channels=channel_names(campaign)
            )  # cheaper channels the instrument lacks: a ConfigError here too
            config = {
                "mode": "listen",
                **opts.model_dump(mode="json"),
                "instrument": agent.instrument_id,
                "capabilities": agent.capabilities.model_dump(),
            }
            rundir = RunDirectory(out, config)
            bar, show = _progress(opts.policy, opts.budget, progress)
            with bar:
                try:
                    run_campaign(campaign, instrument, [rundir, show], journal=rundir.journal)
                except BaseException as exc:
                    link.bye(
                        "stopped" if isinstance(exc, KeyboardInterrupt) else "error", f"{type(exc).__name__}: {exc}"
                    )
                    rundir.close()
                    raise
            link.bye("done")  # 1.1 agents stop re-registering
            return rundir.finish(campaign)
    finally:
        audit.close()


@app.command()
def run(
    out: Path = typer.Option(..., "--out", help="Run directory to create (must not already hold a run)."),
    simulator: str = typer.Option(
        None,
        help=f"Simulated instrument, in this process: {', '.join(IN_PROCESS_SIMULATORS)} \\[default: transition-1d]. "
        f"The others ({', '.join(SERVED_SIMULATORS)})"
        ": serve them (abduce instrument serve) and use --listen.",
    ),
    truth: str = typer.Option(
        None, help=f"Which law the simulator's data follow: {one_of('truth')} \\[default: second-order]."
    ),
    hypotheses: str = typer.Option(
        ",".join(TRANSITION_LAWS),
        help=f"Comma-separated hypotheses: {one_of('hypothesis')}, or package.module:Name (your own).",
    ),
    policy: str = typer.Option(_run("policy"), help=one_of("policy", {"epsilon-greedy": "the paper's"}) + "."),
    acquisition: str = typer.Option(None, help=f"{one_of('acquisition')} \\[default: the policy's]."),
    budget: int = typer.Option(_run("budget"), min=1, help="Number of measurements."),
    seed: int = typer.Option(_run("seed"), help="Seeds the campaign and the simulator's noise."),
    x_c: float = typer.Option(None, "--x-c", help="Simulator: critical composition \\[default: 0.6]."),
    beta: float = typer.Option(None, help="Simulator: order-parameter exponent \\[default: 0.5]."),
    noise: float = typer.Option(None, help="Simulator: noise sd (default 5% of the amplitude)."),
    grid: int = typer.Option(
        None, min=0, help="Simulator: candidate grid size (0 = continuous space) \\[default: 501]."
    ),
    n_init: int = typer.Option(_run("n_init"), min=1, help="Space-filling measurements before the first fit."),
    epsilon: float = typer.Option(_run("epsilon"), min=0.0, max=1.0, help="epsilon-greedy: exploration probability."),
    q: int = typer.Option(_run("q"), "--q", min=1, max=64, help="Points per request, measured as one batch."),
    propose: str = typer.Option(
        _run("propose"),
        help=f"Composed laws when none of the hypotheses explains the data: {', '.join(PROPOSE_MODES)} (off: never; "
        "add: the best join the campaign as contenders; suggest: recorded for an operator to accept).",
    ),
    propose_depth: int = typer.Option(
        _run("propose_depth"), min=1, max=3, help="Composition steps a proposal may take (sums, backgrounds, ...)."
    ),
    prior_from: Path = typer.Option(
        None,
        "--prior-from",
        help="A past run (directory or journal): its posteriors become this campaign's priors, tempered and mixed "
        "with the declared ones (README, 'Transfer between campaigns').",
    ),
    temper: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="With --prior-from: the past posteriors raised to this power \\[default: 0.5].",
    ),
    transfer_share: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="With --prior-from: the probability that this sample is new (its law and parameters from the "
        "declared priors, or with --transfer-carry its quantities carried over), in (0, 1] \\[default: 0.5].",
    ),
    transfer_drift: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="With --prior-from: how far a parameter may move from the last sample, as a fraction of its "
        "declared range \\[default: 0.1].",
    ),
    transfer_carry: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="With --prior-from: of a new sample, the part whose quantities (a parameter of the same name, unit "
        "and axis as a past law's) carry over while its law is drawn anew, in [0, 1) \\[default: 0].",
    ),
    channel: str = typer.Option(
        None, help="The instrument channel the hypotheses explain (default: its first scalar channel)."
    ),
    reduction: str = typer.Option(
        None,
        help=f"Spectrum -> value, for an array channel: {one_of('reduction')}, or package.module:function "
        "(imported by this controller process).",
    ),
    cheap_channel: list[str] = typer.Option(
        None,
        "--cheap-channel",
        help="NAME=COST, repeatable: a cheaper channel of the instrument to model beside the explained one, and "
        "what one reading of it costs (README, 'Several channels with costs'; with --listen).",
    ),
    cost: float = typer.Option(None, min=0.0, help="With --cheap-channel: one explained reading's cost [default: 1]."),
    cost_unit: str = typer.Option(None, help="With --cheap-channel: the costs' unit (s, a dose...)."),
    cost_budget: float = typer.Option(
        None, min=0.0, help="Stop once the readings have cost this much (besides --budget readings)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    listen: str = typer.Option(
        None,
        help="Bind here (e.g. tcp://127.0.0.1:5555) and run through the instrument agent that registers; the "
        "simulator options are then unused.",
    ),
    key: Path = typer.Option(None, help="Signing key file (with --listen)."),
    wait: float = typer.Option(None, help="With --listen: seconds to wait for an agent \\[default: 60]."),
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
    names = _split(hypotheses)
    try:  # names first: no torch, no run directory (a misspelt one fails in the time Python takes to start)
        check_run(
            simulator=None if listen else simulator,
            truth=None if listen else truth,
            hypotheses=names,
            policy=policy,
            acquisition=acquisition,
            reduction=reduction,
            propose=propose,
        )
        out_folder(out, "the run directory to create")
        if prior_from is not None:
            run_path(prior_from)
            checked_transfer(temper=temper, share=transfer_share, drift=transfer_drift, carry=transfer_carry)
        elif any(v is not None for v in (temper, transfer_share, transfer_drift, transfer_carry)):
            raise ConfigError(
                "--temper, --transfer-share, --transfer-drift and --transfer-carry go with --prior-from RUN"
            )
        cheap = cheap_channels(cheap_channel or [])
        if not cheap and (cost is not None or cost_unit is not None):
            raise ConfigError("--cost and --cost-unit go with --cheap-channel NAME=COST")
        import_plugins(names, reduction)
    except AbduceError as exc:
        _fail(exc)
    recipe = dict(
        hypotheses=names,
        policy=policy,
        acquisition=acquisition,
        budget=budget,
        seed=seed,
        n_init=n_init,
        epsilon=epsilon,
        q=q,
        propose=propose,
        propose_depth=propose_depth,
        **_given(channel=channel, reduction=reduction, cost=cost, cost_unit=cost_unit, cost_budget=cost_budget),
        **({"cheap_channels": cheap} if cheap else {}),
    )
    try:
        if listen and key is None:  # before the past run is read
            raise typer.BadParameter("--listen needs --key (make one with `abduce keys new PATH`)")
        if prior_from is not None:
            recipe["transfer"] = past_run(
                prior_from, temper=temper, share=transfer_share, drift=transfer_drift, carry=transfer_carry
            )
        if listen:
            from abduce.controller.drive.remote import ListenRun

            opts = ListenRun.of(listen=listen, **recipe, **_given(wait_s=wait))
            summary = run_listening(
                opts, key, out, progress=not quiet, curve_secret=curve_secret, curve_clients=curve_clients
            )
        else:
            from abduce.controller.rehearse.simulated import SimulatedRun

            simulator_options = _given(simulator=simulator, truth=truth, x_c=x_c, beta=beta, noise=noise, grid=grid)
            opts = SimulatedRun.of(**recipe, **simulator_options)
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
        out_folder(out, "the run directory to create")
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

    opts = ListenRun(listen="tcp://127.0.0.1:0", hypotheses=TRANSITION_LAWS, seed=seed)
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
