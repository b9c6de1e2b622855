"""Recorded data in NetCDF (``.nc``, ``.netcdf``), through xarray (engine ``h5netcdf``).

The axes are named by the dataset attribute ``abduce_axes`` (or ``axes``),
or by the caller's ``axes=``. Axes that are dimensions form a cartesian
grid; axes that are 1-D coordinates along one shared dimension (``point``)
list the points. Each data variable over the axes is a channel; its other
dimensions are the spectrum. A channel's last dimension with a numeric
coordinate variable is its spectral axis: the coordinate's values, its
``units`` attribute, and its name (the dimension's, or the coordinate's
``abduce_name`` attribute where abduce had to name the dimension
``<channel>_<name>`` because two channels' axes of one name differ).
Written: ``point`` dimension, one coordinate per grid axis along it (``units``),
one variable per channel over (``point``, ``<channel>_dim0``, ...,
``<spectral axis name>``) with ``units``; attribute ``abduce_axes``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _names, _plain, _storable, _text, _unit


def read_netcdf(path: Path, axes=None) -> Fields:
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
    values, units, spectral = {}, {}, {}
    for ch, var in xds.data_vars.items():
        if not set(grid_dims) <= set(var.dims):
            continue  # not over the grid (a bias waveform, a calibration): metadata, not a channel
        rest = [dim for dim in var.dims if dim not in grid_dims]
        arr = var.transpose(*grid_dims, *rest).values
        values[str(ch)] = arr.reshape(len(points), *arr.shape[len(grid_dims) :])
        if var.attrs.get("units"):
            units[str(ch)] = _text(var.attrs["units"])
        if rest and rest[-1] in xds.coords and xds[rest[-1]].dtype.kind in "fiu":
            c = xds[rest[-1]]
            name = _text(c.attrs.get("abduce_name", rest[-1]))
            spectral[str(ch)] = SpectralAxis(name, _unit(c.attrs.get("units", "")), c.values.astype(float))
    if not values:
        raise ConfigError(f"{path}: no data variable spans the axes {axes}")
    for a in axes:
        if a in xds.coords and xds[a].attrs.get("units"):
            units[a] = _text(xds[a].attrs["units"])
    attrs.pop("axes", None)
    return Fields(
        points=points, axis_names=tuple(axes), values=values, units=units, attrs=attrs, spectral_axes=spectral
    )


def save_netcdf(ds: Grid, path: Path) -> None:
    """NetCDF (h5netcdf) as a list of points (the module docstring): dimension ``point``, one coordinate per
    axis along it, one variable per channel over (``point``, ``<channel>_dim0``, ...), a spectral axis as
    the coordinate of the channel's last dimension; attribute ``abduce_axes``."""
    import xarray as xr

    taken = set(ds.axis_names) | set(ds.values)
    point = "point" if "point" not in taken else "abduce_point"
    coords = {a: (point, ds.points[:, j], {"units": ds.units.get(a, "")}) for j, a in enumerate(ds.axis_names)}
    data = {}
    for ch, arr in ds.values.items():
        dims = [point, *[f"{ch}_dim{j}" for j in range(arr.ndim - 1)]]
        axis = ds.spectral_axes.get(ch)
        if axis is not None:
            same = axis.name in coords and np.array_equal(coords[axis.name][1], axis.values)
            same = same and coords[axis.name][2].get("units") == axis.unit
            free = axis.name not in coords and axis.name != point and axis.name not in dims
            dims[-1] = axis.name if same or free else f"{ch}_{axis.name}"
            meta = {"units": axis.unit} if dims[-1] == axis.name else {"units": axis.unit, "abduce_name": axis.name}
            coords[dims[-1]] = (dims[-1], axis.values, meta)
        data[ch] = (tuple(dims), arr, {"units": ds.units.get(ch, "")})
    attrs = {**_storable(ds.attrs), "abduce_axes": json.dumps(list(ds.axis_names))}
    xr.Dataset(data, coords=coords, attrs=attrs).to_netcdf(path, engine="h5netcdf")
