"""The ``abduce`` command line.

Argument parsing lives here; the work lives in :func:`run_in_process` and the
modules it calls, so a notebook or a test can do the same without a shell.
"""

from __future__ import annotations

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


def _pin_threads() -> None:
    """Thread defaults measured by tests/benchmarks/thread_settings.py (README, "Speed").

    Passive OpenMP waits and one intra-op thread were fastest for the small
    GP fits that dominate a campaign; OMP_NUM_THREADS, when set, wins. Must run
    before torch is imported (the commands import it lazily).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_in_process(opts, out: Path, progress: bool = True) -> dict:
    """Run a :class:`~abduce.controller.simulated.SimulatedRun`; write the run directory; return the summary."""
    import dataclasses

    from abduce.controller.rundir import RunDirectory

    rundir = RunDirectory(out, {"mode": "in-process", **dataclasses.asdict(opts)})

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    ) as bar:
        task = bar.add_task(f"{opts.policy}", total=opts.budget, status="")

        def show(record) -> None:
            lead = max(record.probabilities, key=record.probabilities.get) if record.probabilities else "-"
            p = record.probabilities.get(lead, 0.0) if record.probabilities else 0.0
            bar.update(task, completed=record.step + 1, status=f"leader {lead} ({p:.2f})")

        try:
            campaign = opts.run([rundir, show])
        except BaseException:
            rundir.close()
            raise
    return rundir.finish(campaign)


def summary_table(summary: dict) -> Table:
    """The end-of-run table: hypothesis, probability, parameters +- sd, times chosen."""
    table = Table(title=f"{summary['measurements']} measurements; leader: {summary['leader']}")
    table.add_column("hypothesis")
    table.add_column("probability", justify="right")
    table.add_column("parameters (posterior mean ± sd)")
    table.add_column("times chosen", justify="right")
    for h in sorted(summary["hypotheses"], key=lambda h: -h["probability"]):
        params = ", ".join(f"{k} = {v['mean']:.4g} ± {v['sd']:.2g}" for k, v in h["parameters"].items())
        table.add_row(h["name"], f"{h['probability']:.3f}", params, str(h["times_chosen"]))
    return table


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
) -> None:
    """Run a campaign in-process against a simulator and leave a run directory."""
    _pin_threads()
    from abduce.controller.simulated import SimulatedRun

    opts = SimulatedRun(
        simulator=simulator, truth=truth, hypotheses=_split(hypotheses), policy=policy, acquisition=acquisition,
        budget=budget, seed=seed, x_c=x_c, beta=beta, noise=noise, grid=grid, n_init=n_init, epsilon=epsilon,
    )
    try:
        summary = run_in_process(opts, out, progress=not quiet)
    except AbduceError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    Console().print(summary_table(summary))
    console.print(f"run directory: {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory to create."),
    seed: int = typer.Option(0, help="Seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """The main job: a 40-measurement campaign on a simulated second-order transition."""
    run(
        out=out, simulator="transition-1d", truth="second-order", hypotheses="second-order,first-order,linear,sigmoid",
        policy="discriminate", acquisition=None, budget=40, seed=seed, x_c=0.6, beta=0.5, noise=None, grid=501,
        n_init=5, epsilon=0.1, quiet=quiet,
    )


def main() -> None:  # pragma: no cover - console entry point
    app()
