"""The ``proposals`` figure: the best composed law abduction added against the best declared law, on the data.

"Best" is the most probable after the campaign's last measurement: among the proposals that joined the
campaign (added, or suggested and accepted), and among the declared laws (depth 0, the ones it was given).
Each law is drawn twice: its posterior, :meth:`~abduce.controller.core.state.CampaignState.posterior` of the
rebuilt campaign (the law plus its residual GP; the band integrates over the physical parameters), and the
law alone, ``m(x; theta)`` at the posterior means of its parameters (the ones ``inspect`` lists), which is
what the law claims without the GP that absorbs a misfit. The residuals are the law's alone,
``r_i = y_i - m(x_i; theta)``: the posterior mean follows the data wherever the residual GP can bend, so
its residuals would hide the very misfit that made the proposal.

* 1-D space: top, the measurements, each law's posterior mean ± 2 sd and the law alone (dashed); bottom,
  each law's residuals at the measured points, with their root mean square in the legend.
* 2-D space: top, each law's posterior mean as a map with the measured points; bottom, each law's residuals
  at the measured points in one diverging colour scale, symmetric about 0 and shared by both.

Where a law cannot be evaluated alone (no journalled parameters), its residuals are against its posterior
mean, and the legend says so: at the measured point itself on a finite space, interpolated from the
reference points on a box (1-D linearly; 2-D linearly on their triangulation, the nearest outside its hull).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from abduce.controller.core.verdict import leader
from abduce.controller.views.figures import NothingToPlot, _map, axis_label
from abduce.controller.views.inspection import Inspection
from abduce.controller.views.proposals import contenders

PROPOSED, DECLARED = "C3", "C0"  # the proposed law's colour, the declared law's


def best_pair(campaign, inspection: Inspection) -> tuple[str, str | None]:
    """``(best proposed law, best declared law)`` by the campaign's probabilities (the declared one None
    where no declared law has a probability).

    Raises:
        NothingToPlot: no proposal was made, or none joined the campaign (suggested only).
    """
    if not inspection.proposals:
        raise NothingToPlot("the campaign proposed no composed law")
    names = campaign.hypothesis_names
    joined = [n for n in contenders(inspection.proposals) if n in names]
    if not joined:
        waiting = sorted({p.name for p in inspection.proposals} - set(contenders(inspection.proposals)))
        if waiting and not contenders(inspection.proposals):
            raise NothingToPlot(f"no proposal joined the campaign: {', '.join(waiting)} only suggested")
        missing = ", ".join(contenders(inspection.proposals))
        raise NothingToPlot(f"the rebuilt campaign does not hold the proposals it added ({missing})")
    probs = campaign.probabilities()
    proposed = {p.name for p in inspection.proposals}
    declared = [n for n in names if n not in proposed]
    log_z = campaign.history[-1].log_evidence if campaign.history else {}
    best = leader({n: probs.get(n, -1.0) for n in joined}, log_z)
    rival = leader({n: probs.get(n, -1.0) for n in declared}, log_z)
    return best, rival


def at_measured(campaign, values: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``values`` (one per :meth:`points`) at the ``m x d`` measured points (module docstring)."""
    pts = campaign.points()
    if campaign.space.is_finite:
        idx = campaign.space.indices_of(measured.tolist())
        return np.array([values[i] if i is not None else np.nan for i in idx])
    if campaign.space.d == 1:
        order = np.argsort(pts[:, 0])
        return np.interp(measured[:, 0], pts[order, 0], values[order])
    from scipy.interpolate import griddata

    out = griddata(pts, values, measured, method="linear")
    outside = ~np.isfinite(out)
    if outside.any():
        out[outside] = griddata(pts, values, measured[outside], method="nearest")
    return out


def law_alone(campaign, name: str, x: np.ndarray) -> np.ndarray | None:
    """``m(x; theta)``: law ``name``'s mean function alone at the ``m x d`` points ``x`` (physical units), its
    free parameters at their posterior means (the last step's record), its fixed ones from its declaration
    in the frame of its fit; None where it has no fit or no recorded parameters."""
    import torch

    slot = campaign.belief.slot(name)
    record = campaign.history[-1].parameters.get(name) if campaign.history else None
    if slot is None or slot.fit is None or not record:
        return None
    law, frame = slot.hypothesis, slot.fit.frame
    theta = {}
    for p in law.parameters:
        if p.fixed is not None:
            theta[p.name] = frame.to_physical(p, torch.tensor(p.fixed, dtype=torch.float64))
        elif p.name in record:
            theta[p.name] = torch.tensor(record[p.name][0], dtype=torch.float64)
        else:
            return None
    with torch.no_grad():
        return law.mean(torch.as_tensor(x, dtype=torch.float64), theta).detach().cpu().numpy().reshape(-1)


