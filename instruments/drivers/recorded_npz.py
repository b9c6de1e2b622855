"""Recorded data in NPZ (``.npz``): ``numpy.savez`` arrays ``points``, ``axis_names``, ``values_<channel>``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.recorded_fields import Fields, Grid, _storable


def read_npz(path: Path, axes=None) -> Fields:
    """``numpy.savez`` arrays: ``points``, ``axis_names``, ``values_<channel>`` (+ optional ``units_json``,
    ``attrs_json``). ``axes`` must be None: an .npz names its axes itself."""
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
    return Fields(points=points, axis_names=tuple(names), values=values, units=units, attrs=attrs)


def save_npz(ds: Grid, path: Path) -> None:
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
