"""``abduce report`` (one self-contained HTML page) and ``abduce export`` (NetCDF / HDF5)."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.errors import ConfigError
from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.controller.views.export import export_run
from abduce.controller.views.report import SECTIONS, write_report
from tests.controller.views.test_inspect import big_journal, recorded, recorded_loops, synthetic_journal

runner = CliRunner()
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


def test_the_report_is_one_self_contained_page_with_every_section(tmp_path):
    out, _ = recorded()
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert not EXTERNAL.search(html)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    for name in ("posteriors", "probabilities", "choices", "acquisition"):
        assert f'id="plot-{name}"' in html
    summary = json.loads((out / "summary.json").read_text())
    leader = summary["leader"]
    assert f'<tr class="leader"><td>{leader}</td>' in html
    assert "x_c = 0." in html and "±" in html
    assert html.count('<tr class="measurement">') == 10  # every measurement
    none = summary["none"]["probability"]  # "none of these", its probability and its fit failures
    assert f'<tr class="none-of-these"><td><em>none of these</em></td>\n<td>{none:.3f}</td>' in html
    assert html.count("<th>fit failures</th>") == 1
    check = next(h for h in summary["hypotheses"] if h["name"] == leader)["check"]  # its posterior predictive checks
    assert f"(loo {check['loo_rms']:.2f}, residual {check['residual_sd']:.2f})" in html and "<th>checks</th>" in html
    config = html.split('<section id="config">')[1]
    assert "&#34;policy&#34;: &#34;epsilon-greedy&#34;" in config  # the config event, pretty-printed JSON


def test_a_report_at_a_step_and_of_a_journal_that_cannot_be_rebuilt(tmp_path):
    out, _ = recorded()
    html = write_report(out, tmp_path / "at3.html", step=3).read_text()
    assert "as it stood after 3 measurements" in html
    assert "acquisition: not drawn (no acquisition during the initial design" in html
    html = write_report(synthetic_journal(tmp_path / "j.sqlite", 8), tmp_path / "synthetic.html").read_text()
    assert "posteriors: not drawn (the campaign could not be rebuilt" in html
    assert all(f'<section id="{s}">' in html for s in SECTIONS)


def test_export_reads_back_as_the_journal_holds_it(tmp_path):
    out, _ = recorded()
    result = runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "run.nc")])
    assert result.exit_code == 0, result.output
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        measurements = list(journal.events("measurement"))
        decisions = [e.body for e in journal.events("decision")]
        _, campaign = rebuild(journal)
    with xr.open_dataset(tmp_path / "run.nc", engine="h5netcdf") as ds:
        ds.load()
    assert ds.sizes["measurement"] == 10 and list(ds.hypothesis.values) == ["second-order", "linear"]
    np.testing.assert_array_equal(ds.x.values, [m.body["x"] for m in measurements])
    np.testing.assert_array_equal(ds.y.values, [m.body["y"] for m in measurements])
    assert list(ds.request_id.values) == [m.request_id for m in measurements]
    assert list(ds.chosen_by.values) == [d["hypothesis"] or "" for d in decisions]
    np.testing.assert_array_equal(ds.reward.values, [np.nan if d["reward"] is None else d["reward"] for d in decisions])
    for j, name in enumerate(ds.hypothesis.values):
        np.testing.assert_array_equal(
            ds.probability.values[:, j], [d["probabilities"].get(name, np.nan) for d in decisions]
        )
        np.testing.assert_array_equal(ds.posterior_mean.values[j], campaign.posterior_mean(name))
        assert np.all(ds.posterior_sd.values[j] >= 0)
        for p, (mean, sd) in decisions[-1]["parameters"][name].items():
            assert ds.parameter_mean.sel(hypothesis=name, parameter=p).values[-1] == mean
            assert ds.parameter_sd.sel(hypothesis=name, parameter=p).values[-1] == sd
    np.testing.assert_array_equal(ds.point.values, campaign.points())
    assert json.loads(ds.attrs["config"])["policy"] == "epsilon-greedy" and ds.attrs["measurements"] == 10
    assert list(ds.axis.values) == ["x"]


def test_export_to_hdf5_of_a_spectroscopic_run_keeps_the_raw_arrays(tmp_path):
    import h5py

    run = recorded_loops()
    path = export_run(run, tmp_path / "loops.h5", step=5)
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        raw = [np.asarray(e.body["arrays"]["loop"]["data"]).reshape(2, 32) for e in journal.events("measurement")]
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds.load()
    assert ds.raw_loop.dims == ("measurement", "loop_0", "loop_1")
    np.testing.assert_array_equal(ds.raw_loop.values, raw[:5])
    assert ds.sizes["measurement"] == 5 and ds.attrs["step"] == 5
    assert list(ds.axis.values) == ["composition"]
    with h5py.File(path, "r") as f:  # plain HDF5 too
        assert f["raw_loop"].shape == (5, 2, 32)


def test_export_refuses_an_existing_file_and_an_unknown_format(tmp_path):
    out, _ = recorded()
    (tmp_path / "taken.nc").write_text("keep")
    with pytest.raises(ConfigError, match="already exists"):
        export_run(out, tmp_path / "taken.nc")
    assert (tmp_path / "taken.nc").read_text() == "keep"
    result = runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "run.csv")])
    assert result.exit_code == 2 and ".nc" in result.output


def test_report_and_export_of_ten_thousand_measurements(tmp_path):
    big, _ = big_journal()
    t = time.perf_counter()
    html = write_report(big, tmp_path / "big.html").read_text()
    report_s = time.perf_counter() - t
    assert html.count('<tr class="measurement">') == 10_000 and "could not be rebuilt" in html
    t = time.perf_counter()
    export_run(big, tmp_path / "big.nc", posteriors=False)
    export_s = time.perf_counter() - t
    with xr.open_dataset(tmp_path / "big.nc", engine="h5netcdf") as ds:
        assert ds.sizes["measurement"] == 10_000 and "posterior_mean" not in ds
    print(
        f"\n10^4 journal: report {report_s:.1f} s, export (no posteriors) {export_s:.1f} s"
    )  # timed in tests/benchmarks/large_journal.py


def test_the_export_is_cf_netcdf_with_units_and_a_grid_sel_works(tmp_path):
    """Issue 16, item 3 (the export): opened with CF decoding, every numeric variable has units (the
    instrument's own for its axes and channel), the journal is named by its absolute path, and on a grid the
    posteriors have one dimension per axis, so .sel by an axis value works."""
    import xarray as xr

    from abduce.controller.rehearse.rehearsal import Rehearsal
    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(grid=41, seed=3)
    x = sim.candidates()
    data = RecordedDataset(x, ("Ni",), {"m": sim.measure(x)}, units={"Ni": "at.%", "m": "emu"})
    path = data.save(tmp_path / "ni.nc")
    r = Rehearsal(f"recorded:{path}", ("second-order", "linear"), policy="discriminate", budget=7, n_init=4)
    run = tmp_path / "run"
    r.run_into(run)
    out = export_run(run, tmp_path / "ni-export.nc")
    with xr.open_dataset(out, engine="h5netcdf", decode_cf=True) as ds:
        ds.load()
    assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["journal"] == str((run / "journal.sqlite").resolve())
    numeric = [v for v in ds.variables if np.issubdtype(ds[v].dtype, np.number)]
    assert numeric and all("units" in ds[v].attrs and ds[v].attrs.get("long_name") for v in numeric)
    assert ds.x_Ni.attrs["units"] == ds.Ni.attrs["units"] == "at.%" and ds.y.attrs["units"] == "emu"
    assert ds.posterior_mean_grid.dims == ("hypothesis", "Ni")
    at = ds.posterior_mean_grid.sel(Ni=0.5, method="nearest").sel(hypothesis="second-order")
    k = int(np.argmin(np.abs(ds.point.values[:, 0] - 0.5)))
    assert float(at) == float(ds.posterior_mean.sel(hypothesis="second-order").values[k])
