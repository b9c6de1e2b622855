"""Issue 16, item 3 (named axes and units, end to end) and three papercuts of item 7 (one step numbering, refused
readings in the report, a choices plot that shows each policy's own criterion).

The units come from where the instrument declared them -- a recorded data set's file, a simulator, the
capabilities journalled by a run over the protocol -- and must reach the rebuilt campaign's space, ``inspect``
(terminal and JSON), every plot, the report and the web status.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.core.quantity import Quantity
from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import snapshot
from abduce.controller.journal.store import Journal
from abduce.controller.views.criterion import Criterion, criterion_trace
from abduce.controller.views.export import export_run
from abduce.controller.views.figures import choices_figure
from abduce.controller.views.inspection import Inspection, inspect_journal, inspect_run
from abduce.controller.views.labels import labels_of
from abduce.controller.views.plots import build_plots
from abduce.controller.views.report import write_report
from abduce.controller.views.terminal import render
from abduce.controller.views.web import Campaigns
from tests.controller.views.test_inspect import _scratch, recorded

runner = CliRunner()


@functools.cache
def recorded_with_units():
    """A discriminate rehearsal of a recorded 1D data set whose file names its units (Ni in at.%, m in emu),
    journalled; and the live acquisition value of each step's point (taken after tell N, before ask N+1)."""
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.rehearsal import Rehearsal
    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    folder = _scratch("abduce-units-")
    sim = Transition1D(grid=41, seed=3)
    x = sim.candidates()
    path = RecordedDataset(x, ("Ni",), {"m": sim.measure(x)}, units={"Ni": "at.%", "m": "emu"}).save(folder / "ni.nc")
    r = Rehearsal(f"recorded:{path}", ("second-order", "linear"), policy="discriminate", budget=9, n_init=4, seed=2)
    run = folder / "run"
    rundir = RunDirectory(run, {"mode": "rehearsal", **r.model_dump(mode="json")})
    campaign, instrument = r.build()
    live: dict[int, float] = {}

    def capture(record):  # the acquisition the next ask scores, at the point it will ask for
        if 4 <= campaign.n < 9:
            scores, _ = campaign.acquisition_scores()
            live[campaign.n] = float(np.nanmax(scores))

    try:
        run_campaign(campaign, instrument, [rundir, capture], journal=rundir.journal)
    finally:
        rundir.close()
    return run, live


# --------------------------------------------------------------------------- units end to end


def test_a_recorded_files_units_reach_the_space_inspect_every_plot_and_the_report(tmp_path):
    run, _ = recorded_with_units()
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        _, campaign = snapshot(journal)  # rebuilt from the journal: the units survived it
        plots = build_plots(journal)
    assert campaign.space.axes == (Quantity("Ni", "at.%"),)
    assert campaign.space.explained == Quantity("m", "emu")

    ins = inspect_run(run)
    assert [(a.name, a.unit, a.label) for a in ins.axes] == [("Ni", "at.%", "Ni (at.%)")]
    assert (ins.explained.name, ins.explained.unit, ins.explained.label) == ("m", "emu", "m (emu)")
    result = runner.invoke(app, ["inspect", str(run), "--json"])
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 8 and doc["axes"][0]["unit"] == "at.%" and doc["explained"]["unit"] == "emu"
    Inspection.model_validate(doc)
    _, table, _ = render(ins)
    assert [c.header for c in table.columns][:3] == ["step", "Ni (at.%)", "m (emu)"]

    for ax in plots.figures["posteriors"].axes:
        if ax.get_visible():
            assert (ax.get_xlabel(), ax.get_ylabel()) == ("Ni (at.%)", "m (emu)")
    assert plots.figures["acquisition"].axes[0].get_xlabel() == "Ni (at.%)"

    html = write_report(run, tmp_path / "report.html").read_text()
    assert '<td class="axes">Ni (at.%)</td>' in html and '<td class="explained">m (emu)</td>' in html
    assert "<th>Ni (at.%)</th><th>m (emu)</th>" in html  # the measurements table's columns