def proposals_figure(campaign, inspection: Inspection, ylabel: str | None = None) -> Figure:
    """The best proposed law against the best declared one, and their residuals (module docstring).

    Raises:
        NothingToPlot: see :func:`best_pair`; neither law fitted yet; a space of more than two axes.
    """
    d = campaign.space.d
    if d > 2:
        raise NothingToPlot(f"the proposals figure covers 1D and 2D spaces; this one has {d} axes")
    best, rival = best_pair(campaign, inspection)
    ylabel = ylabel or campaign.space.explained.label()
    probs = campaign.probabilities()
    xs, ys = campaign.data
    measured, y = np.array(xs, dtype=float).reshape(-1, d), np.array(ys, dtype=float)
    pts = campaign.points()
    laws = []  # (name, colour, (mean, sd) at the points, the law alone at the points or None, residuals, of what)
    for name, colour in ((best, PROPOSED), (rival, DECLARED)):
        post = campaign.posterior(name) if name is not None else None
        if post is None:
            continue
        alone = law_alone(campaign, name, measured)
        if alone is not None:
            laws.append((name, colour, post, law_alone(campaign, name, pts), y - alone, "the law alone"))
        else:
            laws.append((name, colour, post, None, y - at_measured(campaign, post[0], measured), "posterior mean"))
    if not laws:
        raise NothingToPlot(f"neither {best} nor the best declared law has been fitted yet")

    def label(name: str, residual: np.ndarray | None = None, of: str = "") -> str:
        kind = "proposed" if name == best else "declared"
        text = f"{name} ({kind}, p = {probs.get(name, float('nan')):.3f})"
        return text if residual is None else f"{text}: rms {np.sqrt(np.nanmean(residual**2)):.3g} ({of})"

    if d == 1:
        return _one_axis(campaign, laws, measured[:, 0], y, ylabel, label)
    return _two_axes(campaign, laws, measured, ylabel, label)


def _one_axis(campaign, laws, mx: np.ndarray, y: np.ndarray, ylabel: str, label) -> Figure:
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.6, 1))
    pts = campaign.points()[:, 0]
    order = np.argsort(pts)
    dense = len(y) > 200
    top.scatter(mx, y, s=3 if dense else 16, color="k", alpha=0.25 if dense else 1.0, zorder=3, linewidths=0,
                label=f"measurements ({len(y)})")  # fmt: skip
    for name, colour, (mean, sd), alone, residual, of in laws:
        m, s = mean[order], sd[order]
        top.fill_between(pts[order], m - 2 * s, m + 2 * s, color=colour, alpha=0.2)
        top.plot(pts[order], m, color=colour, zorder=4, label=label(name) + ": posterior mean ± 2 sd")
        if alone is not None:
            top.plot(pts[order], alone[order], color=colour, linestyle="--", linewidth=1.2, zorder=5,
                     label=f"{name}: the law alone at its fitted parameters")  # fmt: skip
        size = 3 if dense else 5
        bottom.plot(mx, residual, "o", color=colour, markersize=size, alpha=0.8, label=label(name, residual, of))
    bottom.axhline(0.0, color="0.4", linewidth=0.8)
    top.set_ylabel(ylabel)
    top.set_title("the best proposed law against the best declared law")
    top.legend(loc="best", fontsize="small")
    bottom.set_xlabel(axis_label(campaign, 0))
    bottom.set_ylabel(f"residual, {ylabel}")
    bottom.set_title("residuals at the measured points: measurement - the law (alone)")
    bottom.legend(loc="best", fontsize="small")
    return fig


def _two_axes(campaign, laws, measured: np.ndarray, ylabel: str, label) -> Figure:
    fig = Figure(figsize=(6 * len(laws), 9.5), layout="constrained")
    axes = fig.subplots(2, len(laws), squeeze=False, sharex=True, sharey=True)
    pts = campaign.points()
    finite = np.concatenate([r[np.isfinite(r)] for *_, r, _of in laws])
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    for j, (name, _, (mean, _sd), _alone, residual, of) in enumerate(laws):
        top, bottom = axes[0, j], axes[1, j]
        fig.colorbar(_map(top, pts, mean, "viridis"), ax=top, label=ylabel)
        top.scatter(measured[:, 0], measured[:, 1], s=14, facecolor="none", edgecolor="w", linewidths=1.0)
        top.set_title(f"{label(name)}\nposterior mean", fontsize="medium")
        dots = bottom.scatter(measured[:, 0], measured[:, 1], c=residual, cmap="RdBu_r", vmin=-limit, vmax=limit,
                              s=28, edgecolor="k", linewidths=0.4)  # fmt: skip
        fig.colorbar(dots, ax=bottom, label=f"residual, {ylabel}")
        rms = np.sqrt(np.nanmean(residual**2))
        bottom.set_title(f"residuals of {of} at the {len(residual)} measured points (rms {rms:.3g})", fontsize="medium")
        for ax in (top, bottom):
            ax.set_xlabel(axis_label(campaign, 0))
            ax.set_ylabel(axis_label(campaign, 1))
    return fig
