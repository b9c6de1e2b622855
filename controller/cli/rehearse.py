"""Campaigns against simulators and recordings, many at once: ``abduce sweep`` and ``abduce replay``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from abduce.controller.cli.common import _fail, _options, _pin_threads, _split, app, console
from abduce.controller.errors import AbduceError


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
    from abduce.controller.rehearse.sweep import run_sweep
    from abduce.controller.rehearse.sweep_config import load_sweep

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
