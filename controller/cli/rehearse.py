"""Campaigns against simulators and recordings, many at once: ``abduce sweep`` and ``abduce replay``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from abduce.controller.cli.common import _fail, _options, _pin_threads, _split, app, console
from abduce.controller.cli.names import check_hypotheses, check_source, import_plugins, one_of
from abduce.controller.cli.paths import out_folder, run_path
from abduce.controller.errors import AbduceError
from abduce.controller.registry import check_name


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

    try:  # the config's names are checked without torch (sweep_config), before any folder is made
        cfg = load_sweep(config)
        if family:
            cfg = cfg.only(family)
        total = len(cfg.cells())
        out = out_folder(out or Path("runs/sweeps") / cfg.sweep.name, "for the sweep's results")
    except AbduceError as exc:
        _fail(exc)
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
    table = Table(
        title=f"{total} campaigns; n95: measurements to identify the truth in 95% of them; found: identified "
        "at the budget; wrong: a wrong law at P >= 0.9; RMSE, max err: the reconstruction (medians; every "
        f"column in {out}/summary.csv)"
    )
    shown = {k: v for k, v in SHOWN.items() if k in summary.columns}
    for label in shown.values():
        table.add_column(label)
    for row in summary[list(shown)].itertuples(index=False):
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)
    for line in reconstruction_lines(summary):
        Console().print(line, soft_wrap=True, highlight=False)
    console.print(f"results: {out}/results.csv, {out}/summary.csv, {out}/identification.png")


SHOWN = {
    "problem": "problem",
    "hypothesis_set": "set",
    "policy": "policy",
    "seeds": "runs",
    "n95": "n95",
    "identified_at_budget": "found",
    "wrong_at_09": "wrong",
    "median_rmse": "RMSE",
    "median_max_error": "max err",
    "median_seconds": "s",
}
"""The summary's columns the terminal table shows (summary.csv has them all), and their headings."""


def _unit(unit: str | None) -> str:
    """`` UNIT`` to follow a number; nothing for a dimensionless ("1") or undeclared unit."""
    return f" {unit}" if unit and unit != "1" else ""


def reconstruction_lines(summary) -> list[str]:
    """One line per (problem, set, policy) whose reconstruction was scored: the median RMSE and largest
    error of the final leader's posterior mean, in the channel's unit, and what they were scored against."""
    out = []
    for r in summary.to_dict("records"):
        if not r.get("error_against"):
            continue
        unit = _unit(r.get("error_unit"))
        out.append(
            f"{r['problem']} / {r['hypothesis_set']} / {r['policy']}: reconstruction vs the {r['error_against']}, "
            f"median RMSE {r['median_rmse']:.3g}{unit}, median max error {r['median_max_error']:.3g}{unit}"
        )
    return out


@app.command()
def replay(
    run: Path = typer.Argument(..., help="A run directory or its journal.sqlite."),
    policy: str = typer.Option(
        None, help=f"Policy for the what-if run: {one_of('policy')} (default: the recorded one)."
    ),
    hypotheses: str = typer.Option(
        None,
        help=f"Comma-separated hypotheses for the what-if run: {one_of('hypothesis')}, or package.module:Name "
        "(default: the recorded ones).",
    ),
    against: str = typer.Option(
        None,
        help=f"simulated:NAME ({one_of('simulator')}) or recorded:PATH (default: the simulator the run used).",
    ),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="Option KEY=VALUE of --against's driver (repeatable)."
    ),
    truth: str = typer.Option(
        None, help="The hypothesis that is true for this sample, where known (one of the what-if run's)."
    ),
    out: Path = typer.Option(None, "--out", help="Keep the what-if run's run directory here."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Re-run a recorded campaign with another policy or hypothesis set; print both side by side."""
    _pin_threads()
    names = _split(hypotheses) if hypotheses else None
    try:  # names and paths first: no torch, nothing written
        run_path(run)
        if policy is not None:
            check_name("policy", policy)
        check_hypotheses(names or ())
        if truth is not None:
            check_name("hypothesis", truth, dotted=True)
        if against is not None:
            check_source(against)
        if out is not None:
            out_folder(out, "the what-if run's run directory")
        import_plugins(names or ())
    except AbduceError as exc:
        _fail(exc)
    from abduce.controller.rehearse.whatif import rows, what_if

    try:
        result = what_if(
            run,
            policy=policy,
            hypotheses=names,
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
