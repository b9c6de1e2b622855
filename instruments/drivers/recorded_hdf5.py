"""Recorded data in HDF5 (``.h5``, ``.hdf5``, ``.nsid``): abduce's layout, and which layout a file holds.

abduce's layout: datasets ``points`` (n x d) and ``values/<channel>``
(n x ...; attribute ``units``), root attributes ``axis_names`` and
``axis_units``; per array channel with a spectral axis, a dataset
``spectral/<channel>`` (its ``m`` values, ``m`` = the channel's last dimension)
with attributes ``name`` (``"bias"``) and ``units`` (``"V"``). An HDF5 file
without ``points``/``values`` is read as NSID
(:mod:`abduce.instruments.drivers.recorded_nsid`), whatever its extension.
"""

from __future__ import annotations

from pathlib import Path

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _names, _plain, _storable, _text
from abduce.instruments.drivers.recorded_nsid import _nsid_mains, _read_nsid


def read_hdf5(path: Path, axes=None) -> Fields:
    """An HDF5 file in abduce's layout (``points`` + ``values/``) or in NSID; detected from its content."""
    import h5py

    with h5py.File(path, "r") as f:
        if "points" in f or "values" in f:
            if axes is not None:
                raise ConfigError(f"{path}: axes= is for NSID files; abduce's layout names its axes in 'axis_names'")
            return _read_abduce_h5(path, f)
        mains = _nsid_mains(f)
        if not mains:
            raise ConfigError(
                f"{path}: neither abduce's layout (datasets 'points' and 'values/<channel>') nor NSID "
                "(a dataset with attribute 'main_data_name' and dimension scales) found"
            )
        return _read_nsid(path, mains, axes)


def _read_abduce_h5(path: Path, f) -> Fields:
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
    spectral = {}
    if isinstance(f.get("spectral"), h5py.Group):
        for ch, dset in f["spectral"].items():
            name = _text(dset.attrs.get("name", ch))
            spectral[ch] = SpectralAxis(name, _text(dset.attrs.get("units", "")), dset[()])
    attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("axis_names", "axis_units", "abduce_format")}
    return Fields(
        points=points, axis_names=tuple(names), values=values, units=units, attrs=attrs, spectral_axes=spectral
    )


def save_hdf5(ds: Grid, path: Path) -> None:
    """abduce's HDF5 layout (the module docstring): ``points``, ``values/<channel>``, ``spectral/<channel>``."""
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
        if ds.spectral_axes:
            s = f.create_group("spectral", track_order=True)
            for ch, axis in ds.spectral_axes.items():
                s.create_dataset(ch, data=axis.values).attrs.update({"name": axis.name, "units": axis.unit})
