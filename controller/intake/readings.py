"""From what an instrument returned to the scalar the hypotheses explain.

One function serves every path -- a remote agent over the protocol
(:class:`~abduce.controller.drive.remote.LinkInstrument`) and an in-process driver
(:mod:`abduce.controller.rehearse.rehearsal`) -- so a rehearsal and a real campaign
turn readings into measurements the same way:

* a scalar channel: its value for the (one) point;
* an array channel (a spectrum): the campaign's declared *reduction* of it
  (e.g. ``loop-area``), the raw array kept with the measurement;
* no reading, or one that is not a finite number: NaN, which
  ``Campaign.tell`` refuses with a clear error.

A campaign over several channels (:mod:`abduce.controller.core.channels`) asks for one channel at each
point; :func:`channel_points` and :func:`on_channels` move the channel between the campaign's point (its
last coordinate) and the protocol's ``Measure.channels`` (1.3). An agent that speaks 1.2 or older reads
every channel and the one asked for is taken.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from abduce.controller.core.measurements import Measurement
from abduce.controller.errors import ConfigError
from abduce.controller.intake.reduction import apply_reduction
from abduce.instruments.protocol.models import Capabilities

Reduction = Callable[[np.ndarray], float]


def pick_channel(capabilities: Capabilities, channel: str | None, reduction: str | None) -> str:
    """The channel a campaign explains: the one named, else the first scalar (or, with a
    reduction, the first array) channel. Raises ConfigError when the choice cannot work."""
    by_name = {c.name: c for c in capabilities.channels}
    if channel is not None:
        if channel not in by_name:
            raise ConfigError(f"the instrument has no channel {channel!r}; it declares {sorted(by_name)}")
        chosen = by_name[channel]
    else:
        wanted = [c for c in capabilities.channels if bool(c.shape) == (reduction is not None)]
        if not wanted:
            kind = "array (spectrum) channel to reduce" if reduction else "scalar channel"
            raise ConfigError(f"the instrument declares no {kind}; channels: {sorted(by_name)}")
        chosen = wanted[0]
    if chosen.shape and reduction is None:
        raise ConfigError(
            f"channel {chosen.name!r} is a spectrum of shape {chosen.shape}: declare a reduction "
            '(e.g. reduction = "loop-area") to turn it into the value the hypotheses explain'
        )
    return chosen.name


def to_measurement(
    request_id: str,
    requested: Sequence[float],
    points: Sequence[Sequence[float]],
    values: Mapping[str, Sequence[float | None]],
    arrays: Mapping[str, np.ndarray],
    channel: str,
    reduction: Reduction | None,
    *,
    index: int = 0,
    sd: Mapping[str, Sequence[float | None]] | None = None,
    axes: Mapping[str, np.ndarray] | None = None,
    **extra,
) -> Measurement:
    """The measurement of point ``index`` of a request. ``arrays[c]`` has shape ``(n_points, *spectrum_shape)``;
    ``sd[c]`` (optional) one standard deviation per point of scalar channel ``c``; ``axes[c]`` (optional) the
    spectral axis of array channel ``c``, passed to a reduction that takes one."""
    x = tuple(float(v) for v in points[index]) if points else tuple(requested)
    kept = {name: np.asarray(a)[index] for name, a in arrays.items()} or None
    y_sd = None
    if channel in arrays:
        spectrum = np.asarray(arrays[channel])[index]
        axis = None if axes is None else axes.get(channel)
        y = apply_reduction(reduction, spectrum, axis) if reduction is not None else math.nan
    else:
        value = (values.get(channel) or [None] * (index + 1))[index]
        y = math.nan if value is None else float(value)
        spread = (sd or {}).get(channel)
        if spread is not None and spread[index] is not None:
            y_sd = float(spread[index])
    return Measurement(request_id, x, y, arrays=kept, y_sd=y_sd, index=index, **extra)


def check_channels(capabilities: Capabilities, channels: Sequence[str] | None) -> tuple[str, ...] | None:
    """``channels`` (a campaign over several channels), each a scalar channel the instrument declares.

    Raises:
        ConfigError: naming a channel the instrument lacks, or one that is a spectrum.
    """
    if not channels:
        return None
    for name in channels:
        pick_channel(capabilities, name, None)
    return tuple(channels)


def channel_points(
    points: Sequence[Sequence[float]], channels: Sequence[str] | None
) -> tuple[list[list[float]], list[str] | None]:
    """What to send for a request's ``points``: with ``channels`` (a campaign over several channels,
    :mod:`abduce.controller.core.channels`), each point's last coordinate is the index of the channel to read;
    it is taken off, and the channel named. Returns the points to measure and each one's channel (None:
    no channels, the points as they are)."""
    if not channels:
        return [list(p) for p in points], None
    return [list(p[:-1]) for p in points], [channels[int(round(float(p[-1])))] for p in points]


def on_channels(
    measurements: list[Measurement], requested: Sequence[Sequence[float]], names: list[str] | None
) -> list[Measurement]:
    """The measurements of a request's points, each read on one channel (``names``, :func:`channel_points`), with
    their channel coordinate (the request's) put back; as they are without channels (``names`` None)."""
    if names is None:
        return measurements
    return [dataclasses.replace(m, x=tuple(m.x) + (float(r[-1]),)) for m, r in zip(measurements, requested)]
