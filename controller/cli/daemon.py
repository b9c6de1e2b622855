"""The daemon and its control lane: ``abduce daemon``, ``status``, ``pause``, ``resume``, ``stop``, and the
operator's buttons for the instrument: ``abort``, ``safe-state``, ``release``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from abduce.controller.cli.common import _fail, _pin_threads, app, console
from abduce.controller.cli.names import check_daemon_config
from abduce.controller.errors import AbduceError


@app.command()
def daemon(config: Path = typer.Argument(..., help="TOML settings (see deploy/config/).")) -> None:
    """Run the campaign a config describes; resumes from its journal after any stop."""
    _pin_threads()
    try:
        check_daemon_config(config)  # its names, before torch is imported
        from abduce.controller.daemon import main as daemon_main

        status = daemon_main(config)
    except AbduceError as exc:
        _fail(exc)
    console.print(f"daemon finished: {status.get('state')} at {status.get('n')} measurements")


def _control(config: Path, command: str, as_json: bool, timeout: float = 5.0, **args) -> None:
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
        reply = request(endpoint, secret, command, timeout_s=timeout, **{k: v for k, v in args.items() if v})
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(reply))
        return
    status = reply.get("status") or {}
    if "reply" in reply:  # an instrument command: what the instrument said
        r = reply["reply"]
        Console().print(
            f"{command}: {'done' if r['ok'] else 'NOT done'}" + (f" ({r['detail']})" if r["detail"] else "")
        )
        if not r["ok"]:
            raise typer.Exit(1)
        return
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
def abort(
    config: Path = typer.Option(..., "--config"),
    request_id: str = typer.Option(None, "--request", help="Only this request (default: whatever is measuring)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stop the instrument's running measurement now (its control lane; the campaign skips the point, or
    pauses with [instrument] on_abort = "pause")."""
    _control(config, "abort", as_json, 10.0, request_id=request_id)


@app.command("safe-state")
def safe_state(
    config: Path = typer.Option(..., "--config"),
    reason: str = typer.Option("", help="Why, for the instrument's log and the journal."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Put the instrument in its safe state (beam off, stage parked); nothing is measured until release."""
    _control(config, "safe-state", as_json, 10.0, reason=reason)


@app.command()
def release(
    config: Path = typer.Option(..., "--config"),
    reason: str = typer.Option("", help="Why, for the instrument's log and the journal."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Let the instrument leave its safe state and measure again (protocol 1.1 agents)."""
    _control(config, "release", as_json, 10.0, reason=reason)
