"""``abduce export RUN --out FILE.nc|FILE.h5``: a campaign's data and posteriors as one NetCDF file.

(``--out FILE.nsid`` writes the same campaign laid on its grid as NSID for pycroscopy's pyNSID and sidpy:
:mod:`abduce.controller.views.nsid`.)

An :class:`xarray.Dataset` written with the ``h5netcdf`` engine (NetCDF-4,
which is HDF5: ``.h5`` gets the same file, readable by ``h5py`` too).

Variables (dims):

* ``x`` (measurement, axis): where each measurement was made; ``y``
  (measurement): the value the hypotheses explain (over several channels: the reading, in its channel's
  unit; ``y``'s ``units`` attribute is then the explained channel's); ``channel`` (measurement; str): the
  channel read (over several channels; ``""`` otherwise).
* ``request_id``, ``reason``, ``chosen_by`` (measurement; str): the request,
  why it was made, the driving hypothesis ("" for none); ``reward``
  (measurement): its reward, NaN where none.
* ``probability``, ``log_evidence`` (measurement, hypothesis): after each
  step, NaN before a hypothesis's first fit.
* ``parameter_mean``, ``parameter_sd`` (measurement, hypothesis, parameter):
  the fitted physical parameters after each step, NaN where a hypothesis has
  no such parameter.
* ``raw_NAME`` (measurement, NAME_0, NAME_1, ...): the raw array channel NAME
  of each measurement where journalled (NaN-filled where absent).
* ``point`` (point, axis): the points the posteriors are kept at (a finite
  space's candidates, a box's reference points); ``posterior_mean``,
  ``posterior_sd`` (hypothesis, point): each hypothesis's posterior after the
  last exported step, NaN before its first fit.

Coordinates: ``measurement`` (0, 1, ...: the step), ``axis`` (the space's axis
names), ``hypothesis``, ``parameter``. CF conventions (:mod:`abduce.controller.views.cf`):
``units`` and ``long_name`` on every numeric variable, ``x_NAME`` per axis, and on a full grid
``posterior_mean_grid`` / ``posterior_sd_grid`` with one dimension per axis (``.sel(NAME=...)``).
Attributes: ``Conventions``, ``title``, ``history``, ``config`` (the journal's
config event, JSON), ``transfer`` (what the campaign took from a past one, JSON as ``abduce inspect --json``
gives it, :mod:`abduce.controller.views.transfer`; ``""`` for a cold start), ``journal`` (its absolute path),
``measurements``, ``step``
(the ``--step`` asked for, -1 for all), ``abduce_export`` (the layout's
version). The posteriors need the campaign as it stood
(:func:`abduce.controller.journal.rebuild.snapshot`: journalled fits conditioned once);
``posteriors=False`` leaves them out (and the axis names fall back to x0, x1...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from abduce.controller.errors import ConfigError
from abduce.controller.journal.events import DecisionBody, read, refused_points
from abduce.controller.journal.store import Journal
from abduce.controller.views.cf import annotate
from abduce.controller.views.inspection import inspect_journal, journal_path

EXPORT_VERSION = 2  # 2: channel (the channel each reading is of)
SUFFIXES = (".nc", ".h5", ".hdf5", ".nc4", ".nsid")


def build_dataset(journal: Journal, step: int | None = None, posteriors: bool = True) -> xr.Dataset:
    """The dataset of the journal's campaign after ``step`` measurements (all by default)."""
    events = list(read(journal))  # read once: the inspection and the snapshot both need them
    config = journal.config()
    ins = inspect_journal(journal, step, events)
    rows, names = ins.measurements, ins.hypotheses
    n = len(rows)
    d = len(rows[0].x) if rows else 1
    by_point = {(e.request_id, e.body.index): e.body for e in events if e.kind == "decision"}  # a batch's apart
    refused = refused_points(events)[0]
    told = [(e.request_id, e.body.index) for e in events if e.kind == "measurement"]
    told = [k for k in told if k not in refused][:n]  # the rows' (request id, point index), in order
    records: list[DecisionBody | None] = [by_point.get(k) for k in told]
    params = sorted({p for rec in records if rec is not None for h in rec.parameters.values() for p in h})
    prob = np.full((n, len(names)), np.nan)
    logz = np.full((n, len(names)), np.nan)
    pmean = np.full((n, len(names), len(params)), np.nan)
    psd = np.full_like(pmean, np.nan)
    for i, rec in enumerate(records):
        if rec is None:
            continue
        for j, name in enumerate(names):
            prob[i, j] = rec.probabilities.get(name, np.nan)
            v = rec.log_evidence.get(name)
            logz[i, j] = np.nan if v is None else v
            for k, p in enumerate(params):
                est = rec.parameters.get(name, {}).get(p)
                if est is not None:
                    pmean[i, j, k], psd[i, j, k] = est
    axes = [f"x{i}" for i in range(d)]
    campaign = None
    if posteriors and n:
        from abduce.controller.journal.rebuild import snapshot

        _, campaign = snapshot(journal, upto=n, events=events)
        axes = list(campaign.physical_space.names)
    data = {
        "x": (("measurement", "axis"), np.array([r.x for r in rows], dtype=float).reshape(n, d)),
        "y": ("measurement", np.array([r.y for r in rows], dtype=float)),
        "request_id": ("measurement", np.array([r.request_id for r in rows], dtype=object)),
        "reason": ("measurement", np.array([r.reason for r in rows], dtype=object)),
        "channel": ("measurement", np.array([r.channel or "" for r in rows], dtype=object)),
        "chosen_by": ("measurement", np.array([r.hypothesis or "" for r in rows], dtype=object)),
        "reward": ("measurement", np.array([np.nan if r.reward is None else r.reward for r in rows], dtype=float)),
        "probability": (("measurement", "hypothesis"), prob),
        "log_evidence": (("measurement", "hypothesis"), logz),
        "parameter_mean": (("measurement", "hypothesis", "parameter"), pmean),
        "parameter_sd": (("measurement", "hypothesis", "parameter"), psd),
    }
    index = {k: i for i, k in enumerate(told)}
    data.update(_raw_arrays(journal, [k for k, r in zip(told, rows) if r.arrays], index, n))
    coords = {
        "measurement": np.array([r.step for r in rows], dtype=np.int64),
        "axis": axes,
        "hypothesis": names,
        "parameter": params,
    }
    if campaign is not None:
        from abduce.controller.views.figures import posterior_of

        points = campaign.points()
        mean = np.full((len(names), len(points)), np.nan)
        sd = np.full_like(mean, np.nan)
        for j, name in enumerate(campaign.hypothesis_names):
            post = posterior_of(campaign, name)
            if post is not None:
                mean[j], sd[j] = post
        data["point"] = (("point", "axis"), points)
        data["posterior_mean"] = (("hypothesis", "point"), mean)
        data["posterior_sd"] = (("hypothesis", "point"), sd)
    attrs = {
        "abduce_export": EXPORT_VERSION,
        "journal": str(journal.path),
        "config": json.dumps(config, sort_keys=True, default=str),
        "measurements": n,
        "step": -1 if step is None else int(step),
        "policy": ins.stopping.policy,
        "stopped": int(ins.stopping.stopped),
        "transfer": "" if ins.transfer is None else ins.transfer.model_dump_json(),
    }
    axis_units, channel = _units(config, len(axes))
    if campaign is None and len(axis_units) == d:
        coords["axis"] = list(axis_units)  # the instrument's names, without rebuilding the campaign
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    name = config.get("name") or (config.get("campaign") or {}).get("name", "")
    return annotate(ds, axis_units, channel, str(Path(journal.path).resolve()), f"abduce campaign {name}".strip())


