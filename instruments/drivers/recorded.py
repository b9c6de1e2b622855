"""The ``recorded`` driver: a measured data set served as an instrument.

A campaign can replay a data set measured earlier (a scanned image, a
spectroscopic map, a composition library) over the same protocol as a live
microscope: the driver declares the recorded grid as its candidates, so the
controller only asks for recorded points, and answers each request with the
value the file holds for it.

A data set is a :class:`RecordedDataset`: ``n`` grid points in ``d`` axes and,
per channel, one scalar or one array (a spectrum, a loop, a diffraction
pattern) per point. It is read from, and written to, four layouts (picked by
the file's extension; each layout is described in its module):

    .h5 .hdf5 .nsid  HDF5, either abduce's layout (``points``, ``values/<channel>``)
                     or NSID, the layout pycroscopy's pyNSID/sidpy write (read
                     with h5py alone, written through pyNSID and sidpy:
                     ``abduce[nsid]``), told apart by the file's content
    .nc .netcdf      NetCDF through xarray (engine ``h5netcdf``)
    .npz             numpy.savez: ``points``, ``axis_names``, ``values_<channel>``

An array channel may carry a *spectral axis* (:class:`~abduce.instruments.drivers.base.SpectralAxis`:
a name, a unit and the ``m`` values its last dimension is sampled at -- a bias
sweep, a frequency vector): every layout stores it beside the channel and the
driver returns it with each reading (``Reading.axes[channel]``), so a
reduction that takes ``axis=`` gets the bias values. Where each layout keeps it:

    abduce HDF5   dataset ``spectral/<channel>`` (the m values), attributes ``name``, ``units``
    NSID          the channel's last dimension scale, ``dimension_type`` SPECTRAL (its ``name``,
                  ``units``, values), as sidpy's ``Dimension`` writes it
    NetCDF        the coordinate of the channel's last dimension (named after the axis; ``units``)
    NPZ           array ``spectral_<channel>`` and ``spectral_json`` = ``{channel: {"name": ..., "unit": ...}}``

Example (a bias-resolved response per point, served with its bias axis):

    >>> bias = np.linspace(-5.0, 5.0, 64)
    >>> x = np.linspace(0.0, 1.0, 21)
    >>> ds = RecordedDataset(points=x, axis_names=("x",),
    ...     values={"response": np.tanh(3 * (bias[None, :] - x[:, None]))},
    ...     units={"x": "um", "response": "pm"},
    ...     spectral_axes={"response": SpectralAxis("bias", "V", bias)})
    >>> ds.save("loops.h5")  # doctest: +SKIP
    >>> RecordedDriver(ds).measure(Measure(request_id="r", points=[[0.5]])).axes["response"].unit
    'V'

NaN is allowed in recorded values (a pixel the scan missed): the driver
answers such a point with NaN, which travels as ``null`` and which
``Campaign.tell`` refuses with a clear error -- the controller, not the file,
decides what a missing reading means.

The code is in sibling modules, one job each (this module re-exports
:class:`RecordedDataset` and :data:`FORMATS`, so ``from
abduce.instruments.drivers.recorded import RecordedDataset`` works):

    recorded           the driver: :class:`RecordedDriver` and :func:`build`
    recorded_dataset   :class:`RecordedDataset` (validation, load, save), the
                       extension -> format table and the format -> reader and
                       format -> writer tables
    recorded_hdf5      abduce's HDF5 layout, and telling it from NSID
    recorded_nsid      NSID: dimension scales; cartesian grids only
    recorded_netcdf    NetCDF through xarray: a grid over dimensions or a list of points
    recorded_npz       numpy.savez
    recorded_fields    what the formats share: the fields a reader returns,
                       what a writer reads, attribute conversions
"""

from __future__ import annotations

import math

import numpy as np

from abduce.controller.errors import ConfigError, MeasurementRejected
from abduce.instruments.drivers.base import Driver, Reading, SpectralAxis
from abduce.instruments.drivers.recorded_dataset import FORMATS, RecordedDataset
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure

__all__ = ["FORMATS", "RecordedDataset", "RecordedDriver", "SpectralAxis", "build"]


