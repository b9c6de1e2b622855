"""The journal's events, typed: written and read through one model per kind, checked once at the boundary."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from abduce.controller.journal.events import (
    DecisionBody,
    ErrorBody,
    MeasurementBody,
    PlainArray,
    RequestBody,
    append,
    read,
    refused_readings,
)
from abduce.controller.journal.store import Journal, JournalError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "journals"


def test_every_event_of_a_journal_reads_as_the_model_of_its_kind(tmp_path):
    shutil.copyfile(FIXTURES / "daemon-nan-readings.sqlite", tmp_path / "j.sqlite")
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as journal:
        entries = list(read(journal))
        raw = list(journal.events())
    models = {"request": RequestBody, "measurement": MeasurementBody, "decision": DecisionBody, "error": ErrorBody}
    assert [e.seq for e in entries] == [e.seq for e in raw] and {e.kind for e in entries} == {"config", *models}
    for e in entries[1:]:
        assert isinstance(e.body, models[e.kind]), e.seq
    refused, skipped = refused_readings(entries)
    assert len(refused) == len(skipped) == 4  # the NaN readings, each skipped
    assert all(np.isnan(e.body.y) for e in entries if e.kind == "measurement" and e.request_id in refused)
    last = [e.body for e in entries if e.kind == "decision"][-1]
    record = last.step_record()
    assert record.stopped and record.probabilities == last.probabilities and record.x == last.x


def test_a_body_that_does_not_fit_its_kind_names_the_event_and_the_field(tmp_path):
    with Journal.create(tmp_path / "j.sqlite", {"mode": "test"}) as journal:
        journal.append("measurement", {"x": [0.1]}, request_id="r0")  # no y
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as journal:
        with pytest.raises(JournalError, match=r"journal event 2 \(measurement\): y: Field required"):
            list(read(journal))
        assert len(list(journal.events())) == 2  # the store itself reads it: nothing is lost


def test_models_round_trip_and_keep_fields_this_version_does_not_know(tmp_path):
    spectrum = np.linspace(0.1, 0.7, 6).reshape(2, 3)
    with Journal.create(tmp_path / "j.sqlite", {"mode": "test"}) as journal:
        append(
            journal,
            RequestBody(request_id="r0", step=0, x=(0.25,), hypothesis=None, reason="initial-design"),
            request_id="r0",
        )
        append(
            journal, MeasurementBody(x=(0.25,), y=float("inf"), arrays={"s": PlainArray.of(spectrum)}), request_id="r0"
        )
        append(journal, ErrorBody(stage="instrument", reason="timeout", message="no reply"), request_id="r1")
        journal.append(
            "error",
            {"stage": "tell", "reason": "non-finite", "message": "y=inf", "skipped": True, "from_the_future": 7},
            request_id="r0",
        )
        raw = [e.body for e in journal.events()]
    assert raw[2] == {
        "x": [0.25],
        "y": float("inf"),
        "arrays": {"s": {"dtype": "<f8", "shape": [2, 3], "data": spectrum.ravel().tolist()}},
    }
    assert raw[3] == {"stage": "instrument", "reason": "timeout", "message": "no reply"}  # unset: left out
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as journal:
        request, measurement, lost, refused = (e.body for e in list(read(journal))[1:])
    assert request.x == (0.25,) and request.hypothesis is None
    np.testing.assert_array_equal(measurement.arrays["s"].array(), spectrum)  # float64 exact through JSON
    assert measurement.arrays["s"].array().dtype == np.float64 and measurement.y == float("inf")
    assert lost.skipped is False and refused.skipped is True
    assert refused.model_extra == {"from_the_future": 7}


def test_a_decision_journals_every_field_of_the_step_record_and_its_fits():
    """The journal's schema of a step is written apart from StepRecord (it tolerates older journals); a
    field added to one and not the other would be lost on resume without this."""
    import dataclasses

    from abduce.controller.core.settings import StepRecord

    assert set(DecisionBody.model_fields) == {f.name for f in dataclasses.fields(StepRecord)} | {"fits"}