def test_the_built_in_simulators_declare_their_units():
    from abduce.instruments.drivers.sources import build_driver

    declared = {}
    for name, options in (
        ("transition-1d", {"grid": 5}),
        ("phase-2d", {"grid": 3}),
        ("spm-image", {"grid": 4}),
        ("loops", {"grid": 5, "m": 8}),
    ):
        caps = build_driver(f"simulated:{name}", options).describe()
        declared[name] = ([(a.name, a.unit) for a in caps.axes], [(c.name, c.unit) for c in caps.channels])
    assert declared == {
        "transition-1d": ([("x", "")], [("y", "")]),  # a composition fraction, a normalised order parameter
        "phase-2d": ([("composition", ""), ("temperature", "K")], [("y", "")]),
        "spm-image": ([("x", "nm"), ("y", "nm")], [("y", "pm")]),
        "loops": ([("composition", "")], [("loop", "")]),  # [bias; response]: no one unit
    }


def test_a_simulators_units_are_options_and_must_be_one_per_axis():
    from abduce.controller.errors import ConfigError
    from abduce.instruments.drivers.sources import build_driver
    from abduce.simulators.phase2d import Phase2D

    caps = build_driver("simulated:spm-image", {"grid": 4, "pixel_size": 39.0625, "axis_units": ("um", "um")})
    assert [a.unit for a in caps.describe().axes] == ["um", "um"]
    with pytest.raises(ConfigError, match="one unit per axis"):
        Phase2D(grid=3, axis_units=("K",))


def test_a_protocol_runs_journalled_capabilities_label_its_inspection(tmp_path):
    """A run over the protocol (listen, daemon) journals what the instrument declared: the units come from there."""
    caps = {
        "axes": [
            {"name": "T", "unit": "K", "min": 100.0, "max": 400.0},
            {"name": "B", "unit": "T", "min": 0, "max": 9},
        ],
        "channels": [{"name": "R", "unit": "Ohm"}, {"name": "spectrum", "unit": "counts", "shape": [16]}],
    }
    common = {"hypotheses": ["linear"], "policy": "discriminate", "budget": 5, "seed": 0, "n_init": 3}
    for config in (
        {"mode": "listen", **common, "capabilities": caps},
        {"mode": "daemon", "campaign": common, "capabilities": caps},
    ):
        with Journal.create(tmp_path / f"{config['mode']}.sqlite", config) as j:
            j.append(
                "request",
                {"request_id": "r0", "step": 0, "x": [200.0, 1.0], "hypothesis": None, "reason": "initial-design"},
                request_id="r0",
            )
            j.append("measurement", {"x": [200.0, 1.0], "y": 3.5}, request_id="r0")
        ins = inspect_run(tmp_path / f"{config['mode']}.sqlite")
        assert [a.label for a in ins.axes] == ["T (K)", "B (T)"] and ins.explained.label == "R (Ohm)"
    # a reduction of an array channel: named after the reduction, in the channel's unit where it keeps it
    reduced = labels_of({"mode": "listen", **common, "reduction": "max", "channel": "spectrum", "capabilities": caps})
    assert reduced.explained == Quantity("max", "counts")
    area = labels_of(
        {"mode": "listen", **common, "reduction": "loop-area", "channel": "spectrum", "capabilities": caps}
    )
    assert area.explained == Quantity("loop-area", "")


def test_an_instrument_that_cannot_be_described_keeps_its_names_without_units(tmp_path):
    config = {"mode": "rehearsal", "source": f"recorded:{tmp_path / 'gone.nc'}", "hypotheses": ["linear"], "budget": 5}
    labels = labels_of(config, d=2)
    assert not labels.declared and labels.axes == (Quantity("x0"), Quantity("x1")) and labels.explained == Quantity("y")


