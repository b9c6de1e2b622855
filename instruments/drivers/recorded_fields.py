"""What the recorded data's format modules share: the fields a reader returns, what a writer reads, attributes.

A reader (``read_hdf5``, ``read_netcdf``, ``read_npz``) returns :class:`Fields`,
the data set as the file holds it; :meth:`RecordedDataset.load
<abduce.instruments.drivers.recorded_dataset.RecordedDataset.load>` validates
them. A writer (``save_hdf5``, ``save_nsid``, ``save_netcdf``, ``save_npz``)
takes a validated data set, typed here as :class:`Grid` so that the format
modules sit below the data set and never import it. The helpers below turn
HDF5/NetCDF attributes into plain Python and metadata into what every format
stores.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypedDict

import numpy as np

from abduce.instruments.drivers.base import SpectralAxis


class Fields(TypedDict):
    """A data set as a reader found it, before :class:`RecordedDataset` validates it (its constructor's arguments)."""

    points: np.ndarray
    axis_names: tuple[str, ...]
    values: dict[str, np.ndarray]
    units: dict[str, str]
    attrs: dict[str, Any]
    spectral_axes: dict[str, SpectralAxis]


class Grid(Protocol):
    """What a writer reads of a data set: a validated :class:`RecordedDataset`."""

    points: np.ndarray
    axis_names: tuple[str, ...]
    values: dict[str, np.ndarray]
    units: dict[str, str]
    attrs: dict[str, Any]
    spectral_axes: dict[str, SpectralAxis]

    @property
    def n(self) -> int: ...

    @property
    def d(self) -> int: ...


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


def _unit(v) -> str:
    """A unit attribute as text; sidpy's placeholder ``"generic"`` (no unit given) as ``""``."""
    s = _text(v).strip()
    return "" if s == "generic" else s


def _names(v) -> list[str]:
    """Axis names from an attribute: a list, a JSON list, or comma- or space-separated text."""
    v = _plain(v)
    if isinstance(v, list):
        return [_text(x) for x in v]
    s = _text(v).strip()
    if s.startswith("["):
        return [str(x) for x in json.loads(s)]
    return [x.strip() for x in s.split(",")] if "," in s else s.split()
