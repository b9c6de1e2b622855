"""The instrument side: ``abduce keys new`` and ``abduce instrument serve`` (an agent)."""

from __future__ import annotations

from pathlib import Path

import typer

from abduce.controller.cli.common import _fail, _options, app, console
from abduce.controller.cli.names import one_of
from abduce.controller.errors import AbduceError

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
        help=f"simulated:SIMULATOR ({one_of('simulator')}), recorded:PATH (HDF5/NSID, NetCDF, NPZ), "
        "ophyd:MODULE:FACTORY (ophyd devices through bluesky) or [package.]module:DriverClass.",
    ),
    connect: str = typer.Option(..., help="The controller's endpoint, e.g. tcp://127.0.0.1:5555."),
    key: Path = typer.Option(..., help="Signing key file."),
    instrument_id: str = typer.Option(None, "--id", help="Instrument name (default: the driver spec)."),
    truth: str = typer.Option(
        "second-order", help=f"simulated:transition-1d: the law its data follow, {one_of('truth')}."
    ),
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
