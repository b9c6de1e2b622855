"""How far a rehearsed campaign's reconstruction is from the truth, over its whole space, in the channel's unit.

A campaign measures a few points and keeps, per hypothesis, a posterior mean over all ``N`` of its points
(:meth:`~abduce.controller.core.state.CampaignState.points`: a finite space's candidates). Where the truth
at those points is known, the leader's posterior mean ``m`` is scored against it:

* a simulator: its noise-free ``truth(x)`` (:func:`~abduce.controller.rehearse.rehearsal.truth_on`);
* a recorded data set served on its grid: the recorded values themselves. The campaign's candidates
  are the recorded points, so the grid it reconstructs from a few readings is known everywhere:
  every value of the file, read through the driver and the campaign's channel and reduction exactly
  as a measurement is (points recorded as NaN are left out and counted).

Over the ``K <= N`` points with a finite truth ``t``::

    rmse     = sqrt( (1/K) sum_i (m_i - t_i)^2 )        in the channel's unit
    max      = max_i |m_i - t_i|                         in the channel's unit
    relative = rmse / (max_i t_i - min_i t_i)           (0 = perfect; ~0.3 = a flat line)

A reduction (``loop-area``, ...) turns spectra into values of another unit, which the instrument does not
declare: the figures are then in the reduction's unit, named by the reduction.

Example:
    >>> campaign, instrument = Rehearsal("recorded:scan.h5", ("second-order",)).build()  # doctest: +SKIP
    >>> run_campaign(campaign, instrument)  # doctest: +SKIP
    >>> score(campaign, truth_of(instrument, campaign.points()))  # doctest: +SKIP
    {'rmse': 0.021, 'max': 0.09, 'relative': 0.018, 'points': 2601, 'missing': 0, 'unit': 'pm/V', ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from abduce.controller.errors import AbduceError
from abduce.controller.intake.readings import to_measurement
from abduce.controller.rehearse.rehearsal import truth_on
from abduce.instruments.drivers.recorded import RecordedDriver
from abduce.instruments.protocol.models import Measure


@dataclass(frozen=True)
class Truth:
    """The truth at a campaign's points.

    Attributes:
        values: ``N`` values (NaN where the source has none: a pixel the scan missed).
        source: ``"simulator"`` or ``"recorded grid"``.
        unit: the channel's unit; for a reduced channel, ``"NAME of CHANNEL"`` in its own unit.
    """

    values: np.ndarray
    source: str
    unit: str


def _recorded(driver) -> RecordedDriver | None:
    """The recorded driver under ``driver`` (through fault wrappers), else None."""
    while driver is not None and not isinstance(driver, RecordedDriver):
        driver = getattr(driver, "driver", None)
    return driver


def _unit(instrument, reduction: str | None) -> str:
    if reduction is not None:
        return f"{reduction} of {instrument.channel}"
    by_name = {c.name: c for c in instrument.capabilities.channels}
    return by_name[instrument.channel].unit if instrument.channel in by_name else ""


def truth_of(instrument, points: np.ndarray, reduction: str | None = None) -> Truth | None:
    """The truth at ``points`` (``N x d``) for a rehearsal's
    :class:`~abduce.controller.rehearse.rehearsal.DriverInstrument`, where its source knows it; else None.

    Args:
        reduction: the reduction's name (the instrument holds it resolved), for a simulator's array
            channel and for the unit's label.
    """
    simulated = truth_on(instrument.driver, points, reduction)
    if simulated is not None:
        return Truth(np.asarray(simulated, dtype=float), "simulator", _unit(instrument, reduction))
    recorded = _recorded(instrument.driver)
    if recorded is None or len(points) == 0:
        return None
    try:
        reading = recorded.measure(Measure(request_id="truth", points=np.asarray(points, dtype=float).tolist()))
    except AbduceError:  # points off the recorded grid (a box space): no truth there
        return None
    axes = {name: axis.values for name, axis in reading.axes.items()}
    values = np.array(
        [
            to_measurement(
                "truth",
                p,
                reading.points,
                reading.values,
                reading.arrays,
                instrument.channel,
                instrument.reduction,
                index=i,
                axes=axes,
            ).y
            for i, p in enumerate(reading.points)
        ],
        dtype=float,
    )
    return Truth(values, "recorded grid", _unit(instrument, reduction))


def score(campaign, truth: Truth | None) -> dict[str, Any] | None:
    """The leader's posterior mean against ``truth`` (module docstring): ``rmse``, ``max``, ``relative``,
    ``points`` (K), ``missing`` (N - K), ``unit``, ``source``, ``leader``; None without a truth, NaN figures
    before the leader's first fit."""
    if truth is None:
        return None
    mean = campaign.posterior_mean()
    ok = np.isfinite(truth.values)
    out = {
        "rmse": math.nan,
        "max": math.nan,
        "relative": math.nan,
        "points": int(ok.sum()),
        "missing": int((~ok).sum()),
        "unit": truth.unit,
        "source": truth.source,
        "leader": campaign.leader(),
    }
    if mean is None or not ok.any():
        return out
    diff = np.asarray(mean, dtype=float)[ok] - truth.values[ok]
    span = float(np.ptp(truth.values[ok])) or 1.0
    rmse = float(np.sqrt(np.mean(diff**2)))
    return {**out, "rmse": rmse, "max": float(np.max(np.abs(diff))), "relative": rmse / span}
