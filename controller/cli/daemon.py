"""The daemon and its control lane: ``abduce daemon``, ``status``, ``pause``, ``resume``, ``stop``, the
operator's buttons for the instrument: ``abort``, ``safe-state``, ``release``, and ``accept`` (a composed law
the campaign suggested)."""

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


def _lane(target: Path, key: Path | None = None) -> tuple[str, bytes]:
    """The control endpoint and signing secret of the daemon that ``target`` names: its TOML config, or its
    run directory (whose ``endpoints.json`` names the lane bound) with ``key``, the daemon's key file.

    Raises:
        ConfigError: neither, or a run directory without ``key`` or that no daemon wrote.
    """
    from abduce.controller.errors import ConfigError
    from abduce.controller.journal.rundir import read_endpoints
    from abduce.controller.recipe.settings import load_settings
    from abduce.instruments.keys import load_key

    if target.is_dir():
        try:
            mode = json.loads((target / "config.json").read_text(encoding="utf-8")).get("mode")
        except (OSError, ValueError):
            raise ConfigError(f"{target} is not a run directory (no readable config.json)") from None
        if mode != "daemon":
            raise ConfigError(f"{target} was run {mode!r}, not by a daemon: there is no control lane to reach")
        if key is None:
            raise ConfigError(
                f"{target} is a daemon's run directory: give its key (--key, the [instrument] key of its config), "
                "or the config file instead"
            )
        _, secret = load_key(key)
        return read_endpoints(target)["control"], secret
    settings = load_settings(target)
    _, secret = load_key(key or settings.instrument.key)
    endpoint = settings.daemon.control
    if endpoint.rpartition(":")[2] == "0":  # bound on a free port: the daemon named it in its run directory
        endpoint = read_endpoints(settings.daemon.run_dir)["control"]
    return endpoint, secret


def _control(config: Path, command: str, as_json: bool, timeout: float = 5.0, key: Path | None = None, **args) -> None:
    from abduce.controller.drive.control import request

    try:
        endpoint, secret = _lane(config, key)
        reply = request(endpoint, secret, command, timeout_s=timeout, **{k: v for k, v in args.items() if v})
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(reply))
        return
    if "accepted" in reply:
        a = reply["accepted"]
        Console().print(
            f"accepted {a['name']} ({a['formula']}) after {reply['n']} measurements: it is fitted with the next "
            "one and competes from then on"
        )
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
        + (f"; suggested: {', '.join(status['suggested'])} (abduce accept)" if status.get("suggested") else "")
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
    pauses with \\[instrument] on_abort = "pause")."""
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


@app.command()
def accept(
    run: Path = typer.Argument(..., help="The daemon's TOML config, or its run directory (with --key)."),
    name: str = typer.Argument(..., help="The suggested law, as abduce status or abduce propose RUN names it."),
    key: Path = typer.Option(None, help="With a run directory: the daemon's key file (its \\[instrument] key)."),
    timeout: float = typer.Option(
        600.0, help="Seconds to wait: the daemon accepts between two requests, after the measurement under way."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable reply."),
) -> None:
    """Add a composed law the daemon suggested (\\[campaign] propose = "suggest") to its campaign as a contender;
    journalled, then applied between two requests (a resume applies it at the same place)."""
    _control(run, "accept", as_json, timeout, key, name=name)
