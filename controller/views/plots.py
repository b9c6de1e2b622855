"""``abduce plot RUN --out DIR``: what a campaign believed, as pictures.

Each figure function returns a :class:`matplotlib.figure.Figure` (built
without pyplot, so no global state and no display is touched; PNG through
Agg, SVG by the file's extension):

==================== =============================================================
``posteriors``       per hypothesis, its posterior over the space with the
                     measurements on top: mean ± 2 sd (1D; one panel each,
                     titled with the hypothesis and its probability), or maps
                     of the mean and the sd (2D). From the rebuilt campaign.
``probabilities``    the posterior probability of every hypothesis at each step.
                     From the journal alone.
``choices``          what the policy did, by its own criterion: for a bandit
                     (epsilon-greedy), which hypothesis chose each point and the
                     reward it earned, and each hypothesis's running mean reward
                     (from the journal alone); for ``discriminate``, its
                     acquisition value at each point it chose (from snapshots of
                     the campaign before each step; about 40 steps at most,
                     every 2^k-th one on long runs).
``acquisition``      the acquisition over the space for the next measurement
                     after step N (finite spaces: the campaign's own
                     ``Acquisition.score`` over its candidate posteriors, as
                     ``Campaign.ask`` computes it, measured candidates masked;
                     boxes: its BoTorch acquisition at the reference points).
                     From the rebuilt campaign.
``proposals``        where abduction added a composed law
                     (:mod:`abduce.controller.views.proposal_plot`): the best
                     proposed law against the best declared one on the data
                     (1D: means ± 2 sd, residuals below; 2D: mean maps,
                     residual maps). From the rebuilt campaign; a campaign
                     that proposed nothing has no such figure.
``spectra``          for spectroscopic campaigns (measurements journalled with
                     raw ``arrays``): a few raw spectra, each titled with the
                     value reduced from it, next to all the reduced values.
==================== =============================================================

The posteriors and the acquisition need the campaign as it stood after N
measurements: :func:`abduce.controller.journal.rebuild.snapshot` loads the data and
conditions each hypothesis's latest journalled fit once (no replay, no
refitting; seconds at 10^4 measurements). A journal that cannot be
rebuilt (one that abduce did not write, say) still gets the plots that need
only its events; :func:`write_plots` says which were skipped and why.

Every axis is labelled ``name (unit)`` as the instrument declared it (the name
alone for a dimensionless quantity), and steps count from 0 everywhere, as the
journal, ``abduce inspect`` and ``abduce export`` count them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from abduce.controller.errors import AbduceError
from abduce.controller.journal.events import read
from abduce.controller.journal.store import Journal
from abduce.controller.views.criterion import criterion_trace
from abduce.controller.views.figures import (
    NothingToPlot,
    acquisition_figure,
    choices_figure,
    posteriors_figure,
    probabilities_figure,
)
from abduce.controller.views.inspection import Inspection, inspect_journal, journal_path
from abduce.controller.views.proposal_plot import proposals_figure
from abduce.controller.views.spectra import spectra_figure, spectra_of

FORMATS = ("png", "svg")


@dataclass
class Plots:
    """The figures of one run (by name) and the ones skipped, with why."""

    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    inspection: Inspection | None = None
    config: dict[str, Any] = field(default_factory=dict)


def build_plots(
    journal: Journal, step: int | None = None, rebuild_campaign: bool = True, events: list | None = None
) -> Plots:
    """Every figure of the journal's campaign after ``step`` measurements (all by default); ``events``: all
    the journal's events, typed, when the caller has read them already."""
    if events is None:
        events = list(read(journal))  # read once: the inspection and the snapshot both need them
    out = Plots(inspection=inspect_journal(journal, step, events), config=journal.config())
    ins = out.inspection
    ylabel = ins.explained.label
    out.figures["probabilities"] = probabilities_figure(ins)
    campaign = None
    if rebuild_campaign:
        from abduce.controller.journal.rebuild import snapshot

        try:
            _, campaign = snapshot(journal, upto=ins.stopping.measurements, events=events)
        except AbduceError as exc:
            out.skipped["posteriors"] = out.skipped["acquisition"] = f"the campaign could not be rebuilt: {exc}"
            if ins.proposals:
                out.skipped["proposals"] = out.skipped["posteriors"]
    else:
        out.skipped["posteriors"] = out.skipped["acquisition"] = "not asked for (no rebuild)"
    criterion = None
    if campaign is not None:
        for name, make in (
            ("posteriors", lambda: posteriors_figure(campaign, ylabel)),
            ("acquisition", lambda: acquisition_figure(campaign)),
            *([("proposals", lambda: proposals_figure(campaign, ins, ylabel))] if ins.proposals else []),
        ):
            try:
                out.figures[name] = make()
            except NothingToPlot as exc:
                out.skipped[name] = str(exc)
        if ins.stopping.policy == "discriminate":  # no hypothesis chooses: show what the acquisition scored
            try:
                criterion = criterion_trace(journal, ins, events)
            except AbduceError as exc:  # NothingToPlot too: the choices figure is drawn without them
                out.skipped["choices-acquisition"] = f"no acquisition values for the choices figure: {exc}"
    out.figures["choices"] = choices_figure(ins, criterion)
    spectra = spectra_of(journal, ins, events)
    if spectra:
        out.figures["spectra"] = spectra_figure(spectra, xlabel=ins.axes[0].label if ins.axes else "x", ylabel=ylabel)
    return out


def save(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig``; the format follows the extension (``.png``, ``.svg``)."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def write_plots(run: str | os.PathLike, out: str | os.PathLike, step: int | None = None, fmt: str = "png") -> Plots:
    """Write every figure of ``run`` into the folder ``out`` as ``NAME.FMT``; returns them (and what was skipped).

    Raises:
        ConfigError: an unknown format.
    """
    from abduce.controller.errors import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"unknown plot format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Journal.open(journal_path(run), readonly=True) as journal:
        plots = build_plots(journal, step)
    for name, fig in plots.figures.items():
        save(fig, out / f"{name}.{fmt}")
    return plots
