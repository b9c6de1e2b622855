"""``abduce export --out FILE.nsid``: a campaign on its grid, read by the real pyNSID and sidpy with no warning."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from abduce.controller.errors import ConfigError
from abduce.controller.views.export import export_run
from tests.controller.views.test_inspect import recorded_loops
from tests.instruments.test_nsid_roundtrip import read_with_pynsid

pytest.importorskip("pyNSID")


def recorded_run(tmp_path):
    """A 7-measurement campaign on a recorded 41-point grid with units (Ni in at.%, m in emu), journalled."""
    from abduce.controller.rehearse.rehearsal import Rehearsal
    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(grid=41, seed=3)
    x = sim.candidates()
    data = RecordedDataset(x, ("Ni",), {"m": sim.measure(x)}, units={"Ni": "at.%", "m": "emu"})
    path = data.save(tmp_path / "ni.h5")
    r = Rehearsal(f"recorded:{path}", ("second-order", "linear"), policy="discriminate", budget=7, n_init=4)
    run = tmp_path / "run"
    r.run_into(run)
    return run, data


def test_the_nsid_export_is_read_by_pynsid_with_its_units_and_the_netcdf_exports_values(tmp_path, capsys, caplog):
    run, data = recorded_run(tmp_path)
    out = export_run(run, tmp_path / "campaign.nsid")
    found = read_with_pynsid(out, capsys, caplog)
    with xr.open_dataset(export_run(run, tmp_path / "campaign.nc"), engine="h5netcdf") as nc:
        nc.load()
    assert set(found) == {
        "m",
        "n_readings",
        "posterior_mean_second-order",
        "posterior_sd_second-order",
        "posterior_mean_linear",
        "posterior_sd_linear",
    }
    grid = data.points[:, 0]
    for sid, _ in found.values():
        (dim,) = sid._axes.values()
        assert (dim.name, dim.units, dim.dimension_type.name) == ("Ni", "at.%", "SPATIAL")
        np.testing.assert_array_equal(np.asarray(dim), grid)
    m, measured = found["m"]
    n, count = found["n_readings"]
    assert m.units == "emu" and str(m.data_type) == "DataType.LINE_PLOT" and count.sum() == 7
    k = np.searchsorted(grid, nc.x.values[:, 0])
    np.testing.assert_array_equal(measured[k], data.values["m"][k])  # each measured point: the recorded reading
    assert np.isnan(measured[count == 0]).all() and (count[k] >= 1).all()
    for h in ("second-order", "linear"):
        sid, mean = found[f"posterior_mean_{h}"]
        assert sid.units == "emu"
        np.testing.assert_allclose(mean, nc.posterior_mean_grid.sel(hypothesis=h).values, rtol=1e-12)
    assert m.metadata["journal"] == nc.attrs["journal"] and int(m.metadata["measurements"]) == 7


def test_the_nsid_export_keeps_raw_spectra_on_the_grid(tmp_path, capsys, caplog):
    run = recorded_loops()
    found = read_with_pynsid(export_run(run, tmp_path / "loops.nsid"), capsys, caplog)
    assert "loop-area" in found  # the reduced value, named after its reduction
    sid, raw = found["raw_loop"]
    assert raw.shape == (41, 2, 32)
    assert [d.dimension_type.name for d in sid._axes.values()] == ["SPATIAL", "SPECTRAL", "SPECTRAL"]
    _, count = found["n_readings"]
    measured = np.isfinite(raw).all(axis=(1, 2))
    np.testing.assert_array_equal(measured, count > 0)  # a loop exactly where a reading was made


def test_the_nsid_export_needs_the_grid(tmp_path):
    run, _ = recorded_run(tmp_path)
    with pytest.raises(ConfigError, match="drop --no-posteriors"):
        export_run(run, tmp_path / "bare.nsid", posteriors=False)
    assert not (tmp_path / "bare.nsid").exists()
