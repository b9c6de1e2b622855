"""Recorded data in NSID, the HDF5 layout pycroscopy's pyNSID/sidpy write.

A main dataset (attributes ``main_data_name``, ``quantity``, ``units``,
``data_type``) whose dimensions are HDF5 dimension scales (attributes
``name``, ``units``, ``quantity``, ``dimension_type``). The grid is the
cartesian product of the non-spectral dimensions' values
(``dimension_type`` not SPECTRAL/TEMPORAL/RECIPROCAL/CHANNEL, or the
dimensions named by ``axes=``); the other dimensions make each point's
spectrum, and the last of them, where it has a dimension scale, is the
channel's spectral axis (its ``name``, ``units`` and values). Units
``"generic"`` (sidpy's placeholder) read as no unit. Simple attributes of the
``metadata`` group beside the main dataset (sidpy's ``Dataset.metadata``) are
the data set's ``attrs``.

Reading needs h5py alone (an instrument PC need not install pyNSID). Writing
goes through pyNSID and sidpy themselves (``pip install 'abduce[nsid]'``): one
``sidpy.Dataset`` per channel, written by ``pyNSID.io.hdf_io.write_nsid_dataset``
into ``Measurement_000/<channel>/<channel>``, grid axes typed SPATIAL with
their units, the spectral axis SPECTRAL with its values and unit, other
spectrum dimensions SPECTRAL indices, the data set's ``attrs`` as the
dataset's ``metadata``. pyNSID and sidpy read such a file with no warning.
sidpy cannot name a dimension after one of its ``Dataset`` attributes
(``T``, ``size``, ``real``...) nor a main dataset with ``-``: those are
written as ``T_``, ``loop_area`` and the original names kept in the metadata
attribute ``abduce_names`` (JSON, written -> original), which this reader
applies.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _plain, _simple, _storable, _text, _unit

SPECTRAL_TYPES = frozenset({"spectral", "temporal", "reciprocal", "channel"})
_H5_INTERNAL = frozenset({"DIMENSION_LIST", "DIMENSION_LABELS", "REFERENCE_LIST", "CLASS", "NAME"})


def _nsid_mains(f) -> list:
    """NSID main datasets in file order (creation order where the group tracks it, as abduce's writer does):
    the datasets carrying ``main_data_name``."""
    import h5py

    found = []

    def walk(group) -> None:
        for obj in group.values():
            if isinstance(obj, h5py.Group):
                walk(obj)
            elif isinstance(obj, h5py.Dataset) and "main_data_name" in obj.attrs:
                found.append(obj)

    walk(f)
    return found


@dataclass
class _Dim:
    name: str
    values: np.ndarray
    kind: str
    unit: str
    scaled: bool  # a dimension scale gave its values (not the bare index)


def _nsid_dims(dset) -> list[_Dim]:
    """Each dimension of an NSID main dataset: its scale's name, values, dimension_type and units."""
    dims = []
    for i, dim in enumerate(dset.dims):
        if len(dim):
            scale = dim[0]
            name = _text(scale.attrs.get("name", dim.label or scale.name.rsplit("/", 1)[-1]))
            values = np.asarray(scale[()])
            kind = _text(scale.attrs.get("dimension_type", "")).rsplit(".", 1)[-1].lower()  # "DimensionType.SPECTRAL"
            unit, scaled = _unit(scale.attrs.get("units", "")), True
        else:  # no scale attached: the index is the coordinate
            name, values, kind, unit, scaled = dim.label or f"dim_{i}", np.arange(dset.shape[i]), "", "", False
        if values.shape != (dset.shape[i],):
            raise ConfigError(f"dimension {name!r} of {dset.name} has {values.shape} values for length {dset.shape[i]}")
        dims.append(_Dim(name, values, kind, unit, scaled))
    return dims


def _read_nsid(path: Path, mains: list, axes) -> Fields:
    """The NSID main datasets ``mains`` of the open file ``path`` as one data set, all on one grid
    (each a channel); called by :func:`~abduce.instruments.drivers.recorded_hdf5.read_hdf5`."""
    points = axis_names = None
    values, units, attrs, spectral = {}, {}, {}, {}
    for dset in mains:
        meta = _metadata(dset)
        original = json.loads(meta.pop("abduce_names", "{}") or "{}")
        dims = _nsid_dims(dset)
        for d in dims:
            d.name = original.get(d.name, d.name)
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
            attrs.update(meta)
        elif grid_names != axis_names or not np.array_equal(pts, points):
            raise ConfigError(
                f"{path}: {dset.name} is on another grid ({grid_names}) than {mains[0].name} ({axis_names})"
            )
        ch = dset.name.rsplit("/", 1)[-1]
        ch = original.get(ch, ch)
        ch = ch if ch not in values else f"{ch}_{len(values)}"
        values[ch] = data.reshape(n, *data.shape[len(grid) :])
        if _unit(dset.attrs.get("units", "")):
            units[ch] = _unit(dset.attrs["units"])
        if spec and dims[spec[-1]].scaled:
            last = dims[spec[-1]]
            spectral[ch] = SpectralAxis(last.name, last.unit, last.values.astype(float))
    return Fields(points=points, axis_names=axis_names, values=values, units=units, attrs=attrs, spectral_axes=spectral)


def _metadata(dset) -> dict:
    """The simple attributes of the ``metadata`` group beside an NSID main dataset (sidpy's ``metadata``)."""
    import h5py

    group = dset.parent.get("metadata")
    if not isinstance(group, h5py.Group):
        return {}
    return {k: _plain(v) for k, v in group.attrs.items() if _simple(v)}


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


# (point dimensions, spectrum dimensions) -> sidpy's DataType name
_DATA_TYPES = {
    (1, 0): "LINE_PLOT",
    (2, 0): "IMAGE",
    (0, 1): "SPECTRUM",
    (1, 1): "LINE_PLOT_FAMILY",
    (2, 1): "SPECTRAL_IMAGE",
    (2, 2): "IMAGE_4D",
}


def _sidpy():
    """sidpy and pyNSID's writer, or a ConfigError naming the extra that brings them."""
    try:
        import sidpy
        from pyNSID.io.hdf_io import write_nsid_dataset
    except ImportError as exc:
        raise ConfigError(
            f"writing NSID goes through pyNSID and sidpy, which are not installed ({exc}): "
            "pip install 'abduce[nsid]', or write abduce's HDF5 layout (.h5), NetCDF or NPZ (reading NSID needs "
            "h5py alone)"
        ) from exc
    return sidpy, write_nsid_dataset


def _reserved(sidpy) -> frozenset[str]:
    """Names sidpy cannot give a dimension: a ``sidpy.Dataset`` attribute (it sets one per dimension)."""
    probe = sidpy.Dataset.from_array(np.zeros(1))
    own = {d.name for d in probe._axes.values()}
    return frozenset(dir(sidpy.Dataset)) | (frozenset(vars(probe)) - own) | {"none", "metadata", "provenance"}


def save_nsid(ds: Grid, path: Path) -> None:
    """NSID written by pyNSID from one sidpy.Dataset per channel (the module docstring): the grid's axes as
    SPATIAL dimensions, the channel's spectral axis as a SPECTRAL one, units (``"generic"`` for none)."""
    import h5py

    sidpy, write_nsid_dataset = _sidpy()
    reserved = _reserved(sidpy)
    axes, flat = _product_grid(ds)
    shape = tuple(len(a) for a in axes)
    with h5py.File(path, "w") as f:
        measurement = f.create_group("Measurement_000", track_order=True)  # channel order kept
        for ch, arr in ds.values.items():
            written: dict[str, str] = {}

            def safe(name: str, forbidden: frozenset[str], written=written) -> str:
                out = name
                while out in forbidden:
                    out += "_"
                if out != name:
                    written[out] = name
                return out

            spec = arr.shape[1:]
            grid = np.full((ds.n, *spec), np.nan) if arr.dtype.kind == "f" else np.zeros((ds.n, *spec), arr.dtype)
            grid[flat] = arr
            sid = sidpy.Dataset.from_array(
                grid.reshape(shape + spec),
                title=ch,
                datatype=_DATA_TYPES.get((ds.d, len(spec)), "UNKNOWN"),
                units=ds.units.get(ch) or "generic",
                quantity=ch,
                source="abduce",
            )
            dims = [(a, vals, ds.units.get(a, ""), "SPATIAL") for a, vals in zip(ds.axis_names, axes)]
            dims += [(f"{ch}_dim{j}", np.arange(m, dtype=float), "", "SPECTRAL") for j, m in enumerate(spec)]
            axis = ds.spectral_axes.get(ch)
            if axis is not None:
                dims[-1] = (axis.name, axis.values, axis.unit, "SPECTRAL")
            for i, (name, vals, unit, kind) in enumerate(dims):
                dim = sidpy.Dimension(
                    vals, name=safe(name, reserved), quantity=name, units=unit or "generic", dimension_type=kind
                )
                sid.set_dimension(i, dim)
            main = ch.replace("-", "_")  # pyNSID would warn, and replace it
            if main != ch:
                written[main] = ch
            sid.metadata = {**_storable(ds.attrs), "abduce_names": json.dumps(written)}
            with warnings.catch_warnings():  # pyNSID calls its own deprecated validator while linking dimensions
                warnings.filterwarnings("ignore", message="validate_h5_dimension may be removed")
                write_nsid_dataset(sid, measurement, main_data_name=main)
