"""Every figure of a campaign, one function each, returning a :class:`matplotlib.figure.Figure` built without
pyplot (:mod:`abduce.controller.views.plots` lists them and writes them to files)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from abduce.controller.errors import AbduceError
from abduce.controller.journal.events import read
from abduce.controller.journal.store import Journal
from abduce.controller.views.inspection import Inspection

SPECTRA_SHOWN = 4


class NothingToPlot(AbduceError):
    """The campaign holds nothing for this figure yet (no fit, a baseline policy, a 3D space...)."""


def color(i: int) -> str:
    """The colour of the ``i``-th hypothesis, the same in every figure."""
    return f"C{i % 10}"


# --------------------------------------------------------------------------- posteriors


def posterior_of(campaign, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, sd)`` of hypothesis ``name`` at ``campaign.points()`` (physical units), None before its first fit."""
    return campaign.posterior(name)


def _title(name: str, probs: dict[str, float], leader: str | None) -> str:
    if name not in probs:
        return f"{name}: not fitted"
    return f"{name}: p = {probs[name]:.3f}" + (" (leader)" if name == leader else "")


def posteriors_figure(campaign, ylabel: str = "y") -> Figure:
    """The posterior of every hypothesis over the space, measurements on top (1D or 2D spaces).

    Raises:
        NothingToPlot: the space has more than two axes.
    """
    d = campaign.space.d
    if d > 2:
        raise NothingToPlot(f"posterior plots cover 1D and 2D spaces; this one has {d} axes")
    return (_posteriors_1d if d == 1 else _posteriors_2d)(campaign, ylabel)


def _posteriors_1d(campaign, ylabel: str) -> Figure:
    names = campaign.hypothesis_names
    probs, leader = campaign.probabilities(), campaign.leader()
    points = campaign.points()[:, 0]
    order = np.argsort(points)
    xs, ys = campaign.data
    mx = np.array([x[0] for x in xs])
    k = len(names)
    ncols = 1 if k == 1 else 2
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(6 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for i, name in enumerate(names):
        ax = axes[i]
        post = posterior_of(campaign, name)
        if post is not None:
            mean, sd = post[0][order], post[1][order]
            ax.fill_between(points[order], mean - 2 * sd, mean + 2 * sd, color=color(i), alpha=0.25, label="± 2 sd")
            ax.plot(points[order], mean, color=color(i), zorder=4, label=f"{name} posterior mean")
        else:
            ax.text(0.5, 0.9, "not fitted yet", transform=ax.transAxes, ha="center")
        # many measurements: small, faint dots under the curves, so the fit stays visible
        dense = len(ys) > 200
        ax.scatter(
            mx,
            ys,
            s=3 if dense else 16,
            color="k",
            alpha=0.25 if dense else 1.0,
            zorder=2 if dense else 3,
            linewidths=0,
            label=f"measurements ({len(ys)})",
        )
        ax.set_title(_title(name, probs, leader))
        ax.set_xlabel(campaign.space.names[0])
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize="small")
    for ax in axes[k:]:
        ax.set_visible(False)
    return fig


def _map(ax, pts: np.ndarray, values: np.ndarray, cmap: str):
    """A colour map of ``values`` at ``pts`` (``N x 2``; NaN left blank): a mesh on a full grid, else a
    triangulation of the finite values."""
    gx, ix = np.unique(pts[:, 0], return_inverse=True)
    gy, iy = np.unique(pts[:, 1], return_inverse=True)
    if len(gx) * len(gy) == len(pts):
        grid = np.full((len(gy), len(gx)), np.nan)
        grid[iy, ix] = values
        return ax.pcolormesh(gx, gy, np.ma.masked_invalid(grid), shading="nearest", cmap=cmap)
    keep = np.isfinite(values)
    return ax.tripcolor(pts[keep, 0], pts[keep, 1], values[keep], shading="gouraud", cmap=cmap)


