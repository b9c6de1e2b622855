"""Every figure of a campaign, one function each, returning a :class:`matplotlib.figure.Figure` built without
pyplot (:mod:`abduce.controller.views.plots` lists them and writes them to files)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from abduce.controller.errors import AbduceError
from abduce.controller.views.inspection import Inspection


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


def axis_label(campaign, i: int) -> str:
    """The ``i``-th axis of the campaign's space as ``name (unit)`` (the name alone when it has no unit)."""
    return campaign.physical_space.axes[i].label()


def posteriors_figure(campaign, ylabel: str | None = None) -> Figure:
    """The posterior of every hypothesis over the space, measurements on top (1D or 2D spaces); axes
    labelled ``name (unit)``, the value by ``ylabel`` (default: the space's explained channel and unit).

    Raises:
        NothingToPlot: the space has more than two axes.
    """
    d = campaign.physical_space.d
    if d > 2:
        raise NothingToPlot(f"posterior plots cover 1D and 2D spaces; this one has {d} axes")
    return (_posteriors_1d if d == 1 else _posteriors_2d)(campaign, ylabel or campaign.physical_space.explained.label())


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
        ax.set_xlabel(axis_label(campaign, 0))
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
                fig.colorbar(mesh, ax=ax, label=f"{ylabel}, posterior {what}")
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
            ax.set_xlabel(axis_label(campaign, 0))
            ax.set_ylabel(axis_label(campaign, 1))
            ax.legend(loc="upper right", fontsize="small")
    return fig


# --------------------------------------------------------------------------- journal-only figures


def probabilities_figure(inspection: Inspection) -> Figure:
    """The posterior probability of each hypothesis after each step's measurement (one line each; steps
    counted from 0, as the journal, ``inspect`` and ``export`` count them)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    n = [m.step for m in inspection.measurements]
    for i, name in enumerate(inspection.hypotheses):
        p = [m.probabilities.get(name, np.nan) for m in inspection.measurements]
        ax.plot(n, p, color=color(i), marker="." if len(n) <= 200 else None, label=name)
    none = [np.nan if m.none is None else m.none for m in inspection.measurements]
    if not all(np.isnan(none)):
        ax.plot(n, none, color="black", linestyle="--", label="none of these")
    ax.set_xlabel("step")
    ax.set_ylabel("posterior probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("posterior probabilities of the hypotheses")
    ax.legend(loc="best")
    return fig


NO_DRIVER = "none (design / all)"


@dataclass(frozen=True)
class Criterion:
    """What a policy that picks no hypothesis optimised: its acquisition's value at each step's point.

    Attributes:
        acquisition: the acquisition's name (``discrimination``, ...).
        values: ``{step: value}``, the value the acquisition gave the point asked for at that step, as
            the campaign stood before it (:func:`~abduce.controller.views.criterion.criterion_trace`).
    """

    acquisition: str
    values: dict[int, float]


def choices_figure(inspection: Inspection, criterion: Criterion | None = None) -> Figure:
    """What the policy did at each step (counted from 0), by its own criterion.

    A bandit policy (a hypothesis drives each point): top, which hypothesis chose each point, marked by
    the reward it earned; bottom, each hypothesis's running mean reward. A policy that picks points by an
    acquisition over all hypotheses (``discriminate``; ``criterion`` given): that acquisition's value at
    each point it chose, the initial design marked.
    """
    if criterion is not None and not any(m.hypothesis for m in inspection.measurements):
        return _criterion_figure(inspection, criterion)
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
                [m.step for m in chosen],
                [level.get(m.hypothesis or NO_DRIVER, len(rows) - 1) for m in chosen],
                label=label,
                **style,
            )
    top.set_yticks(range(len(rows)), rows)
    top.set_ylim(-0.5, len(rows) - 0.5)
    top.set_ylabel("chosen by")
    top.set_title(f"{inspection.stopping.policy}: who chose each measurement, and its reward")
    top.legend(loc="upper right", fontsize="small")
    for i, name in enumerate(inspection.hypotheses):
        steps, running, total, count = [], [], 0.0, 0
        for m in inspection.measurements:
            if m.hypothesis == name and m.reward is not None:
                total, count = total + m.reward, count + 1
                steps.append(m.step)
                running.append(total / count)
        if steps:
            bottom.plot(steps, running, drawstyle="steps-post", marker="o", markersize=3, color=color(i), label=name)
    bottom.set_xlabel("step")
    bottom.set_ylabel("mean reward")
    bottom.set_ylim(-0.05, 1.05)
    if bottom.lines:
        bottom.legend(loc="best", fontsize="small")
    return fig


def _criterion_figure(inspection: Inspection, criterion: Criterion) -> Figure:
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    steps = sorted(criterion.values)
    values = [criterion.values[s] for s in steps]
    ax.plot(steps, values, color="C0", marker="o", markersize=4, label=f"{criterion.acquisition} at the point chosen")
    design = [m.step for m in inspection.measurements if m.reason.startswith("initial-design")]
    if design:
        floor = np.nanmin(values) if np.isfinite(values).any() else 0.0
        ax.plot(design, np.full(len(design), floor), "|", color="0.5", markersize=12, label="initial design")
    finite = np.asarray(values)[np.isfinite(values)]
    if len(finite) and finite.min() > 0 and finite.max() > 50 * finite.min():  # it falls by orders of magnitude
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"{criterion.acquisition} score")
    ax.set_title(f"{inspection.stopping.policy}: the acquisition value of each point it chose")
    ax.legend(loc="best", fontsize="small")
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
    d = campaign.physical_space.d
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
            what = "next" if campaign.physical_space.is_finite else "best reference point"
            ax.plot(pts[best, 0], scores[best], "*", color="C3", markersize=14, label=f"{what}: x = {pts[best, 0]:.4g}")
        ax.set_xlabel(axis_label(campaign, 0))
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
        ax.set_xlabel(axis_label(campaign, 0))
        ax.set_ylabel(axis_label(campaign, 1))
    by = f"driven by {driver}" if driver else "over all hypotheses"
    ax.set_title(f"acquisition for step {campaign.n} ({by})")  # steps count from 0: the next one is n
    ax.legend(loc="best", fontsize="small")
    return fig
