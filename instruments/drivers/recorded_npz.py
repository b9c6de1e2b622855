"""Recorded data in NPZ (``.npz``): ``numpy.savez`` arrays.

Keys: ``points`` (n x d), ``axis_names`` (d), ``values_<channel>`` (n or n x ...);
optional ``units_json`` (``{name: unit}`` for axes and channels), ``attrs_json``
(metadata), and per array channel with a spectral axis ``spectral_<channel>``
(the axis values, ``m`` = the channel's last dimension) with its name and unit
in ``spectral_json`` (``{channel: {"name": "bias", "unit": "V"}}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _storable


def read_npz(path: Path, axes=None) -> Fields:
    """``numpy.savez`` arrays as the module docstring lists them. ``axes`` must be None: an .npz names its
    axes itself."""
    if axes is not None:
        raise ConfigError(f"{path}: axes= is for NSID and NetCDF files; an .npz names its axes itself")
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
        described = json.loads(str(z["spectral_json"])) if "spectral_json" in keys else {}
        spectral = {}
        for ch, meta in described.items():
            if f"spectral_{ch}" not in keys:
                raise ConfigError(f"{path}: spectral_json describes {ch!r} but there is no 'spectral_{ch}' array")
            spectral[ch] = SpectralAxis(str(meta.get("name", "")), str(meta.get("unit", "")), z[f"spectral_{ch}"])
    return Fields(
        points=points, axis_names=tuple(names), values=values, units=units, attrs=attrs, spectral_axes=spectral
    )


def save_npz(ds: Grid, path: Path) -> None:
    arrays = {f"values_{ch}": arr for ch, arr in ds.values.items()}
    arrays.update({f"spectral_{ch}": a.values for ch, a in ds.spectral_axes.items()})
    described = {ch: {"name": a.name, "unit": a.unit} for ch, a in ds.spectral_axes.items()}
    with open(path, "wb") as fh:  # a path without .npz must not grow one
        np.savez(
            fh,
            points=ds.points,
            axis_names=np.array(ds.axis_names, dtype=str),
            units_json=np.array(json.dumps(ds.units)),
            attrs_json=np.array(json.dumps(_storable(ds.attrs))),
            spectral_json=np.array(json.dumps(described)),
            **arrays,
        )