def _posteriors_2d(campaign, ylabel: str) -> Figure:
    names = campaign.hypothesis_names
    probs, leader = campaign.probabilities(), campaign.leader()
    pts = campaign.points()
    xs, _ = campaign.data
    measured = np.array(xs).reshape(-1, 2)
    fig = Figure(figsize=(11, 4 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for i, name in enumerate(names):
        post = posterior_of(campaign, name)
        for j, (what, cmap) in enumerate((("mean", "viridis"), ("sd", "magma"))):
            ax = axes[i, j]
            if post is not None:
                mesh = _map(ax, pts, post[j], cmap)
                fig.colorbar(mesh, ax=ax, label=f"{ylabel} {what}" if what == "mean" else f"{ylabel} sd")
            else:
                ax.text(0.5, 0.5, "not fitted yet", transform=ax.transAxes, ha="center")
            ax.scatter(
                measured[:, 0],
                measured[:, 1],
                s=18,
                facecolor="none",
                edgecolor="w" if post is not None else "k",
                linewidths=1.2,
                label=f"measurements ({len(measured)})",
            )
            ax.set_title(f"{_title(name, probs, leader)}: posterior {what}")
            ax.set_xlabel(campaign.space.names[0])
            ax.set_ylabel(campaign.space.names[1])
            ax.legend(loc="upper right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- journal-only figures


def probabilities_figure(inspection: Inspection) -> Figure:
    """The posterior probability of each hypothesis after each measurement (one line each)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    n = [m.step + 1 for m in inspection.measurements]
    for i, name in enumerate(inspection.hypotheses):
        p = [m.probabilities.get(name, np.nan) for m in inspection.measurements]
        ax.plot(n, p, color=color(i), marker="." if len(n) <= 200 else None, label=name)
    none = [np.nan if m.none is None else m.none for m in inspection.measurements]
    if not all(np.isnan(none)):
        ax.plot(n, none, color="black", linestyle="--", label="none of these")
    ax.set_xlabel("measurements")
    ax.set_ylabel("posterior probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("posterior probabilities of the hypotheses")
    ax.legend(loc="best")
    return fig


NO_DRIVER = "none (design / all)"


def choices_figure(inspection: Inspection) -> Figure:
    """Top: which hypothesis chose each point, marked by the reward it earned. Bottom: running mean rewards."""
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.2, 1))
    rows = [*inspection.hypotheses, NO_DRIVER]
    level = {name: i for i, name in enumerate(rows)}
    for label, keep, style in (
        ("reward 1", lambda r: r == 1.0, {"color": "tab:green", "marker": "o"}),
        ("reward 0", lambda r: r == 0.0, {"color": "tab:red", "marker": "x"}),
        ("no reward", lambda r: r is None, {"color": "0.5", "marker": "."}),
    ):
        chosen = [m for m in inspection.measurements if keep(m.reward)]
        if chosen:
            top.scatter(
                [m.step + 1 for m in chosen],
                [level.get(m.hypothesis or NO_DRIVER, len(rows) - 1) for m in chosen],
                label=label,
                **style,
            )
    top.set_yticks(range(len(rows)), rows)
    top.set_ylim(-0.5, len(rows) - 0.5)
    top.set_ylabel("chosen by")
    top.set_title("who chose each measurement, and its reward")
    top.legend(loc="upper right", fontsize="small")
    for i, name in enumerate(inspection.hypotheses):
        steps, running, total, count = [], [], 0.0, 0
        for m in inspection.measurements:
            if m.hypothesis == name and m.reward is not None:
                total, count = total + m.reward, count + 1
                steps.append(m.step + 1)
                running.append(total / count)
        if steps:
            bottom.plot(steps, running, drawstyle="steps-post", marker="o", markersize=3, color=color(i), label=name)
    bottom.set_xlabel("measurements")
    bottom.set_ylabel("mean reward")
    bottom.set_ylim(-0.05, 1.05)
    if bottom.lines:
        bottom.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------- acquisition


def acquisition_scores(campaign) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The acquisition of the campaign's next ``ask``, over its points, without asking.

    The driver is the one the policy would pick now (policies choose from the
    seeded generator of the step, so this is the choice ``ask`` makes), falling
    back to the leader as ``Campaign._acquire`` does. Finite spaces: the
    acquisition's ``score`` over the candidate posteriors, NaN at the
    candidates ``ask`` would not take (measured, failed); boxes: the BoTorch
    acquisition at the reference points.

    Returns:
        ``N x d`` points (physical), ``N`` scores, the driving hypothesis (None: all).

    Raises:
        NothingToPlot: a baseline policy (it picks points without an
            acquisition), or no hypothesis fitted yet.
    """
    from abduce.controller.errors import CampaignStateError

    try:
        scores, shown = campaign.acquisition_scores()
    except CampaignStateError as exc:
        raise NothingToPlot(str(exc)) from None
    return campaign.points(), scores, shown


def acquisition_figure(campaign) -> Figure:
    """The acquisition over the space for the measurement after the campaign's last one; its maximum marked.

    Raises:
        NothingToPlot: see :func:`acquisition_scores`, or a space of more than two axes.
    """
    pts, scores, driver = acquisition_scores(campaign)
    d = campaign.space.d
    if d > 2:
        raise NothingToPlot(f"acquisition plots cover 1D and 2D spaces; this one has {d} axes")
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else None
    fig = Figure(figsize=(8, 4 if d == 1 else 6), layout="constrained")
    ax = fig.subplots()
    xs, _ = campaign.data
    measured = np.array(xs).reshape(-1, d)
    name = campaign.acquisition.name
    if d == 1:
        order = np.argsort(pts[:, 0])
        ax.plot(pts[order, 0], scores[order], color="C0", label=f"{name} acquisition")
        ax.plot(
            measured[:, 0],
            np.full(len(measured), np.nanmin(scores) if best is not None else 0.0),
            "|",
            color="k",
            markersize=12,
            label=f"measured ({len(measured)})",
        )
        if best is not None:  # on a box, ask() optimises further from the reference points
            what = "next" if campaign.space.is_finite else "best reference point"
            ax.plot(pts[best, 0], scores[best], "*", color="C3", markersize=14, label=f"{what}: x = {pts[best, 0]:.4g}")
        ax.set_xlabel(campaign.space.names[0])
        ax.set_ylabel(f"{name} score")
    else:
        if best is not None:
            fig.colorbar(_map(ax, pts, scores, "viridis"), ax=ax, label=f"{name} score")
        ax.scatter(
            measured[:, 0],
            measured[:, 1],
            s=18,
            facecolor="none",
            edgecolor="k",
            linewidths=1.2,
            label=f"measured ({len(measured)})",
        )
        if best is not None:
            ax.plot(pts[best, 0], pts[best, 1], "*", color="C3", markersize=14, label="next")
        ax.set_xlabel(campaign.space.names[0])
        ax.set_ylabel(campaign.space.names[1])
    by = f"driven by {driver}" if driver else "over all hypotheses"
    ax.set_title(f"acquisition for measurement {campaign.n + 1} ({by})")
    ax.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------- spectra


@dataclass(frozen=True)
class Spectrum:
    """One measurement's raw arrays (``{name: array}``) and the value reduced from them."""

    step: int
    x: tuple[float, ...]
    y: float
    arrays: dict[str, np.ndarray]


def spectra_of(journal: Journal, inspection: Inspection, events: list | None = None) -> list[Spectrum]:
    """The raw arrays journalled with the inspected measurements (those that have any)."""
    steps = {m.request_id: m for m in inspection.measurements if m.arrays}
    if not steps:
        return []
    out = []
    for e in read(journal, "measurement") if events is None else (e for e in events if e.kind == "measurement"):
        m = steps.get(e.request_id)
        if m is not None and e.body.arrays:
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
