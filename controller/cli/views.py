"""Looking at a campaign: ``abduce inspect``, ``plot``, ``report``, ``export`` and ``serve``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from abduce.controller.cli.common import _fail, _pin_threads, app, console
from abduce.controller.cli.names import one_of
from abduce.controller.cli.paths import out_file, out_folder, run_path
from abduce.controller.errors import AbduceError
from abduce.controller.registry import check_name


@app.command("inspect")
def inspect_cmd(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite (read-only; a running daemon's too)."),
    step: int = typer.Option(None, "--step", min=0, help="Show the campaign as it stood after N measurements."),
    as_json: bool = typer.Option(
        False, "--json", help="The same as JSON (schema: abduce.controller.views.inspection)."
    ),
) -> None:
    """Summarise a campaign from its journal: hypotheses, proposals, measurements, stopping state (no refitting)."""
    from abduce.controller.views.inspection import inspect_run
    from abduce.controller.views.terminal import render

    try:
        inspection = inspect_run(run_path(run), step)
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
    fmt: str = typer.Option("png", "--format", help=f"The figures' format: {one_of('plot format')}."),
) -> None:
    """Plot posteriors, probabilities, choices and rewards, the acquisition, raw spectra and, where abduction
    added a composed law, the best one against the best declared law with their residuals (proposals)."""
    _pin_threads(all_cores=True)
    try:  # before matplotlib and torch are imported
        check_name("plot format", fmt)
        run_path(run)
        out_folder(out, "for the figures")
        from abduce.controller.views.plots import write_plots

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
    try:
        run_path(run)
        out_file(out, "the HTML page")
        from abduce.controller.views.report import write_report

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
    try:
        run_path(run)
        out_file(out, "FILE.nc or FILE.h5")
        from abduce.controller.views.export import export_run

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
        for r in runs:
            run_path(r, may_wait=True)
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
