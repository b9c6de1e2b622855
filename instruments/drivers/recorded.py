"""The ``recorded`` driver: a measured data set served as an instrument.

A campaign can replay a data set measured earlier (a scanned image, a
spectroscopic map, a composition library) over the same protocol as a live
microscope: the driver declares the recorded grid as its candidates, so the
controller only asks for recorded points, and answers each request with the
value the file holds for it.

A data set is a :class:`RecordedDataset`: ``n`` grid points in ``d`` axes and,
per channel, one scalar or one array (a spectrum, a loop, a diffraction
pattern) per point. It is read from, and written to, four layouts (picked by
the file's extension):

    .h5 .hdf5 .nsid  HDF5, either abduce's layout -- datasets ``points`` (n x d)
                     and ``values/<channel>`` (n x ...), root attribute
                     ``axis_names`` -- or NSID, the layout pycroscopy's
                     pyNSID/sidpy write: a main dataset (attributes
                     ``main_data_name``, ``quantity``, ``units``, ``data_type``)
                     whose dimensions are HDF5 dimension scales. The grid is the
                     cartesian product of the non-spectral dimensions' values
                     (``dimension_type`` not SPECTRAL/TEMPORAL/RECIPROCAL/CHANNEL,
                     or the dimensions named by ``axes=``); the other
                     dimensions make each point's spectrum. Read with h5py
                     alone: pyNSID is never needed.
    .nc .netcdf      NetCDF through xarray (engine ``h5netcdf``). The axes are
                     named by the dataset attribute ``abduce_axes`` (or
                     ``axes``), or by the caller's ``axes=``. Axes that are
                     dimensions form a cartesian grid; axes that are 1-D
                     coordinates along one shared dimension (``point``) list
                     the points. Each data variable over the axes is a
                     channel; its other dimensions are the spectrum.
    .npz             numpy.savez: ``points``, ``axis_names``, ``values_<channel>``.

NaN is allowed in recorded values (a pixel the scan missed): the driver
answers such a point with NaN, which travels as ``null`` and which
``Campaign.tell`` refuses with a clear error -- the controller, not the file,
decides what a missing reading means.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abduce.controller.errors import ConfigError, MeasurementRejected
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure

FORMATS: dict[str, str] = {
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".nsid": "nsid",
    ".nc": "netcdf",
    ".netcdf": "netcdf",
    ".npz": "npz",
}
SPECTRAL_TYPES = frozenset({"spectral", "temporal", "reciprocal", "channel"})
_WIRE_DTYPE = re.compile(r"^[<>|=]?(f[248]|[iu][1248]|b1)$")  # what an ArraySpec may carry
_H5_INTERNAL = frozenset({"DIMENSION_LIST", "DIMENSION_LABELS", "REFERENCE_LIST", "CLASS", "NAME"})


# ------------------------------------------------------------------ the data set


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
    """

    points: np.ndarray
    axis_names: tuple[str, ...]
    values: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

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
        """Read ``path``, the layout picked by its extension (see the module docstring).

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
        if fmt in ("hdf5", "nsid"):
            return load_hdf5(p, axes)
        if fmt == "netcdf":
            return load_netcdf(p, axes)
        if axes is not None:
            raise ConfigError(f"{p}: axes= is for NSID and NetCDF files; an .npz names its axes itself")
        return load_npz(p)

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write to ``path`` as ``fmt`` ("hdf5" = abduce's HDF5 layout, "nsid", "netcdf", "npz";
        default from the extension). Returns the path."""
        p = Path(path)
        fmt = fmt or _format_of(p)
        writers = {"hdf5": save_hdf5, "nsid": save_nsid, "netcdf": save_netcdf, "npz": save_npz}
        if fmt not in writers:
            raise ConfigError(f"unknown recorded-data format {fmt!r}; known: {', '.join(writers)}")
        writers[fmt](self, p)
        return p


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"recorded data set {path}: unknown extension {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    return fmt


