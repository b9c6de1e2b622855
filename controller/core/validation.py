"""Whether a measurement may be told: the checks ``Campaign.tell`` runs before anything changes.

A measurement answers point ``index`` of the pending request (a
:class:`~abduce.controller.core.measurements.MeasureRequest`) and must be a reading the campaign can use: a
point of the space (``d`` finite coordinates, in axis order or by axis name; on a finite space one of its
candidates), a finite value and, if any, a standard deviation >= 0 (:func:`checked_sd`). Anything else is a
:class:`~abduce.controller.errors.MeasurementRejected` with a machine-readable reason, raised before the
campaign is touched.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from abduce.controller.core.measurements import Measurement, MeasureRequest, point_of
from abduce.controller.core.space import Space
from abduce.controller.errors import ConfigError, MeasurementRejected


def checked_sd(m: Measurement) -> float:
    """A measurement's ``y_sd`` as the campaign keeps it: NaN when none was told (None or NaN), else a
    finite number >= 0 in the units of ``y`` (known noise on top of the fitted noise).

    Raises:
        MeasurementRejected: ``bad-sd``, a ``y_sd`` that is not a number, negative or infinite.
    """
    if m.y_sd is None:
        return math.nan
    try:
        sd = float(m.y_sd)
    except (TypeError, ValueError):
        raise MeasurementRejected(m.request_id, "bad-sd", f"y_sd = {m.y_sd!r} is not a number") from None
    if math.isnan(sd):
        return math.nan
    if not math.isfinite(sd) or sd < 0:
        raise MeasurementRejected(
            m.request_id, "bad-sd", f"y_sd = {sd} must be a finite standard deviation >= 0 (or None: unknown)"
        )
    return sd


def validated(
    m: Measurement, pending: MeasureRequest | None, open_points: Collection[int], told: Collection[str], space: Space
) -> tuple[MeasureRequest, tuple[float, ...], float]:
    """The request ``m`` answers, its point (``d`` floats, axis order) and its known noise (:func:`checked_sd`).

    Args:
        m: the measurement to tell.
        pending: the campaign's pending request (None: none is).
        open_points: the indices of ``pending``'s points not yet told or skipped.
        told: the ids of the requests already told in full.
        space: the campaign's space.

    Raises:
        MeasurementRejected: ``duplicate`` (a request, or point of it, already told or skipped),
            ``unknown-request`` (no pending request has this id, or it has no point ``m.index``),
            ``wrong-axes`` (a named point with a misspelt, missing or extra axis), ``wrong-dimension``,
            ``non-numeric``, ``non-finite`` (NaN/inf in ``x`` or ``y``), ``outside-space`` (outside the
            box, or not one of a finite space's candidates), ``bad-sd`` (:func:`checked_sd`).
    """
    rid = m.request_id
    if rid in told:
        raise MeasurementRejected(rid, "duplicate", "this request was already told")
    if pending is None or pending.request_id != rid:
        raise MeasurementRejected(rid, "unknown-request", "no outstanding request has this id")
    if not isinstance(m.index, int) or not 0 <= m.index < pending.q:
        raise MeasurementRejected(rid, "unknown-request", f"the request has points 0..{pending.q - 1}, not {m.index!r}")
    if m.index not in open_points:
        raise MeasurementRejected(rid, "duplicate", f"point {m.index} of this request was already told or skipped")
    try:
        x = tuple(point_of(m.x, space.names))
    except ConfigError as exc:
        raise MeasurementRejected(rid, "wrong-axes", str(exc)) from None
    if len(x) != space.d:
        raise MeasurementRejected(rid, "wrong-dimension", f"point has {len(x)} coordinates, the space has {space.d}")
    try:
        values = [float(v) for v in (*x, m.y)]
    except (TypeError, ValueError) as exc:
        raise MeasurementRejected(rid, "non-numeric", str(exc)) from None
    if not all(math.isfinite(v) for v in values):
        raise MeasurementRejected(rid, "non-finite", f"x={x}, y={m.y} contains NaN or inf")
    if not space.contains(x):
        raise MeasurementRejected(rid, "outside-space", f"x={x} is outside {list(zip(space.lo, space.hi))}")
    if space.is_finite and space.index_of(x) is None:
        raise MeasurementRejected(rid, "outside-space", f"x={x} is not one of the candidates")
    return pending, tuple(values[:-1]), checked_sd(m)