def test_the_web_status_names_the_axes_and_the_value(tmp_path):
    from starlette.testclient import TestClient

    from abduce.controller.views.web import create_app

    run, _ = recorded_with_units()
    campaigns = Campaigns([run])
    status = campaigns.status("run")
    assert status.axes == ["Ni (at.%)"] and status.y_label == "m (emu)" and status.schema_version == 7
    card = TestClient(create_app(campaigns, None), base_url="http://127.0.0.1").get("/runs/run/card").text
    last = status.last
    assert f"Ni (at.%) = {round(last.x[0], 6)}, m (emu) = {last.y:.5g}</td>" in card


# --------------------------------------------------------------------------- one step numbering


def test_plots_inspect_and_export_count_the_same_steps_from_0(tmp_path):
    out, _ = recorded()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        requests = {e.request_id: e.body["step"] for e in journal.events("request")}
        plots = build_plots(journal)
    ins = plots.inspection
    steps = [m.step for m in ins.measurements]
    assert steps == [requests[m.request_id] for m in ins.measurements] == list(range(10))  # the journal's own
    (prob,) = plots.figures["probabilities"].axes
    assert list(prob.lines[0].get_xdata()) == steps
    top, bottom = plots.figures["choices"].axes
    assert sorted(x for c in top.collections for x, _ in c.get_offsets()) == steps
    assert bottom.get_xlabel() == prob.get_xlabel() == "step"
    with xr.open_dataset(export_run(out, tmp_path / "run.nc", posteriors=False), engine="h5netcdf") as ds:
        assert ds.measurement.values.tolist() == steps
    result = runner.invoke(app, ["inspect", str(out), "--json"])
    assert [m["step"] for m in json.loads(result.stdout)["measurements"]] == steps


# --------------------------------------------------------------------------- refused readings in the report


def test_the_report_lists_the_refused_readings_inspect_lists(tmp_path):
    out, _ = recorded(nan_at=5)
    ins = inspect_run(out)
    (refused,) = ins.stopping.errors
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        step = next(e.body["step"] for e in journal.events("request") if e.request_id == refused.request_id)
        x = next(e.body["x"] for e in journal.events("measurement") if e.request_id == refused.request_id)
    html = write_report(out, tmp_path / "report.html").read_text()
    section = html.split('<section id="refused">')[1].split("</section>")[0]
    rows = re.findall(r'<tr class="refused">(.*?)</tr>', section, re.S)
    assert len(rows) == 1
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)
    assert cells[:6] == [str(step), ", ".join(str(round(v, 6)) for v in x), "nan", "tell", "non-finite", "yes"]
    clean, _ = recorded()
    html = write_report(clean, tmp_path / "clean.html").read_text()
    assert "none: every reading was told to the campaign" in html.split('<section id="refused">')[1]


# --------------------------------------------------------------------------- each policy's own criterion


def test_for_discriminate_the_choices_plot_shows_the_acquisition_value_it_maximised():
    run, live = recorded_with_units()
    assert sorted(live) == [4, 5, 6, 7, 8]
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        ins = inspect_journal(journal, events=events)
        criterion = criterion_trace(journal, ins, events)
        plots = build_plots(journal)
    assert criterion.acquisition == "discriminate"  # the acquisition the policy uses by default
    assert sorted(criterion.values) == sorted(live)
    for step, value in live.items():  # the live campaign scored this at the point it then asked for
        assert criterion.values[step] == pytest.approx(value, rel=1e-6)
    (ax,) = plots.figures["choices"].axes
    line = ax.lines[0]
    assert list(line.get_xdata()) == sorted(live) and ax.get_xlabel() == "step"
    np.testing.assert_allclose(line.get_ydata(), [live[s] for s in sorted(live)], rtol=1e-6)
    assert ax.get_ylabel() == "discriminate score" and ax.get_title().startswith("discriminate: ")
    assert "choices-acquisition" not in plots.skipped