# ------------------------------------------------------------------ attributes


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _plain(v):
    """An HDF5/NetCDF attribute value as plain Python (str, int, float or a list of them)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()] if v.ndim else _plain(v.item())
    if isinstance(v, np.generic):
        return v.item()
    return v


def _simple(v) -> bool:
    """Whether an HDF5 attribute is plain data (not object references, as dimension-scale bookkeeping holds)."""
    return not (
        isinstance(v, np.ndarray) and v.dtype.kind == "O" and not all(isinstance(x, (str, bytes)) for x in v.flat)
    )


def _storable(attrs: dict[str, Any]) -> dict[str, Any]:
    """Metadata every format stores: str, int and float kept, bool as int, anything else as JSON text."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, (str, int, float)):
            out[k] = v
        else:
            out[k] = json.dumps(v, default=str)
    return out


def _names(v) -> list[str]:
    """Axis names from an attribute: a list, a JSON list, or comma- or space-separated text."""
    v = _plain(v)
    if isinstance(v, list):
        return [_text(x) for x in v]
    s = _text(v).strip()
    if s.startswith("["):
        return [str(x) for x in json.loads(s)]
    return [x.strip() for x in s.split(",")] if "," in s else s.split()


# ------------------------------------------------------------------ HDF5 (abduce layout and NSID)


def load_hdf5(path: Path, axes=None) -> RecordedDataset:
    """An HDF5 file in abduce's layout (``points`` + ``values/``) or in NSID; detected from its content."""
    import h5py

    with h5py.File(path, "r") as f:
        if "points" in f or "values" in f:
            if axes is not None:
                raise ConfigError(f"{path}: axes= is for NSID files; abduce's layout names its axes in 'axis_names'")
            return _load_abduce_h5(path, f)
        mains = _nsid_mains(f)
        if not mains:
            raise ConfigError(
                f"{path}: neither abduce's layout (datasets 'points' and 'values/<channel>') nor NSID "
                "(a dataset with attribute 'main_data_name' and dimension scales) found"
            )
        return _load_nsid(path, mains, axes)


def _load_abduce_h5(path: Path, f) -> RecordedDataset:
    import h5py

    missing = [k for k in ("points", "values") if k not in f]
    if missing:
        raise ConfigError(f"{path}: missing {' and '.join(repr(m) for m in missing)} (abduce's HDF5 layout)")
    group = f["values"]
    if not isinstance(group, h5py.Group) or not len(group):
        raise ConfigError(f"{path}: 'values' holds no channel dataset (values/<channel>)")
    points = f["points"][()]
    d = points.shape[1] if points.ndim == 2 else 1
    names = _names(f.attrs["axis_names"]) if "axis_names" in f.attrs else [f"x{i}" for i in range(d)]
    units = {}
    if "axis_units" in f.attrs:
        units.update({a: u for a, u in zip(names, _names(f.attrs["axis_units"])) if u})
    values = {}
    for ch, dset in group.items():
        values[ch] = dset[()]
        if _text(dset.attrs.get("units", "")):
            units[ch] = _text(dset.attrs["units"])
    attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("axis_names", "axis_units", "abduce_format")}
    return RecordedDataset(points=points, axis_names=tuple(names), values=values, units=units, attrs=attrs)


def save_hdf5(ds: RecordedDataset, path: Path) -> None:
    """abduce's HDF5 layout: ``points`` (n x d), ``values/<channel>``, root attributes ``axis_names``."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["abduce_format"] = "recorded/1"
        f.attrs["axis_names"] = list(ds.axis_names)
        f.attrs["axis_units"] = [ds.units.get(a, "") for a in ds.axis_names]
        for k, v in _storable(ds.attrs).items():
            f.attrs[k] = v
        f.create_dataset("points", data=ds.points)
        g = f.create_group("values", track_order=True)  # channel order kept: the first scalar is what a campaign models
        for ch, arr in ds.values.items():
            g.create_dataset(ch, data=arr).attrs["units"] = ds.units.get(ch, "")


def _nsid_mains(f) -> list:
    """NSID main datasets in file order: those carrying ``main_data_name``."""
    import h5py

    found = []
    f.visititems(
        lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) and "main_data_name" in obj.attrs else None
    )
    return found


@dataclass
class _Dim:
    name: str
    values: np.ndarray
    kind: str
    unit: str


def _nsid_dims(dset) -> list[_Dim]:
    """Each dimension of an NSID main dataset: its scale's name, values, dimension_type and units."""
    dims = []
    for i, dim in enumerate(dset.dims):
        if len(dim):
            scale = dim[0]
            name = _text(scale.attrs.get("name", dim.label or scale.name.rsplit("/", 1)[-1]))
            values = np.asarray(scale[()])
            kind = _text(scale.attrs.get("dimension_type", "")).rsplit(".", 1)[-1].lower()  # "DimensionType.SPECTRAL"
            unit = _text(scale.attrs.get("units", ""))
        else:  # no scale attached: the index is the coordinate
            name, values, kind, unit = dim.label or f"dim_{i}", np.arange(dset.shape[i]), "", ""
        if values.shape != (dset.shape[i],):
            raise ConfigError(f"dimension {name!r} of {dset.name} has {values.shape} values for length {dset.shape[i]}")
        dims.append(_Dim(name, values, kind, unit))
    return dims


