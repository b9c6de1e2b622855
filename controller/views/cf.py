"""CF-conventions metadata for the NetCDF export: units, long names, the axes as dimensions on a grid.

:func:`annotate` takes the dataset :func:`abduce.controller.views.export.build_dataset` builds and adds, without
changing a value: ``Conventions``, ``title``, ``history`` and ``source`` attributes; ``units`` and ``long_name``
on every numeric variable and coordinate (the instrument's own units for its axes and the channel the
hypotheses explain, ``"1"`` where it declared none or the quantity has none); one variable per axis for where
each measurement was made (``x_NAME``); and, when the points the posteriors are kept at form a full grid
(every combination of the axes' values, as a recorded or simulated grid does), the posteriors again on that
grid, one dimension per axis (``posterior_mean_grid``, ``posterior_sd_grid``), so ``.sel(NAME=...)`` works.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import xarray as xr

CONVENTIONS = "CF-1.10"


def _unit(u: str | None) -> str:
    return u if u else "1"


def annotate(
    ds: xr.Dataset,
    axis_units: dict[str, str],
    channel: tuple[str, str],
    journal: str,
    title: str,
) -> xr.Dataset:
    """``ds`` with CF metadata (module docstring). ``axis_units``: unit by axis name; ``channel``: the name and
    unit of what ``y`` holds; ``journal``: the journal's absolute path."""
    axes = [str(a) for a in ds.axis.values]
    name, unit = channel
    ds = ds.copy()
    ds.attrs.update(
        Conventions=CONVENTIONS,
        title=title,
        source="abduce",
        history=f"{datetime.now(UTC).isoformat(timespec='seconds')} abduce export of {journal}",
        journal=journal,
    )
    labels = {
        "x": ("the point measured, one coordinate per axis (x_NAME: the same, in each axis's units)", "1"),
        "y": (f"{name}: the value the hypotheses explain", _unit(unit)),
        "reward": ("the driving hypothesis's reward for this measurement", "1"),
        "probability": ("posterior probability of each hypothesis after this measurement", "1"),
        "log_evidence": ("log marginal likelihood of each hypothesis (nats)", "1"),
        "parameter_mean": ("posterior mean of each physical parameter", "1"),
        "parameter_sd": ("posterior standard deviation of each physical parameter", "1"),
        "point": ("the points the posteriors are kept at", "1"),
        "posterior_mean": (f"posterior mean of {name} under each hypothesis", _unit(unit)),
        "posterior_sd": (f"posterior standard deviation of {name} under each hypothesis", _unit(unit)),
        "measurement": ("the step at which the measurement was made", "1"),
    }
    for var, (long_name, u) in labels.items():
        if var in ds.variables:
            ds[var].attrs.update(long_name=long_name, units=u)
    for var in ds.data_vars:
        if var.startswith("raw_"):
            ds[var].attrs.update(long_name=f"raw array channel {var[4:]} as measured", units="1")
    for k, a in enumerate(axes):
        ds[f"x_{a}"] = (
            "measurement",
            ds.x.values[:, k],
            {"long_name": f"{a} of the point measured", "units": _unit(axis_units.get(a))},
        )
    if "point" in ds.variables:
        ds = _on_grid(ds, axes, axis_units)
    return ds


def _on_grid(ds: xr.Dataset, axes: list[str], axis_units: dict[str, str]) -> xr.Dataset:
    """The posteriors with one dimension per axis, when the points are every combination of the axes' values."""
    points = ds.point.values
    values = [np.unique(points[:, k]) for k in range(points.shape[1])]
    if int(np.prod([len(v) for v in values])) != len(points) or any(a in ds.variables for a in axes):
        return ds
    index = tuple(np.searchsorted(values[k], points[:, k]) for k in range(points.shape[1]))
    shape = tuple(len(v) for v in values)
    for var in ("posterior_mean", "posterior_sd"):
        grid = np.full((ds.sizes["hypothesis"], *shape), np.nan)
        grid[(slice(None), *index)] = ds[var].values
        ds[f"{var}_grid"] = (("hypothesis", *axes), grid, dict(ds[var].attrs))
    for a, v in zip(axes, values):
        ds = ds.assign_coords({a: (a, v, {"long_name": a, "units": _unit(axis_units.get(a))})})
    return ds
