"""A campaign over two channels as every view shows it: the channel of each measurement (x its point in the
space, y that channel's reading), what the readings cost; and its journal rebuilt to the same campaign."""

from __future__ import annotations

import numpy as np
import pytest

from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.controller.views.inspection import SCHEMA_VERSION, inspect_run

COST = {"y": 1.0, "image": 0.05}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A rehearsal against the two-channel simulator into a run directory; the campaign as it ended."""
    out = tmp_path_factory.mktemp("channels") / "run"
    r = Rehearsal(
        source="simulated:two-channel",
        hypotheses=("second-order", "first-order", "linear"),
        options={"x_c": 0.4, "grid": 51, "noise_per_point": True},
        cheap_channels={"image": COST["image"]},
        cost_unit="s",
        budget=40,
        cost_budget=4.0,
        n_init=4,
        seed=2,
    )
    campaign = r.run_into(out)
    return out, campaign


def test_inspect_names_each_reading_s_channel_and_the_cost(run):
    out, campaign = run
    ins = inspect_run(out)
    assert ins.schema_version == SCHEMA_VERSION == 8
    got = [(tuple(m.x), m.channel, m.y) for m in ins.measurements]
    assert got == [(tuple(x), c, y) for x, c, y in campaign.readings()]
    assert {m.channel for m in ins.measurements} == {"y", "image"} and [a.name for a in ins.axes] == ["x"]
    st = ins.stopping
    assert st.cost == pytest.approx(sum(COST[m.channel] for m in ins.measurements)) == pytest.approx(campaign.cost)
    assert st.cost_budget == 4.0 and st.cost_unit == "s" and st.stopped


def test_the_journal_rebuilds_to_the_same_campaign_and_the_same_next_request(run):
    out, campaign = run
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        _, again = rebuild(journal, upto=campaign.n - 3)
    live_next = campaign.history[campaign.n - 3]
    asked = again.ask()
    assert asked.x == live_next.x and asked.request_id == live_next.request_id  # the channel coordinate too
    assert again.probabilities() == pytest.approx(campaign.history[campaign.n - 4].probabilities)


def test_terminal_report_web_and_export_show_the_channel(run, tmp_path):
    from rich.console import Console

    from abduce.controller.views.export import export_run
    from abduce.controller.views.report import write_report
    from abduce.controller.views.terminal import render
    from abduce.controller.views.web.status import Campaigns

    out, campaign = run
    ins = inspect_run(out)
    console = Console(record=True, width=200)
    for part in render(ins, rows=len(ins.measurements)):
        console.print(part)
    text = console.export_text()
    assert "channel" in text and "image" in text and "cost 4" in text
    page = write_report(out, tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('class="text channel">image<') == sum(m.channel == "image" for m in ins.measurements)
    assert 'class="cost">' in page
    runs = Campaigns([out])
    status = runs.status(runs.names[0])
    assert status.cost == pytest.approx(campaign.cost) and status.last.channel == ins.measurements[-1].channel
    ds = export_run(out, tmp_path / "run.nc")
    import xarray as xr

    with xr.open_dataset(ds) as nc:
        assert list(nc["channel"].values) == [m.channel for m in ins.measurements]
        assert nc["x"].shape == (len(ins.measurements), 1) and list(nc["axis"].values) == ["x"]
        assert nc["point"].shape == (51, 1) and np.isfinite(nc["posterior_mean"].values).all()


def test_nsid_keeps_the_explained_channel_s_readings_only(run, tmp_path):
    """NSID lays the readings on the grid as one value per point: the cheap channel's, in other units, stay out."""
    import h5py

    from abduce.controller.views.export import export_run

    out, campaign = run
    path = export_run(out, tmp_path / "run.nsid")
    explained = sum(c == "y" for _, c, _ in campaign.readings())
    with h5py.File(path, "r") as f:
        counts = [f[k][()] for k in _walk(f) if k.endswith("n_readings")]
    assert counts and float(sum(c.sum() for c in counts)) == explained


def _walk(group, prefix=""):
    for key, item in group.items():
        name = f"{prefix}/{key}"
        if hasattr(item, "items"):
            yield from _walk(item, name)
        else:
            yield name