def _load_nsid(path: Path, mains: list, axes) -> RecordedDataset:
    points = axis_names = None
    values, units, attrs = {}, {}, {}
    for dset in mains:
        dims = _nsid_dims(dset)
        names = [d.name for d in dims]
        if axes is not None:
            unknown = [a for a in axes if a not in names]
            if unknown:
                raise ConfigError(
                    f"{path}: {dset.name} has no dimension {', '.join(map(repr, unknown))}; it has {names}"
                )
            grid = [names.index(a) for a in axes]
        else:
            grid = [i for i, d in enumerate(dims) if d.kind not in SPECTRAL_TYPES]
        if not grid:
            raise ConfigError(f"{path}: every dimension of {dset.name} is spectral ({names}); name the grid with axes=")
        spec = [i for i in range(len(dims)) if i not in grid]
        data = np.transpose(dset[()], grid + spec)
        n = math.prod(dset.shape[i] for i in grid)
        mesh = np.meshgrid(*[dims[i].values.astype(float) for i in grid], indexing="ij")
        pts = np.stack([m.reshape(-1) for m in mesh], axis=1)
        grid_names = tuple(names[i] for i in grid)
        if points is None:
            points, axis_names = pts, grid_names
            units.update({dims[i].name: dims[i].unit for i in grid if dims[i].unit})
            attrs = {
                k: _plain(v) for k, v in dset.attrs.items() if k not in _H5_INTERNAL and k != "units" and _simple(v)
            }
        elif grid_names != axis_names or not np.array_equal(pts, points):
            raise ConfigError(
                f"{path}: {dset.name} is on another grid ({grid_names}) than {mains[0].name} ({axis_names})"
            )
        ch = dset.name.rsplit("/", 1)[-1]
        ch = ch if ch not in values else f"{ch}_{len(values)}"
        values[ch] = data.reshape(n, *data.shape[len(grid) :])
        if _text(dset.attrs.get("units", "")):
            units[ch] = _text(dset.attrs["units"])
    return RecordedDataset(points=points, axis_names=axis_names, values=values, units=units, attrs=attrs)


def _product_grid(ds: RecordedDataset) -> tuple[list[np.ndarray], np.ndarray]:
    """The axis values of a cartesian grid and, per point, its flat (C-order) index in it."""
    axes = [np.unique(ds.points[:, j]) for j in range(ds.d)]
    shape = tuple(len(a) for a in axes)
    if math.prod(shape) != ds.n:
        raise ConfigError(
            f"NSID stores a cartesian grid; these {ds.n} points are not one ({' x '.join(map(str, shape))} "
            "axis values): write abduce's HDF5 layout (.h5), NetCDF or NPZ instead"
        )
    flat = np.ravel_multi_index(tuple(np.searchsorted(a, ds.points[:, j]) for j, a in enumerate(axes)), shape)
    return axes, flat