class RecordedDriver(Driver):
    """Serves a :class:`RecordedDataset` as an instrument.

    Each requested point is looked up on the grid (a KD-tree over the points
    with each axis divided by its span, so 10^5-point grids answer in
    microseconds). With ``u = (x - lo) / (hi - lo)`` per axis, the distance is
    ``||u_requested - u_recorded||_2``: 0 for a recorded point; the nearest
    recorded point is answered when it lies within ``tolerance``, and a point
    farther from every recorded one is refused. ``Reading.points`` are the
    recorded points actually answered and ``Reading.state`` holds
    ``distance`` and ``index`` (one per point).

    Over the protocol the agent checks first: the grid is declared as the
    candidates, so a request for a point that is not one (within 1e-6 of the
    span) is rejected with code ``off-grid`` before the driver sees it.

    Args:
        dataset: the recorded data.
        tolerance: the farthest (span-scaled) distance answered by the nearest
            point; default half the smallest distance between two recorded
            points, so the answer is never ambiguous.

    Example:
        >>> drv = build("recorded:scan.h5")  # doctest: +SKIP
    """

    blocking = False  # a table look-up: microseconds, measured inline by the agent

    def __init__(self, dataset: RecordedDataset, tolerance: float | None = None) -> None:
        from scipy.spatial import cKDTree

        self.dataset = dataset
        self._lo, hi = dataset.points.min(0), dataset.points.max(0)
        self._span = hi - self._lo
        flat = [a for a, s in zip(dataset.axis_names, self._span) if not s > 0]
        if flat:
            raise ConfigError(
                f"recorded axis {', '.join(map(repr, flat))} takes a single value; an instrument axis needs a range"
            )
        self._tree = cKDTree(self._unit(dataset.points))
        if tolerance is None:
            tolerance = 0.5 * float(self._tree.query(self._tree.data, k=2)[0][:, 1].min())
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"tolerance must be a finite number >= 0, got {tolerance}")
        self.tolerance = float(tolerance)

    def _unit(self, x: np.ndarray) -> np.ndarray:
        return (x - self._lo) / self._span

    def describe(self) -> Capabilities:
        ds = self.dataset
        return Capabilities(
            axes=[
                Axis(name=a, unit=ds.units.get(a, ""), min=float(lo), max=float(lo + s))
                for a, lo, s in zip(ds.axis_names, self._lo, self._span)
            ],
            candidates=ds.points.tolist(),
            channels=[
                Channel(
                    name=ch,
                    unit=ds.units.get(ch, ""),
                    shape=list(arr.shape[1:]),
                    dtype="<f8" if arr.ndim == 1 else arr.dtype.str,
                )
                for ch, arr in ds.values.items()
            ],
            simulator=bool(ds.attrs.get("simulator")),
            idempotent=True,
        )

    def lookup(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Nearest recorded point to each row of ``x`` (``m x d``): (indices ``m``, span-scaled distances ``m``)."""
        dist, idx = self._tree.query(self._unit(np.asarray(x, dtype=float)))
        return np.atleast_1d(idx), np.atleast_1d(dist)

    def measure(self, request: Measure) -> Reading:
        """The recorded values at the requested points.

        Raises:
            MeasurementRejected: reason "wrong-dimension", or "off-grid" for a point
                farther than ``tolerance`` from every recorded point.
        """
        ds = self.dataset
        x = np.asarray(request.points, dtype=float)
        if x.ndim != 2 or x.shape[1] != ds.d:
            raise MeasurementRejected(
                request.request_id,
                "wrong-dimension",
                f"points of shape {x.shape}; the recorded grid has {ds.d} axes {ds.axis_names}",
            )
        idx, dist = self.lookup(x)
        far = np.flatnonzero(dist > self.tolerance)
        if far.size:
            i = int(far[0])
            raise MeasurementRejected(
                request.request_id,
                "off-grid",
                f"point {x[i].tolist()} is off the recorded grid: the nearest recorded point "
                f"{ds.points[idx[i]].tolist()} "
                f"is {dist[i]:.3g} axis spans away, the tolerance {self.tolerance:.3g}",
            )
        return Reading(
            points=ds.points[idx].tolist(),
            values={ch: [float(v) for v in arr[idx]] for ch, arr in ds.values.items() if arr.ndim == 1},
            arrays={ch: arr[idx] for ch, arr in ds.values.items() if arr.ndim > 1},
            state={"distance": [float(v) for v in dist], "index": [int(i) for i in idx]},
            axes={ch: ds.spectral_axes[ch] for ch, arr in ds.values.items() if arr.ndim > 1 and ch in ds.spectral_axes},
        )


def build(spec: str, axes: list[str] | tuple[str, ...] | None = None, tolerance: float | None = None) -> RecordedDriver:
    """``recorded:PATH`` -> a driver serving the data set in ``PATH`` (``axes`` for NSID/NetCDF, ``tolerance``)."""
    _, _, path = spec.partition(":")
    if not path:
        raise ConfigError(f"driver {spec!r}: use recorded:PATH (a .h5, .nsid, .nc or .npz data set)")
    return RecordedDriver(RecordedDataset.load(path, axes=axes), tolerance=tolerance)