def _units(config: dict, d: int) -> tuple[dict[str, str], tuple[str, str]]:
    """The axes' units by name and the explained value's name and unit, as the instrument declared them
    (:func:`~abduce.controller.views.labels.labels_of`); empty where it cannot be described here."""
    from abduce.controller.views.labels import labels_of

    labels = labels_of(config, d)
    if not labels.declared:  # an instrument that cannot be described here: no units, the values stand
        return {}, ("y", "")
    return {a.name: a.unit for a in labels.axes[:d]}, (labels.explained.name, labels.explained.unit)


def _raw_arrays(
    journal: Journal, with_arrays: list[tuple[str, int]], index: dict[tuple[str, int], int], n: int
) -> dict:
    """``raw_NAME`` variables, ``measurement x shape``, for array channels of one shape throughout."""
    if not with_arrays:
        return {}
    wanted = set(with_arrays)
    found: dict[str, dict[int, np.ndarray]] = {}
    for e in read(journal, "measurement"):
        at = (e.request_id, e.body.index)  # a batch's points apart
        if at in wanted and at in index:
            for name, a in e.body.arrays.items():
                found.setdefault(name, {})[index[at]] = a.array()
    out = {}
    for name, arrays in found.items():
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1:
            raise ConfigError(
                f"array channel {name!r} changes shape within the run ({sorted(shapes)}); it cannot be one variable"
            )
        shape = shapes.pop()
        full = np.full((n, *shape), np.nan)
        for i, a in arrays.items():
            full[i] = a
        out[f"raw_{name}"] = (("measurement", *(f"{name}_{k}" for k in range(len(shape)))), full)
    return out


def export_run(
    run: str | os.PathLike, out: str | os.PathLike, step: int | None = None, posteriors: bool = True
) -> Path:
    """Write ``run``'s dataset to ``out`` (``.nc``, ``.h5``; ``.nsid``: on its grid as NSID,
    :mod:`abduce.controller.views.nsid`; never over an existing file).

    Raises:
        ConfigError: an unknown extension, or ``out`` exists.
    """
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"export to {out}: use one of {', '.join(SUFFIXES)} (NetCDF-4 / HDF5)")
    if out.exists():
        raise ConfigError(f"{out} already exists; choose another --out")
    with Journal.open(journal_path(run), readonly=True) as journal:
        ds = build_dataset(journal, step, posteriors)
        config = journal.config()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".nsid":
        from abduce.controller.views.nsid import write_nsid

        return write_nsid(ds, out, *_units(config, ds.sizes["axis"]))
    ds.to_netcdf(out, engine="h5netcdf")
    return out