def save_nsid(ds: RecordedDataset, path: Path) -> None:
    """NSID as pyNSID writes it (h5py only): per channel a group ``Measurement_000/Channel_<k>`` holding the
    main dataset and its dimension datasets, attached as HDF5 dimension scales. Grid axes are written with
    ``dimension_type`` "UNKNOWN" (they may be compositions, not positions), spectrum dimensions "SPECTRAL"."""
    import h5py

    axes, flat = _product_grid(ds)
    shape = tuple(len(a) for a in axes)
    with h5py.File(path, "w") as f:
        for k, (ch, arr) in enumerate(ds.values.items()):
            g = f.create_group(f"Measurement_000/Channel_{k:03d}")
            spec = arr.shape[1:]
            grid = (
                np.full((ds.n, *spec), np.nan, dtype=arr.dtype)
                if arr.dtype.kind == "f"
                else np.zeros((ds.n, *spec), arr.dtype)
            )
            grid[flat] = arr
            main = g.create_dataset(ch, data=grid.reshape(shape + spec))
            kind = {
                (1, 0): "LINE_PLOT",
                (2, 0): "IMAGE",
                (0, 1): "SPECTRUM",
                (1, 1): "LINE_PLOT_FAMILY",
                (2, 1): "SPECTRAL_IMAGE",
                (2, 2): "IMAGE_4D",
            }.get((ds.d, len(spec)), "UNKNOWN")
            main.attrs.update(
                {
                    "quantity": ch,
                    "units": ds.units.get(ch, ""),
                    "main_data_name": ch,
                    "data_type": kind,
                    "modality": "",
                    "source": "abduce",
                    "nsid_version": "0.0.7",
                }
            )
            for key, v in _storable(ds.attrs).items():
                main.attrs.setdefault(key, v)
            dims = [(a, vals, "UNKNOWN", ds.units.get(a, "")) for a, vals in zip(ds.axis_names, axes)]
            dims += [(f"{ch}_dim{j}", np.arange(m), "SPECTRAL", "") for j, m in enumerate(spec)]
            for i, (name, vals, dtype, unit) in enumerate(dims):
                scale = g.create_dataset(name, data=vals)
                scale.attrs.update(
                    {"name": name, "units": unit, "quantity": name, "dimension_type": dtype, "nsid_version": "0.0.7"}
                )
                scale.make_scale(name)
                main.dims[i].label = name
                main.dims[i].attach_scale(scale)


# ------------------------------------------------------------------ NetCDF (xarray)


def load_netcdf(path: Path, axes=None) -> RecordedDataset:
    """A NetCDF file through xarray (engine h5netcdf); see the module docstring for which dims are axes."""
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf", decode_times=False, decode_timedelta=False) as raw:
        xds = raw.load()
    attrs = {k: _plain(v) for k, v in xds.attrs.items()}
    declared = attrs.pop("abduce_axes", None) or attrs.get("axes")
    if axes is None and declared is not None:
        axes = _names(declared)
    if axes is None:  # 1-D coordinates along one shared dimension list the points; else every dim is an axis
        listed = [c for c, v in xds.coords.items() if v.ndim == 1 and c not in xds.dims]
        if listed and len({xds[c].dims for c in listed}) == 1:
            axes = listed
        elif xds.data_vars:
            axes = list(next(iter(xds.data_vars.values())).dims)
        else:
            raise ConfigError(f"{path}: no data variable")
    axes = list(axes)
    missing = [a for a in axes if a not in xds.coords and a not in xds.dims]
    if missing:
        raise ConfigError(
            f"{path}: axes {missing} are neither coordinates nor dimensions (it has dims "
            f"{list(xds.dims)}, coordinates {list(xds.coords)})"
        )
    if all(a in xds.dims for a in axes):  # a cartesian grid over these dimensions
        grid_dims = axes
        coords = [
            xds[a].values.astype(float) if a in xds.coords else np.arange(xds.sizes[a], dtype=float) for a in axes
        ]
        mesh = np.meshgrid(*coords, indexing="ij")
        points = np.stack([m.reshape(-1) for m in mesh], axis=1)
    else:  # a list of points: each axis a coordinate along one shared dimension
        along = {xds[a].dims for a in axes}
        if len(along) != 1 or len(next(iter(along))) != 1:
            raise ConfigError(f"{path}: axes {axes} must all be dimensions, or all 1-D coordinates along one dimension")
        grid_dims = list(next(iter(along)))
        points = np.stack([xds[a].values.astype(float) for a in axes], axis=1)
    values, units = {}, {}
    for ch, var in xds.data_vars.items():
        if not set(grid_dims) <= set(var.dims):
            continue  # not over the grid (a bias waveform, a calibration): metadata, not a channel
        rest = [dim for dim in var.dims if dim not in grid_dims]
        arr = var.transpose(*grid_dims, *rest).values
        values[str(ch)] = arr.reshape(len(points), *arr.shape[len(grid_dims) :])
        if var.attrs.get("units"):
            units[str(ch)] = _text(var.attrs["units"])
    if not values:
        raise ConfigError(f"{path}: no data variable spans the axes {axes}")
    for a in axes:
        if a in xds.coords and xds[a].attrs.get("units"):
            units[a] = _text(xds[a].attrs["units"])
    attrs.pop("axes", None)
    return RecordedDataset(points=points, axis_names=tuple(axes), values=values, units=units, attrs=attrs)


