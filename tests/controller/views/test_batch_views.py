"""Views of a batch run (``q = 4``): each point of a request keeps its own spectrum, and a refused reading
its own point and value, matched by ``(request_id, index)`` as inspect and export match them."""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import numpy as np

from abduce.controller.journal.events import read, refused_points
from abduce.controller.journal.store import Journal
from abduce.controller.views.inspection import inspect_journal
from abduce.controller.views.report import refused_rows, write_report
from abduce.controller.views.spectra import spectra_of
from tests.controller.views.test_inspect import _scratch

Q = 4
REFUSED = 2  # the point of the first acquired batch whose reading is NaN


@functools.cache
def batch_run():
    """A discriminate rehearsal of simulated hysteresis loops (reduced to their area) asking 4 points a request;
    the instrument reads NaN at point ``REFUSED`` of the first request after the initial design."""
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.rehearsal import Rehearsal

    r = Rehearsal(
        "simulated:loops",
        ("second-order", "linear"),
        {"grid": 41, "m": 32},
        policy="discriminate",
        budget=12,
        seed=1,
        n_init=4,
        reduction="loop-area",
        q=Q,
    )
    out = _scratch("abduce-batch-views-") / "run"
    rundir = RunDirectory(out, {"mode": "rehearsal", **r.model_dump(mode="json")})
    campaign, instrument = r.build()
    corrupted: list[str] = []

    def flaky(request):
        readings = instrument(request)
        if request.reason != "initial-design" and not corrupted and request.q == Q:
            corrupted.append(request.request_id)
            readings[REFUSED] = dataclasses.replace(readings[REFUSED], y=math.nan)
        return readings

    try:
        run_campaign(campaign, flaky, [rundir], journal=rundir.journal)
        rundir.finish(campaign)
    except BaseException:
        rundir.close()
        raise
    return out, corrupted[0]


def test_each_point_of_a_batch_keeps_its_own_spectrum():
    run, _ = batch_run()
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        ins = inspect_journal(journal, events=events)
        spectra = spectra_of(journal, ins, events)
    refused = refused_points(events)[0]
    told = [e for e in events if e.kind == "measurement" and (e.request_id, e.body.index) not in refused]
    assert max(e.body.index for e in told) == Q - 1 and len(told) == len(ins.measurements) == len(spectra) == 12
    for s, e, row in zip(spectra, told, ins.measurements):
        assert s.step == row.step and s.x == tuple(e.body.x) == tuple(row.x) and s.y == e.body.y == row.y
        ((name, array),) = s.arrays.items()
        np.testing.assert_array_equal(array, e.body.arrays[name].array())
    first = [s for s, e in zip(spectra, told) if e.request_id == told[0].request_id]
    assert len(first) == Q and len({s.x for s in first}) == Q  # one request, four points, four spectra


def test_a_refused_reading_in_a_batch_is_reported_at_its_own_point(tmp_path):
    run, rid = batch_run()
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        ins = inspect_journal(journal, events=events)
    request = next(e.body for e in events if e.kind == "request" and e.request_id == rid)
    (error,) = [e for e in events if e.kind == "error"]
    assert (error.request_id, error.body.index, error.body.reason, error.body.skipped) == (
        rid,
        REFUSED,
        "non-finite",
        True,
    )
    (row,) = refused_rows(ins, events)
    assert row["step"] == request.step + REFUSED
    assert row["x"] == list(request.points[REFUSED]) != list(request.points[-1])  # not the batch's last point
    assert row["y"] == "nan"
    html = write_report(run, tmp_path / "report.html").read_text()
    section = html.split('<section id="refused">')[1].split("</section>")[0]
    (cells,) = [
        re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        for r in re.findall(r'<tr class="refused">(.*?)</tr>', section, re.S)
    ]
    assert cells[:3] == [
        str(request.step + REFUSED),
        ", ".join(str(round(v, 6)) for v in request.points[REFUSED]),
        "nan",
    ]
