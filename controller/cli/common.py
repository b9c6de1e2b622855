"""What every command shares: the app, the console, thread defaults, progress, errors, tables."""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from abduce.controller.core.verdict import leader

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
        lead = leader(record.probabilities, record.log_evidence) or "-"  # "no leader" below where one is unfitted
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
