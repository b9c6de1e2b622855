"""Journals written before the journal's events were typed (issue 14) keep resuming and inspecting as they did.

The fixtures were written by ``ddb13dd``'s code: ``in-process.sqlite`` by ``abduce run`` (9 measurements),
``daemon-nan-readings.sqlite`` by ``abduce daemon`` against ``abduce instrument serve --faults nan=0.3``
(14 measurements and 4 NaN readings the campaign refused and skipped). Beside each, ``*.inspect.json`` is
what ``abduce inspect --json`` printed then (its ``run`` path replaced by ``RUN``); regenerate it only with the
code that wrote the journal.
"""

import json
import shutil
from pathlib import Path

import pytest

from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import snapshot
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.spec import spec_of
from abduce.controller.views.inspection import inspect_journal

FIXTURES = Path(__file__).parents[2] / "fixtures" / "journals"
OLD = {"in-process.sqlite": (9, 0), "daemon-nan-readings.sqlite": (14, 4)}


def opened(tmp_path: Path, name: str) -> Journal:
    copy = tmp_path / name  # a copy: opening may leave -shm/-wal files beside it
    shutil.copyfile(FIXTURES / name, copy)
    return Journal.open(copy, readonly=True)


def inspected(journal: Journal) -> dict:
    got = json.loads(inspect_journal(journal).model_dump_json())
    got["run"] = "RUN"
    return got


@pytest.mark.parametrize("name", sorted(OLD))
def test_an_old_journal_inspects_as_it_did(tmp_path, name):
    expected = json.loads((FIXTURES / name).with_suffix(".inspect.json").read_text())
    # what the inspection gained since, and what it says of a journal that predates it (schema 4,
    # protocol 1.1: the instrument's state as operator commands left it; none in these journals.
    # Schema 5: the axes and the explained value with their units; these instruments declared none.
    # Schema 6: the proposals abduction made; none before it. Schema 7: what was transferred; nothing before it.
    # Schema 8: each reading's channel and the cost, over several channels; one channel and no costs before it)
    assert expected["schema_version"] == 3
    expected["schema_version"], expected["stopping"]["instrument_state"] = 8, None
    expected["proposals"], expected["transfer"] = [], None
    expected["stopping"].update(cost=None, cost_budget=None, cost_unit="")
    for row in expected["measurements"]:
        row["channel"] = None
    expected["axes"] = [{"name": "x", "unit": "", "label": "x"}]
    expected["explained"] = {"name": "y", "unit": "", "label": "y"}
    with opened(tmp_path, name) as journal:
        assert inspected(journal) == expected


@pytest.mark.parametrize("name", sorted(OLD))
def test_an_old_journal_resumes_where_it_stopped(tmp_path, name):
    measured, refused = OLD[name]
    with opened(tmp_path, name) as journal:
        events = list(journal.events())
        assert sum(e.kind == "error" for e in events) == refused
        last = [e.body for e in events if e.kind == "decision"][-1]
        resumed = retell(spec_of(journal.config()).campaign(), journal)
        assert resumed.campaign.n == measured and resumed.in_flight == () and resumed.undecided == ()
        assert resumed.campaign.done
        probabilities = resumed.campaign.probabilities()
        assert probabilities.keys() == last["probabilities"].keys()
        for name_, p in last["probabilities"].items():
            assert probabilities[name_] == pytest.approx(p, abs=1e-3), name_  # fits restored, evidence recomputed
        _, looked = snapshot(journal, events=list(read(journal)))
        assert looked.n == measured


def test_a_request_that_timed_out_and_was_aborted_later_replays_in_a_snapshot_and_a_retell(tmp_path):
    """An instrument error that left the request in flight (a timeout), then the same request re-sent and
    aborted by the operator: only the aborted event skips the point (the snapshot used to count both)."""
    from abduce.controller.journal.events import Entry, ErrorBody

    with opened(tmp_path, "in-process.sqlite") as journal:
        events = list(read(journal))
        last = max(i for i, e in enumerate(events) if e.kind == "measurement")
        rid = events[last].request_id
        request = next(e for e in events if e.kind == "request" and e.request_id == rid)

        def error(seq: int, reason: str, skipped: bool) -> Entry:
            return Entry(
                seq,
                0.0,
                "error",
                rid,
                None,
                ErrorBody(stage="instrument", reason=reason, message="", skipped=skipped),
                None,
            )

        tail = [error(10**6, "timeout", False), request, error(10**6 + 1, "aborted", True)]
        _, snap = snapshot(journal, events=events[:last] + tail)
        assert snap.n == OLD["in-process.sqlite"][0] - 1  # the aborted request measured nothing
        assert snap.space.index_of(request.body.x) in snap._failed_idx  # and its point is never asked again


def test_a_two_channel_journal_from_before_the_links_curve_resumes_inspects_and_rebuilds(tmp_path):
    """``two-channel-before-curve.sqlite``: a rehearsal against the two-channel simulator written by 84bd9cf's
    code, whose link had no curve (9 readings, cost 4.25 s of 4, stopped). Its journalled fits lack the curve's
    keys; they load at its default, 0, which is the link they were fitted as (raw ``RuntimeError: Missing
    key(s) in state_dict`` before)."""
    from abduce.controller.journal.rebuild import rebuild

    name = "two-channel-before-curve.sqlite"
    with opened(tmp_path, name) as journal:
        events = list(journal.events())
        last = [e.body for e in events if e.kind == "decision"][-1]
        resumed = retell(spec_of(journal.config()).campaign(), journal)
        assert resumed.campaign.n == 9 and resumed.campaign.done
        assert resumed.campaign.cost == pytest.approx(4.25)
        probabilities = resumed.campaign.probabilities()
        for law, p in last["probabilities"].items():
            assert probabilities[law] == pytest.approx(p, abs=1e-3), law  # fits restored, evidence recomputed
        _, looked = snapshot(journal, events=list(read(journal)))
        assert looked.n == 9
        _, again = rebuild(journal, upto=6)
        x = again.ask().x
        assert x[-1] in (0.0, 1.0)  # a point and a channel
        slot = again.belief.slot("second-order")
        assert float(slot.fit.model(*again._data_tensors()[:2]).physics.value("curve_1_0")) == 0.0
        assert inspected(journal)["stopping"]["cost"] == pytest.approx(4.25)
