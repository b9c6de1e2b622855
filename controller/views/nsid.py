"""``abduce export RUN --out FILE.nsid``: a campaign on its grid as NSID, for pycroscopy's pyNSID and sidpy.

The export's dataset (:func:`abduce.controller.views.export.build_dataset`) laid on the campaign's grid and
written by the recorded-data NSID writer (:func:`abduce.instruments.drivers.recorded_nsid.save_nsid`, which
goes through pyNSID and sidpy themselves: ``pip install 'abduce[nsid]'``). One main dataset per quantity,
``Measurement_000/<name>/<name>``, each over the grid: one SPATIAL dimension per axis with the instrument's
units, so pyNSID/sidpy read it without a warning and plot it as an image (2 axes) or a line (1 axis):

* the explained value, named and with the unit as the export's labels give them (the channel, or a reduced
  spectrum's reduction, e.g. ``loop-area``): the value the hypotheses explain at each grid point, the mean
  of the readings there (``sum_i y_i / n`` over the ``n`` readings at that point), NaN where none;
* ``n_readings``: ``n``, the readings at each grid point;
* ``posterior_mean_<hypothesis>``, ``posterior_sd_<hypothesis>`` (the channel's unit): each hypothesis's
  posterior after the last exported step, NaN before its first fit;
* ``raw_<name>``: array channel ``name``'s last reading at each grid point (NaN where none), its own
  dimensions SPECTRAL.

sidpy's ``metadata`` of each holds what the NetCDF export's attributes hold (``journal``, ``config``,
``measurements``, ``step``, ``policy``). The grid is the points the posteriors are kept at; NSID stores a
cartesian grid, so the campaign's space must be every combination of its axes' values (a recorded or a
simulated grid); a continuous box's reference points are not one: export NetCDF instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from abduce.controller.errors import ConfigError


def grid_dataset(ds: xr.Dataset, axis_units: dict[str, str], channel: tuple[str, str]):
    """The export ``ds`` on its posterior grid as a recorded data set (module docstring), ready for NSID.

    Args:
        ds: :func:`~abduce.controller.views.export.build_dataset`'s dataset, with its posteriors.
        axis_units: the instrument's unit by axis name (``""`` where none).
        channel: the name and unit of what ``y`` holds (the channel, or the reduction of a spectrum).

    Raises:
        ConfigError: no posteriors (``--no-posteriors``), or points that are not a full grid.
    """
    from abduce.instruments.drivers.recorded import RecordedDataset

    if "point" not in ds.variables:
        raise ConfigError(
            "the NSID export lays the campaign on its grid, which the posteriors give: drop --no-posteriors"
        )
    points = np.asarray(ds.point.values, dtype=float)
    axes = [str(a) for a in ds.axis.values]
    shape = [len(np.unique(points[:, k])) for k in range(points.shape[1])]
    if int(np.prod(shape)) != len(points):
        raise ConfigError(
            f"NSID stores a cartesian grid; this campaign's {len(points)} points are not one "
            f"({' x '.join(map(str, shape))} axis values: a continuous space): export .nc instead"
        )
    own = _explained_rows(ds)  # over several channels: the explained channel's readings, not the cheap ones
    where = {tuple(p): i for i, p in enumerate(points.tolist())}
    at = np.array([where.get(tuple(x), -1) for x in ds.x.values[own].tolist()], dtype=int)
    if (at < 0).any():
        off = ds.x.values[own][int(np.flatnonzero(at < 0)[0])].tolist()
        raise ConfigError(f"measurement at {off} is not a point of the campaign's grid: export .nc instead")
    y = ds.y.values[own].astype(float)
    count = np.bincount(at, minlength=len(points)).astype(float)
    total = np.bincount(at, weights=y, minlength=len(points))
    name, unit = channel
    values: dict[str, np.ndarray] = {
        name: np.divide(total, count, out=np.full(len(points), np.nan), where=count > 0),
        "n_readings": count,
    }
    units = {a: axis_units.get(a, "") for a in axes} | {name: unit}
    for j, h in enumerate(str(h) for h in ds.hypothesis.values):
        for var in ("posterior_mean", "posterior_sd"):
            values[f"{var}_{h}"] = ds[var].values[j]
            units[f"{var}_{h}"] = unit
    for var in (v for v in ds.data_vars if str(v).startswith("raw_")):
        raw = ds[var].values[own]  # the explained channel's readings, as `at` counts them
        grid = np.full((len(points), *raw.shape[1:]), np.nan)
        for i, k in enumerate(at):  # in measurement order: the last reading at a point stays
            if np.isfinite(raw[i]).any():  # NaN rows: measurements without this array
                grid[k] = raw[i]
        values[str(var)] = grid
    attrs = {k: ds.attrs[k] for k in ("journal", "config", "measurements", "step", "policy") if k in ds.attrs}
    return RecordedDataset(
        points=points, axis_names=tuple(axes), values=values, units={k: u for k, u in units.items() if u}, attrs=attrs
    )


def write_nsid(ds: xr.Dataset, out: Path, axis_units: dict[str, str], channel: tuple[str, str]) -> Path:
    """Write :func:`grid_dataset` of ``ds`` to ``out`` as NSID (through pyNSID and sidpy). Returns ``out``."""
    return grid_dataset(ds, axis_units, channel).save(out, "nsid")


def _explained_rows(ds) -> np.ndarray:
    """Which measurements are readings of the channel the hypotheses explain: all of them, unless the campaign
    read several channels (the ``channel`` variable), then those not of a cheaper channel its config names
    (``cheap_channels``); the cheap readings are in other units and belong to no grid value of the law."""
    if "channel" not in ds or not any(str(c) for c in ds["channel"].values):
        return np.ones(ds.sizes["measurement"], dtype=bool)
    config = json.loads(ds.attrs.get("config", "{}"))
    campaign = config.get("campaign", config)
    cheap = set(campaign.get("cheap_channels") or {})
    return np.array([str(c) not in cheap for c in ds["channel"].values], dtype=bool)