def _as_written_before_scores(events):
    """The journal's events as abduce wrote them before decisions held the acquisition's ``score``."""
    return [
        dataclasses.replace(e, body=e.body.model_copy(update={"score": None})) if e.kind == "decision" else e
        for e in events
    ]


def test_a_bandit_keeps_its_chooser_and_reward_and_an_old_journals_trace_is_capped():
    out, _ = recorded()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        ins = inspect_journal(journal)
    fig = choices_figure(ins, Criterion("discrimination", {4: 1.0}))  # a bandit: who chose, not the trace
    top, _ = fig.axes
    assert "who chose each measurement" in top.get_title()
    run, _ = recorded_with_units()
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = _as_written_before_scores(list(read(journal)))  # no score journalled: re-scored on snapshots
        capped = criterion_trace(journal, inspect_journal(journal, events=events), events, most=2)
        strided = criterion_trace(journal, inspect_journal(journal, events=events), events, most=3)
    assert sorted(capped.values) == [4, 8]  # every 4th step after the design (4 = 2^k), and the last
    assert sorted(strided.values) == [4, 6, 8]  # every 2nd
    assert not math.isnan(capped.values[8]) and capped.values[6 - 2] == strided.values[4]


def test_the_choices_plot_reads_the_journalled_acquisition_values_every_step_and_as_rescored_before():
    run, live = recorded_with_units()
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        ins = inspect_journal(journal, events=events)
        journalled = {e.body.step: e.body.score for e in events if e.kind == "decision"}
        recorded_trace = criterion_trace(journal, ins, events, most=2)  # nothing to re-score: no cap
        old = _as_written_before_scores(events)
        rescored = criterion_trace(journal, inspect_journal(journal, events=old), old)
    assert [s for s, v in sorted(journalled.items()) if v is not None] == [4, 5, 6, 7, 8]  # none for the design
    assert recorded_trace.acquisition == rescored.acquisition == "discriminate"
    assert recorded_trace.values == {s: journalled[s] for s in range(4, 9)}
    for step, value in live.items():  # what ask maximised, as the snapshot re-scores it and as the live campaign
        assert recorded_trace.values[step] == pytest.approx(rescored.values[step], rel=1e-9)
        assert recorded_trace.values[step] == pytest.approx(value, rel=1e-9)


def test_a_file_pynsid_writes_is_served_by_recorded_with_its_units_on_the_plots(tmp_path):
    """Issue 16, what must hold: a spectral image written by pyNSID (x, y in nm; a bias axis in V; the response in
    a.u.), reduced by ``max``, rehearsed and journalled: its plots and inspection carry the file's units."""
    from abduce.controller.rehearse.rehearsal import Rehearsal
    from tests.instruments.test_nsid_roundtrip import pynsid_file

    pynsid_file(tmp_path / "beps.h5")
    r = Rehearsal(
        f"recorded:{tmp_path / 'beps.h5'}",
        ("first-order", "constant"),
        policy="discriminate",
        budget=6,
        n_init=4,
        seed=0,
        reduction="max",
    )
    run = tmp_path / "run"
    r.run_into(run)
    ins = inspect_run(run)
    assert [a.label for a in ins.axes] == ["x (nm)", "y (nm)"] and ins.explained.label == "max (a.u.)"
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        plots = build_plots(journal)
    maps = [ax for ax in plots.figures["posteriors"].axes if ax.get_label() != "<colorbar>"]
    assert maps and all((ax.get_xlabel(), ax.get_ylabel()) == ("x (nm)", "y (nm)") for ax in maps)
    bars = [ax.get_ylabel() for ax in plots.figures["posteriors"].axes if ax.get_label() == "<colorbar>"]
    assert bars and all(b.startswith("max (a.u.), posterior ") for b in bars)
    (acq, *_) = plots.figures["acquisition"].axes
    assert (acq.get_xlabel(), acq.get_ylabel()) == ("x (nm)", "y (nm)")
