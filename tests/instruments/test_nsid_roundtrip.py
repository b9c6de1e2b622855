"""NSID both ways with pycroscopy's own packages: abduce writes what pyNSID/sidpy read cleanly, and serves what
they write.

pyNSID reports a dimension it cannot read by printing ``dimension N not NSID type using generic`` (and sidpy
prints ``using generic parameters``), not by warning: every read here is checked for warnings, for log records
and for printed output.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.record import record
from abduce.instruments.drivers.recorded import RecordedDataset, build
from abduce.instruments.protocol.models import Measure
from abduce.simulators.loops import Loops

sidpy = pytest.importorskip("sidpy")
hdf_io = pytest.importorskip("pyNSID.io.hdf_io")
hdf_utils = pytest.importorskip("pyNSID.io.hdf_utils")

X, T = np.array([0.0, 0.5, 1.0]), np.array([280.0, 300.0, 320.0, 340.0])  # 3 x 4 grid: x (um), T (K)
BIAS = np.linspace(-4.0, 4.0, 9) ** 3 / 16  # not an arange: the values must survive


def spectral_map() -> RecordedDataset:
    """A 3 x 4 grid in C order, a bias-resolved response per point (pm, along BIAS in V) and a scalar map.

    ``T`` is a sidpy.Dataset attribute (the transpose) and ``loop-area`` holds a '-': both need renaming in NSID.
    """
    pts = np.stack([m.ravel() for m in np.meshgrid(X, T, indexing="ij")], axis=1)
    response = np.tanh(BIAS[None, :] - pts[:, :1]) * (1 + pts[:, 1:] / 1000)
    area = pts[:, 0] * 10 + pts[:, 1] / 100
    return RecordedDataset(
        points=pts,
        axis_names=("x", "T"),
        values={"response": response, "loop-area": area},
        units={"x": "um", "T": "K", "response": "pm"},
        attrs={"sample": "PZT-3", "scans": 2},
        spectral_axes={"response": SpectralAxis("bias", "V", BIAS)},
    )


def read_with_pynsid(path, capsys, caplog) -> dict:
    """Every NSID main dataset in ``path`` as pyNSID reads it, by quantity; no warning, log or print allowed."""
    capsys.readouterr()
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with h5py.File(path, "r") as f:
            mains = hdf_utils.get_all_main(f)
            assert all(hdf_utils.check_if_main(m) for m in mains)
            found = {}
            for m in mains:
                sid = hdf_utils.read_h5py_dataset(m)
                found[sid.quantity] = (sid, np.asarray(sid.compute()))
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""  # pyNSID prints "not NSID type using generic"
    return found


def test_an_nsid_file_abduce_writes_is_read_by_pynsid_and_sidpy_without_warning(tmp_path, capsys, caplog):
    ds = spectral_map()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.save(tmp_path / "map.nsid")
    assert [str(w.message) for w in caught] == []
    found = read_with_pynsid(tmp_path / "map.nsid", capsys, caplog)
    assert set(found) == {"response", "loop-area"}

    sid, data = found["response"]
    assert sid.units == "pm" and str(sid.data_type) == "DataType.SPECTRAL_IMAGE" and sid.metadata["sample"] == "PZT-3"
    dims = [sid._axes[i] for i in range(sid.ndim)]
    assert [d.dimension_type.name for d in dims] == ["SPATIAL", "SPATIAL", "SPECTRAL"]
    assert [d.quantity for d in dims] == ["x", "T", "bias"]  # "T" is named "T_" for sidpy, its quantity kept
    assert [d.units for d in dims] == ["um", "K", "V"]
    for d, values in zip(dims, (X, T, BIAS)):
        np.testing.assert_array_equal(np.asarray(d), values)
    assert sid.get_image_dims() == [0, 1] and sid.get_spectral_dims() == [2]
    np.testing.assert_array_equal(data, ds.values["response"].reshape(3, 4, 9))  # grid in C order

    area, grid = found["loop-area"]
    assert area.units == "generic" and str(area.data_type) == "DataType.IMAGE"  # no unit: sidpy's placeholder
    np.testing.assert_array_equal(grid, ds.values["loop-area"].reshape(3, 4))

    back = RecordedDataset.load(tmp_path / "map.nsid")  # and abduce reads its own file back exactly
    assert back.axis_names == ("x", "T") and list(back.values) == ["response", "loop-area"]
    assert back.units == ds.units and back.attrs["sample"] == "PZT-3" and back.attrs["scans"] == 2
    np.testing.assert_array_equal(back.points, ds.points)
    for ch in ds.values:
        np.testing.assert_array_equal(back.values[ch], ds.values[ch])
    axis = back.spectral_axes["response"]
    assert (axis.name, axis.unit) == ("bias", "V") and list(back.spectral_axes) == ["response"]
    np.testing.assert_array_equal(axis.values, BIAS)


def test_record_writes_nsid_that_pynsid_reads_with_the_simulators_spectral_axis(tmp_path, capsys, caplog):
    sim = Loops(grid=6, m=16, seed=1)
    written = record(sim, tmp_path / "loops.nsid", spectral_axis=SpectralAxis("cycle", "", np.linspace(0, 1, 16)))
    found = read_with_pynsid(tmp_path / "loops.nsid", capsys, caplog)
    sid, data = found[sim.channel]
    np.testing.assert_array_equal(data, written.values[sim.channel])  # a 1-D grid: no reordering
    dims = [sid._axes[i] for i in range(sid.ndim)]
    assert [d.dimension_type.name for d in dims] == ["SPATIAL", "SPECTRAL", "SPECTRAL"]
    np.testing.assert_array_equal(np.asarray(dims[0]), sim.candidates()[:, 0])
    np.testing.assert_array_equal(np.asarray(dims[2]), np.linspace(0, 1, 16))
    assert sid.metadata["simulator"] == "Loops"
    back = RecordedDataset.load(tmp_path / "loops.nsid")
    assert back.attrs["simulator"] == "Loops" and back.spectral_axes[sim.channel].unit == ""


def pynsid_file(path, title="BEPS") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A spectral image written the way a pycroscopy user writes one: sidpy.Dataset + pyNSID."""
    x, y, bias = np.array([0.0, 10.0, 20.0]), np.array([0.0, 5.0, 10.0, 15.0]), np.linspace(-2, 2, 8)
    data = np.arange(3 * 4 * 8, dtype=float).reshape(3, 4, 8) ** 1.5
    sid = sidpy.Dataset.from_array(data, title=title, units="a.u.", quantity="Piezoresponse")
    sid.data_type = "SPECTRAL_IMAGE"
    sid.modality = "BEPS"
    sid.set_dimension(0, sidpy.Dimension(x, name="x", units="nm", quantity="Length", dimension_type="SPATIAL"))
    sid.set_dimension(1, sidpy.Dimension(y, name="y", units="nm", quantity="Length", dimension_type="SPATIAL"))
    sid.set_dimension(2, sidpy.Dimension(bias, name="Bias", units="V", quantity="Voltage", dimension_type="SPECTRAL"))
    sid.metadata = {"scan_rate": 1.0}
    with h5py.File(path, "w") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyNSID's own deprecation notice while it writes
        hdf_io.write_nsid_dataset(sid, f.create_group("Measurement_000"), main_data_name=title)
    return x, y, bias, data