def save_netcdf(ds: RecordedDataset, path: Path) -> None:
    """NetCDF (h5netcdf) as a list of points: dimension ``point``, one coordinate per axis along it,
    one variable per channel over (``point``, ``<channel>_dim0``, ...); attribute ``abduce_axes``."""
    import xarray as xr

    taken = set(ds.axis_names) | set(ds.values)
    point = "point" if "point" not in taken else "abduce_point"
    coords = {a: (point, ds.points[:, j], {"units": ds.units.get(a, "")}) for j, a in enumerate(ds.axis_names)}
    data = {
        ch: ((point, *[f"{ch}_dim{j}" for j in range(arr.ndim - 1)]), arr, {"units": ds.units.get(ch, "")})
        for ch, arr in ds.values.items()
    }
    attrs = {**_storable(ds.attrs), "abduce_axes": json.dumps(list(ds.axis_names))}
    xr.Dataset(data, coords=coords, attrs=attrs).to_netcdf(path, engine="h5netcdf")


# ------------------------------------------------------------------ NPZ


def load_npz(path: Path) -> RecordedDataset:
    """``numpy.savez`` arrays: ``points``, ``axis_names``, ``values_<channel>`` (+ optional ``units_json``,
    ``attrs_json``)."""
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        chans = [k for k in z.files if k.startswith("values_")]  # in the order written
        if "points" not in keys or not chans:
            missing = (["'points'"] if "points" not in keys else []) + ([] if chans else ["any 'values_<channel>'"])
            raise ConfigError(
                f"{path}: missing {' and '.join(missing)} (NPZ layout: points, axis_names, values_<channel>)"
            )
        points = z["points"]
        d = points.shape[1] if points.ndim == 2 else 1
        names = [str(x) for x in z["axis_names"].tolist()] if "axis_names" in keys else [f"x{i}" for i in range(d)]
        values = {k[len("values_") :]: z[k] for k in chans}
        units = json.loads(str(z["units_json"])) if "units_json" in keys else {}
        attrs = json.loads(str(z["attrs_json"])) if "attrs_json" in keys else {}
    return RecordedDataset(points=points, axis_names=tuple(names), values=values, units=units, attrs=attrs)


def save_npz(ds: RecordedDataset, path: Path) -> None:
    arrays = {f"values_{ch}": arr for ch, arr in ds.values.items()}
    with open(path, "wb") as fh:  # a path without .npz must not grow one
        np.savez(
            fh,
            points=ds.points,
            axis_names=np.array(ds.axis_names, dtype=str),
            units_json=np.array(json.dumps(ds.units)),
            attrs_json=np.array(json.dumps(_storable(ds.attrs))),
            **arrays,
        )


# ------------------------------------------------------------------ the driver


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
        )


def build(spec: str, axes: list[str] | tuple[str, ...] | None = None, tolerance: float | None = None) -> RecordedDriver:
    """``recorded:PATH`` -> a driver serving the data set in ``PATH`` (``axes`` for NSID/NetCDF, ``tolerance``)."""
    _, _, path = spec.partition(":")
    if not path:
        raise ConfigError(f"driver {spec!r}: use recorded:PATH (a .h5, .nsid, .nc or .npz data set)")
    return RecordedDriver(RecordedDataset.load(path, axes=axes), tolerance=tolerance)
