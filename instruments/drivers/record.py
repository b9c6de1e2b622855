"""Record a simulator to a data set: every candidate measured once, written as a file.

The inverse of the ``recorded`` driver: a rehearsal data set that a campaign
can replay over the instrument protocol exactly as it would a measured one.
Replaying it gives the campaign that the live simulator gives with the same
noise realisation (one noisy reading per candidate, drawn in candidate order).

A spectroscopic simulator's channel is written with its spectral axis (the
bias or frequency vector its last dimension is sampled at) when one is given,
as ``spectral_axis=`` or as the simulator's own ``spectral_axis`` (an
attribute or method giving a :class:`~abduce.instruments.drivers.base.SpectralAxis`,
or any object with ``name``, ``unit``, ``values``). NSID is written through
pyNSID and sidpy (``abduce[nsid]``), so pycroscopy's tools read it with its
dimension types, units and axis values.

Example:
    >>> from abduce.simulators.transition1d import Transition1D
    >>> record(Transition1D(grid=51, seed=3), "rehearsal.h5")  # doctest: +SKIP
    >>> record(sim, "loops.nsid", spectral_axis=SpectralAxis("bias", "V", bias))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis


def _options(simulator) -> dict:
    """The simulator's constructor options that are plain data (its provenance)."""
    if not dataclasses.is_dataclass(simulator):
        return {}
    out = {}
    for f in dataclasses.fields(simulator):
        v = getattr(simulator, f.name, None)
        if f.init and isinstance(v, (str, int, float, bool, type(None), tuple, list)):
            out[f.name] = v
    return out


def record(simulator, path: str | Path, fmt: str | None = None, spectral_axis: SpectralAxis | None = None):
    """Measure every candidate of a grid simulator once, in candidate order, and write the data set.

    Args:
        simulator: a grid simulator (``candidates()`` not None) with ``measure(x)``;
            ``axis_names``, ``axis_units``, ``channel``, ``unit`` and ``spectrum_shape`` are read when
            present (defaults ``("x",)`` or ``x0, x1, ...``, no units, ``"y"`` and ``()``), so the recorded
            driver declares the simulator's units.
        path: where to write.
        fmt: "hdf5" (abduce's HDF5 layout), "nsid", "netcdf" or "npz"; default from
            the extension (.h5/.hdf5, .nsid, .nc/.netcdf, .npz).
        spectral_axis: the axis the channel's last dimension is sampled along (``m`` values);
            default the simulator's ``spectral_axis`` where it has one, else none.

    Returns:
        The :class:`~abduce.instruments.drivers.recorded.RecordedDataset` written:
        ``points`` = ``candidates()`` (``n x d``), ``values[channel]`` = ``measure(points)``
        (``n`` or ``n x *spectrum_shape``).

    Raises:
        ConfigError: a continuous simulator, a reading of the wrong shape, or a spectral axis that does
            not fit the channel.
    """
    from abduce.instruments.drivers.recorded import RecordedDataset

    points = simulator.candidates()
    if points is None:
        raise ConfigError(f"{type(simulator).__name__} is continuous (no candidate grid): nothing to record")
    points = np.asarray(points, dtype=float)
    d = points.shape[1]
    axis_names = tuple(
        getattr(simulator, "axis_names", None) or (("x",) if d == 1 else tuple(f"x{i}" for i in range(d)))
    )
    channel = getattr(simulator, "channel", "y") or "y"
    shape = tuple(getattr(simulator, "spectrum_shape", ()) or ())
    values = np.asarray(simulator.measure(points), dtype=float)
    if values.shape != (len(points), *shape):
        raise ConfigError(
            f"{type(simulator).__name__}.measure gave shape {values.shape} for {len(points)} points; "
            f"expected {(len(points), *shape)}"
        )
    if spectral_axis is None:
        spectral_axis = getattr(simulator, "spectral_axis", None)
        spectral_axis = spectral_axis() if callable(spectral_axis) else spectral_axis
    units = dict(zip(axis_names, getattr(simulator, "axis_units", None) or ()))  # optional in the interface
    units[channel] = getattr(simulator, "unit", "") or ""
    axes = {}
    if spectral_axis is not None:
        axes[channel] = SpectralAxis(str(spectral_axis.name), str(spectral_axis.unit), spectral_axis.values)
    ds = RecordedDataset(
        points=points,
        axis_names=axis_names,
        values={channel: values},
        units={k: str(u) for k, u in units.items() if u},
        attrs={"simulator": type(simulator).__name__, "simulator_options": json.dumps(_options(simulator))},
        spectral_axes=axes,
    )
    ds.save(path, fmt)
    return ds
