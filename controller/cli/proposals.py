"""``abduce propose RUN``: one proposal round on a run's data, offline, adding nothing.

The run's journal is opened read-only (a finished run, or a daemon's while it runs) and loaded as it
stands (:func:`abduce.controller.journal.rebuild.snapshot`: no step replayed); then the campaign's own
round (:meth:`abduce.controller.core.abduction.Abduction.run`, ``admit=False``) composes laws from its
declared hypotheses up to ``--depth`` steps, screens them, fits the best ``propose_fits`` in full and
returns them, best first, without adding any. Seeded as a live round after the same measurement is, so it
finds what the campaign's own round there would (within the rounding a snapshot differs by).

For a daemon's run with ``propose = "suggest"`` the answer also names the laws its rounds suggested and no
operator has accepted yet: ``abduce accept RUN NAME`` adds one of those, while the daemon runs.

JSON (``--json``)::

    {"run": str, "n": int, "depth": int, "mode": str, "propose": "off" | "add" | "suggest",
     "admit": float,                 # the run's propose_admit (below 1: P if added from which a law is admitted)
     "proposals": [PROPOSAL, ...],   # abduce.controller.core.abduction.Proposal as JSON, best first;
                                     # "suggested": true where it is credible (a live round would add it)
     "units": {name: {param: unit}},
     "acceptable": [name, ...],      # suggested by the run's rounds, not accepted (a daemon in suggest mode)
     "accepted": [name, ...]}        # accepted by an operator (journalled)
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from abduce.controller.cli.common import _fail, _pin_threads, app
from abduce.controller.cli.paths import run_path
from abduce.controller.errors import AbduceError, ConfigError


def propose_round(run: Path, depth: int | None = None) -> dict:
    """One dry proposal round on ``run`` (a run directory or its journal), as the module docstring's JSON.

    Raises:
        ConfigError: the run has too few measurements for a round (no law fitted yet).
        JournalError: the journal does not read.
    """
    from dataclasses import replace

    from abduce.controller.journal.events import read
    from abduce.controller.journal.rebuild import snapshot
    from abduce.controller.journal.store import Journal
    from abduce.controller.views.labels import labels_of
    from abduce.controller.views.proposals import parameter_units

    path = run / "journal.sqlite" if run.is_dir() else run
    with Journal.open(path, readonly=True) as journal:
        config = journal.config()
        events = list(read(journal))
        spec, campaign = snapshot(journal, events=events)
    if not any(slot.fit is not None for slot in campaign.belief.slots):
        raise ConfigError(
            f"{run} has {campaign.n} measurements and no law fitted yet (the first fit comes after "
            f"n_init = {campaign.settings.n_init}): nothing to compose a proposal against"
        )
    if depth is not None:
        campaign.settings = replace(campaign.settings, propose_depth=depth)
    step = campaign.n - 1  # seeded as the campaign's own round after this measurement
    found = campaign.abduction.run(campaign, step, f"abduce propose after {campaign.n} measurements", {}, admit=False)
    labels = labels_of(config, campaign.space.d)
    accepted = [e.body.name for e in events if e.kind == "accept"]
    recorded = campaign.proposals
    suggested = [p["name"] for p in recorded if p.get("suggested")]
    joined = set(accepted) | {p["name"] for p in recorded if p.get("added")}
    return {
        "run": str(run),
        "n": campaign.n,
        "depth": campaign.settings.propose_depth,
        "mode": spec.mode,
        "propose": spec.propose,
        "admit": campaign.settings.propose_admit,
        "proposals": [p.to_json() for p in found],
        "units": {p.name: parameter_units(p.tree, labels) for p in found},
        "acceptable": sorted({n for n in suggested if n not in joined}),
        "accepted": accepted,
    }


def proposals_table(result: dict) -> Table:
    """The round's candidates, best first: law, depth, log evidence ± se, P if added, prior weight, and its
    parameters (posterior mean ± sd, in units), one a line; the formulas follow (:func:`caption`)."""
    from abduce.controller.views.terminal import estimate

    def with_unit(value: str, unit: str) -> str:  # a dimensionless "1" is not written
        return f"{value} {unit}" if unit and unit != "1" else value

    table = Table(title=f"composed laws after {result['n']} measurements (depth ≤ {result['depth']})")
    table.add_column("law")
    table.add_column("depth", justify="right")
    table.add_column("log evidence", justify="right")
    table.add_column("P if added", justify="right")
    table.add_column("prior weight", justify="right")
    table.add_column("parameters (mean ± sd)", no_wrap=True)
    for p in result["proposals"]:
        units = result["units"].get(p["name"], {})
        evidence = "-" if p["log_evidence"] is None else f"{p['log_evidence']:.2f}"
        if p["log_evidence"] is not None and p["log_evidence_se"] is not None:
            evidence += f" ± {p['log_evidence_se']:.2f}"
        table.add_row(
            p["name"] + (" *" if p["suggested"] else ""),
            str(p["depth"]),
            evidence,
            "-" if p["probability"] is None else f"{p['probability']:.3f}",
            f"{p['weight']:.3g}",
            "\n".join(f"{k} = {with_unit(estimate(*v), units.get(k, ''))}" for k, v in p["parameters"].items()),
        )
    return table


def caption(result: dict) -> list[str]:
    """The formulas, and what the table means for this run, line by line (what a round would propose now,
    what can be accepted)."""
    lines = [f"{p['name']}: m = {p['formula']}" for p in result["proposals"]]
    admit = result.get("admit")
    better = "better than every law" + (f" (or P if added >= {admit:g})" if admit is not None and admit < 1 else "")
    if any(p["suggested"] for p in result["proposals"]):
        lines.append(f"* explains the data {better}: a round now would propose it")
    elif result["proposals"]:
        lines.append(f"none explains the data {better}: a round now would propose nothing")
    else:
        lines.append("no composition could be fitted (every candidate is already a contender, or every fit failed)")
    if result["acceptable"]:
        waiting = ", ".join(result["acceptable"])
        if result["mode"] == "daemon":
            lines.append(f"suggested by the daemon, not accepted: {waiting} (abduce accept RUN NAME adds one)")
        else:
            lines.append(f"suggested by the run, not accepted: {waiting}")
    if result["accepted"]:
        lines.append("accepted by an operator: " + ", ".join(result["accepted"]))
    return lines


@app.command()
def propose(
    run: Path = typer.Argument(
        ..., help="A run directory or its journal.sqlite (read-only: a running daemon's too; nothing is written)."
    ),
    depth: int = typer.Option(
        None, "--depth", min=1, max=3, help="Composition steps to enumerate \\[default: the run's propose_depth]."
    ),
    as_json: bool = typer.Option(False, "--json", help="The same as JSON (schema: abduce.controller.cli.proposals)."),
) -> None:
    """Compose laws from a run's hypotheses and fit the best on its data, adding nothing: which would compete,
    with their evidence, probability if added and parameters."""
    _pin_threads()
    try:
        run_path(run)
        result = propose_round(run, depth)
    except AbduceError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result))
        return
    out = Console()
    out.print(f"{result['run']}: one proposal round on its data (nothing added)")
    out.print(proposals_table(result))
    for line in caption(result):
        out.print(line, highlight=False, markup=False)
