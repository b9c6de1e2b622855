"""The recorded data set: :class:`RecordedDataset`, values on a finite grid, and which file format is which.

Reading and writing dispatch through one table per direction, format name ->
function (:data:`READERS`, :data:`SAVERS`); the format is picked by the
file's extension (:data:`FORMATS`). Each format is its own module:
``recorded_hdf5`` (abduce's HDF5 layout), ``recorded_nsid`` (pycroscopy's
NSID), ``recorded_netcdf``, ``recorded_npz``; what they share is
``recorded_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded_fields import Fields, Grid
from abduce.instruments.drivers.recorded_hdf5 import read_hdf5, save_hdf5
from abduce.instruments.drivers.recorded_netcdf import read_netcdf, save_netcdf
from abduce.instruments.drivers.recorded_npz import read_npz, save_npz
from abduce.instruments.drivers.recorded_nsid import save_nsid

FORMATS: dict[str, str] = {
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".nsid": "nsid",
    ".nc": "netcdf",
    ".netcdf": "netcdf",
    ".npz": "npz",
}
# format -> reader (``path, axes`` -> the fields of a data set); an HDF5 file is abduce's layout or NSID by its content
READERS: dict[str, Callable[[Path, Any], Fields]] = {
    "hdf5": read_hdf5,
    "nsid": read_hdf5,
    "netcdf": read_netcdf,
    "npz": read_npz,
}
# format -> writer (``data set, path``)
SAVERS: dict[str, Callable[[Grid, Path], None]] = {
    "hdf5": save_hdf5,
    "nsid": save_nsid,
    "netcdf": save_netcdf,
    "npz": save_npz,
}
_WIRE_DTYPE = re.compile(r"^[<>|=]?(f[248]|[iu][1248]|b1)$")  # what an ArraySpec may carry


@dataclass
class RecordedDataset:
    """A recorded data set: values on a finite grid.

    Attributes:
        points: ``n x d`` grid points (physical units), finite and distinct.
        axis_names: ``d`` axis names.
        values: channel -> ``n`` scalars or ``n x *shape`` arrays (a spectrum per point);
            NaN marks a missing reading.
        units: channel or axis name -> unit (optional).
        attrs: free metadata (provenance; ``simulator`` set means the data came from a simulator).
        spectral_axes: array channel -> the :class:`SpectralAxis` its last dimension is sampled along
            (a bias or frequency vector: ``name``, ``unit``, ``values`` of length ``shape[-1]``); optional.
            A mapping ``{"name": ..., "unit": ..., "values": ...}`` is accepted too.

    Example:
        >>> bias = np.linspace(-5, 5, 64)
        >>> ds = RecordedDataset(
        ...     points=np.linspace(0, 1, 11), axis_names=("x",),
        ...     values={"response": np.tanh(bias[None, :] - np.linspace(0, 1, 11)[:, None])},
        ...     units={"x": "um", "response": "pm"},
        ...     spectral_axes={"response": SpectralAxis("bias", "V", bias)})
        >>> ds.spectral_axes["response"].unit
        'V'
    """

    points: np.ndarray
    axis_names: tuple[str, ...]
    values: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    spectral_axes: dict[str, SpectralAxis] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=float)
        if pts.ndim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or len(pts) < 1:
            raise ConfigError(f"recorded points must be an n x d array, got shape {pts.shape}")
        if not np.isfinite(pts).all():
            raise ConfigError("recorded points contain NaN or inf")
        self.points = pts
        self.axis_names = tuple(str(a) for a in self.axis_names)
        if len(self.axis_names) != pts.shape[1]:
            raise ConfigError(f"{len(self.axis_names)} axis names {self.axis_names} for {pts.shape[1]}-D points")
        if len(set(self.axis_names)) != len(self.axis_names):
            raise ConfigError(f"axis names {self.axis_names} repeat")
        uniq, counts = np.unique(pts, axis=0, return_counts=True)
        if (counts > 1).any():
            raise ConfigError(
                f"recorded point {uniq[counts > 1][0].tolist()} appears {counts.max()} times; "
                "a replayed data set needs one reading per point"
            )
        if not self.values:
            raise ConfigError("a recorded data set needs at least one channel")
        values = {}
        for name, arr in self.values.items():
            if not (1 <= len(name) <= 128) or "/" in name:
                raise ConfigError(f"channel name {name!r}: 1 to 128 characters, no '/'")
            if name in self.axis_names:
                raise ConfigError(f"channel {name!r} has the name of an axis")
            a = np.asarray(arr)
            if a.ndim == 0 or a.shape[0] != len(pts):
                raise ConfigError(
                    f"channel {name!r} has shape {a.shape}; expected ({len(pts)}, ...) for {len(pts)} points"
                )
            if np.iscomplexobj(a):
                raise ConfigError(f"channel {name!r} is complex: store the real and imaginary parts as two channels")
            if a.ndim == 1 or not _WIRE_DTYPE.match(a.dtype.str):
                a = a.astype(float)  # scalars travel as floats; odd dtypes as float64 arrays
            values[name] = a
        self.values = values
        self.units = {str(k): str(v) for k, v in (self.units or {}).items()}
        self.attrs = dict(self.attrs or {})
        self.spectral_axes = {ch: self._spectral_axis(ch, a) for ch, a in (self.spectral_axes or {}).items()}

    def _spectral_axis(self, channel: str, axis: SpectralAxis | dict) -> SpectralAxis:
        """``axis`` checked against array channel ``channel``: a name, a unit, ``shape[-1]`` finite values."""
        if isinstance(axis, dict):
            unknown = set(axis) - {"name", "unit", "values"}
            if unknown or not {"name", "values"} <= set(axis):
                raise ConfigError(
                    f"spectral axis of {channel!r}: give name, values and optionally unit (got keys {sorted(axis)})"
                )
            axis = SpectralAxis(str(axis["name"]), str(axis.get("unit", "")), axis["values"])
        if channel not in self.values:
            raise ConfigError(f"spectral axis for {channel!r}: no such channel; channels {list(self.values)}")
        arr = self.values[channel]
        if arr.ndim < 2:
            raise ConfigError(f"spectral axis for {channel!r}: a scalar channel has no spectral axis")
        name = str(axis.name).strip()
        if not (1 <= len(name) <= 128) or "/" in name:
            raise ConfigError(f"spectral axis name {axis.name!r} of {channel!r}: 1 to 128 characters, no '/'")
        if name in self.axis_names or name in self.values:
            raise ConfigError(
                f"spectral axis {name!r} of {channel!r} has the name of a grid axis or channel; "
                "NSID and NetCDF name every dimension once"
            )
        vals = np.asarray(axis.values, dtype=float)
        if vals.shape != arr.shape[-1:]:
            raise ConfigError(
                f"spectral axis {name!r} of {channel!r} has shape {vals.shape}; the channel's last dimension "
                f"has {arr.shape[-1]} samples"
            )
        if not np.isfinite(vals).all():
            raise ConfigError(f"spectral axis {name!r} of {channel!r} contains NaN or inf")
        return SpectralAxis(name, str(axis.unit or ""), vals)

    @property
    def n(self) -> int:
        return len(self.points)

    @property
    def d(self) -> int:
        return self.points.shape[1]

    def shape(self, channel: str) -> tuple[int, ...]:
        """Per-point shape of a channel: ``()`` for a scalar, the spectrum's shape otherwise."""
        return tuple(self.values[channel].shape[1:])

    @classmethod
    def load(cls, path: str | Path, axes: list[str] | tuple[str, ...] | None = None) -> RecordedDataset:
        """Read ``path``, the layout picked by its extension (:data:`FORMATS`; each layout is described in its
        module, see :mod:`abduce.instruments.drivers.recorded`).

        Args:
            path: the file.
            axes: for NSID and NetCDF, the dimensions/coordinates that are grid
                axes (default: from the file's attributes).

        Raises:
            ConfigError: unknown extension, missing file, or the datasets the layout needs are missing.
        """
        p = Path(path)
        fmt = _format_of(p)
        if not p.is_file():
            raise ConfigError(f"recorded data set {p}: no such file")
        return cls(**READERS[fmt](p, axes))

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write to ``path`` as ``fmt`` ("hdf5" = abduce's HDF5 layout, "nsid", "netcdf", "npz";
        default from the extension). Returns the path."""
        p = Path(path)
        fmt = fmt or _format_of(p)
        if fmt not in SAVERS:
            raise ConfigError(f"unknown recorded-data format {fmt!r}; known: {', '.join(SAVERS)}")
        SAVERS[fmt](self, p)
        return p


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"recorded data set {path}: unknown extension {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    return fmt
