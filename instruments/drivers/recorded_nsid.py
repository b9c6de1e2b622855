"""Recorded data in NSID, the HDF5 layout pycroscopy's pyNSID/sidpy write (read with h5py alone).

A main dataset (attributes ``main_data_name``, ``quantity``, ``units``,
``data_type``) whose dimensions are HDF5 dimension scales. The grid is the
cartesian product of the non-spectral dimensions' values
(``dimension_type`` not SPECTRAL/TEMPORAL/RECIPROCAL/CHANNEL, or the
dimensions named by ``axes=``); the other dimensions make each point's
spectrum. pyNSID is never needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _plain, _simple, _storable, _text

SPECTRAL_TYPES = frozenset({"spectral", "temporal", "reciprocal", "channel"})
_H5_INTERNAL = frozenset({"DIMENSION_LIST", "DIMENSION_LABELS", "REFERENCE_LIST", "CLASS", "NAME"})


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


def _read_nsid(path: Path, mains: list, axes) -> Fields:
    """The NSID main datasets ``mains`` of the open file ``path`` as one data set, all on one grid
    (each a channel); called by :func:`~abduce.instruments.drivers.recorded_hdf5.read_hdf5`."""
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
    return Fields(points=points, axis_names=axis_names, values=values, units=units, attrs=attrs)


def _product_grid(ds: Grid) -> tuple[list[np.ndarray], np.ndarray]:
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


def save_nsid(ds: Grid, path: Path) -> None:
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
