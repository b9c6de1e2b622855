"""The raw spectra of a spectroscopic campaign next to the values reduced from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from abduce.controller.journal.events import read, refused_points
from abduce.controller.journal.store import Journal
from abduce.controller.views.figures import NothingToPlot, color
from abduce.controller.views.inspection import Inspection

SPECTRA_SHOWN = 4


@dataclass(frozen=True)
class Spectrum:
    """One measurement's raw arrays (``{name: array}``) and the value reduced from them."""

    step: int
    x: tuple[float, ...]
    y: float
    arrays: dict[str, np.ndarray]


def spectra_of(journal: Journal, inspection: Inspection, events: list | None = None) -> list[Spectrum]:
    """The raw arrays journalled with the inspected measurements (those that have any), each with its own
    row: measurements are matched by request and point (``(request_id, index)``: a batch's points apart),
    the told ones in the order the inspection lists them (the readings ``tell`` refused are no rows)."""
    if not any(m.arrays for m in inspection.measurements):
        return []
    events = list(read(journal)) if events is None else events
    refused = refused_points(events)[0]
    told = [e for e in events if e.kind == "measurement" and (e.request_id, e.body.index) not in refused]
    out = []
    for e, m in zip(told, inspection.measurements):  # the inspection's rows are the told measurements, in order
        if m.arrays and e.body.arrays:
            arrays = {k: a.array() for k, a in e.body.arrays.items()}
            out.append(Spectrum(m.step, tuple(m.x), m.y, arrays))
    return out


def spectra_figure(
    spectra: list[Spectrum], shown: int = SPECTRA_SHOWN, xlabel: str = "x", ylabel: str = "reduced value"
) -> Figure:
    """A few raw spectra (evenly spread over the campaign), next to every reduced value with those marked.

    A ``2 x m`` array is drawn as row 1 against row 0 (a loop: response against
    bias), a 1D array against its index, anything else as an image.

    Raises:
        NothingToPlot: no measurement carries raw arrays.
    """
    if not spectra:
        raise NothingToPlot("no measurement was journalled with raw arrays")
    picks = sorted({int(round(v)) for v in np.linspace(0, len(spectra) - 1, min(shown, len(spectra)))})
    fig = Figure(
        figsize=(4 * (len(picks) + 1) if len(picks) < 4 else 16, 3.6 if len(picks) < 4 else 7), layout="constrained"
    )
    ncols = len(picks) + 1 if len(picks) < 4 else 3
    nrows = 1 if len(picks) < 4 else 2
    grid = fig.add_gridspec(nrows, ncols)
    for j, i in enumerate(picks):
        s = spectra[i]
        ax = fig.add_subplot(grid[j // (ncols - 1), j % (ncols - 1)])
        name, a = next(iter(s.arrays.items()))
        if a.ndim == 2 and a.shape[0] == 2:
            ax.plot(a[0], a[1], color=color(j))
            ax.set_xlabel(f"{name}[0]")
            ax.set_ylabel(f"{name}[1]")
        elif a.ndim == 1:
            ax.plot(a, color=color(j))
            ax.set_xlabel("index")
            ax.set_ylabel(name)
        else:
            ax.imshow(a.reshape(a.shape[0], -1), aspect="auto")
            ax.set_xlabel(name)
        ax.set_title(f"step {s.step}, x = {', '.join(f'{v:.4g}' for v in s.x)}\n{ylabel} = {s.y:.4g}", fontsize="small")
    summary_ax = fig.add_subplot(grid[:, -1])
    x = np.array([s.x[0] for s in spectra])
    y = np.array([s.y for s in spectra])
    summary_ax.scatter(x, y, s=14, color="k", label=f"measurements ({len(spectra)})")
    summary_ax.scatter(
        x[picks],
        y[picks],
        s=80,
        facecolor="none",
        edgecolor=[color(j) for j in range(len(picks))],
        linewidths=1.5,
        label="spectra shown",
    )
    summary_ax.set_xlabel(xlabel)
    summary_ax.set_ylabel(ylabel)
    summary_ax.set_title("reduced values")
    summary_ax.legend(loc="best", fontsize="small")
    return fig