def test_a_file_pynsid_writes_is_served_by_recorded_with_its_units_and_spectral_axis(tmp_path):
    x, y, bias, data = pynsid_file(tmp_path / "beps.h5")
    driver = build(f"recorded:{tmp_path / 'beps.h5'}")
    caps = driver.describe()
    assert [(a.name, a.unit, a.min, a.max) for a in caps.axes] == [("x", "nm", 0.0, 20.0), ("y", "nm", 0.0, 15.0)]
    assert [(c.name, c.unit, c.shape) for c in caps.channels] == [("BEPS", "a.u.", [8])]
    i = 2 * 4 + 3  # x index 2, y index 3
    reading = driver.measure(Measure(request_id="r", points=[[20.0, 15.0]]))
    np.testing.assert_array_equal(reading.arrays["BEPS"][0], data[2, 3])
    axis = reading.axes["BEPS"]
    assert (axis.name, axis.unit) == ("Bias", "V")
    np.testing.assert_array_equal(axis.values, bias)
    ds = driver.dataset
    assert ds.points[i].tolist() == [20.0, 15.0] and ds.attrs["modality"] == "BEPS" and ds.attrs["scan_rate"] == 1.0
    # the caller may name the grid: (y, x) puts y first
    swapped = RecordedDataset.load(tmp_path / "beps.h5", axes=["y", "x"])
    assert swapped.axis_names == ("y", "x") and swapped.points[3 * 3 + 2].tolist() == [15.0, 20.0]
    np.testing.assert_array_equal(swapped.values["BEPS"][3 * 3 + 2], data[2, 3])


def test_pynsid_to_abduce_to_pynsid_keeps_values_units_and_axes(tmp_path, capsys, caplog):
    x, y, bias, data = pynsid_file(tmp_path / "beps.h5")
    ds = RecordedDataset.load(tmp_path / "beps.h5")
    ds.save(tmp_path / "again.nsid")
    sid, again = read_with_pynsid(tmp_path / "again.nsid", capsys, caplog)["BEPS"]
    np.testing.assert_array_equal(again, data)
    dims = [sid._axes[i] for i in range(3)]
    assert [(d.name, d.units, d.dimension_type.name) for d in dims] == [
        ("x", "nm", "SPATIAL"),
        ("y", "nm", "SPATIAL"),
        ("Bias", "V", "SPECTRAL"),
    ]
    for d, values in zip(dims, (x, y, bias)):
        np.testing.assert_array_equal(np.asarray(d), values)
    assert sid.units == "a.u."


def test_reading_nsid_needs_h5py_alone_and_writing_without_pynsid_names_the_extra(tmp_path, monkeypatch):
    spectral_map().save(tmp_path / "map.nsid")
    code = (
        "import sys; from abduce.instruments.drivers.recorded import build; "
        f"d = build('recorded:{tmp_path / 'map.nsid'}'); "
        "assert d.dataset.spectral_axes['response'].unit == 'V'; "
        "print(sorted(m for m in ('sidpy', 'pyNSID', 'dask', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # an instrument PC serves NSID without pycroscopy's packages
    for name in ("sidpy", "pyNSID", "pyNSID.io", "pyNSID.io.hdf_io"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'abduce\[nsid\]'"):
        spectral_map().save(tmp_path / "other.nsid")
    assert RecordedDataset.load(tmp_path / "map.nsid").values["response"].shape == (12, 9)
