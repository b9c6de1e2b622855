"""``Campaign.tell``'s validation, one rule at a time, on campaigns that have not fitted yet.

The rules are ``tell``'s contract (its docstring and :class:`MeasurementRejected`):
a measurement is refused, leaving the campaign unchanged, when its request id
was already told (``duplicate``) or is not the pending request's
(``unknown-request``), when the point has the wrong number of coordinates
(``wrong-dimension``), when a coordinate or the value is not a number
(``non-numeric``) or not finite (``non-finite``), and when the point is outside
the space's box or, for a candidate set, not one of the candidates
(``outside-space``). Everything here happens during the initial design
(``n_init`` measurements before the first fit), so no GP is fitted, except in
the last two tests, which need one hypothesis fitted once or twice.
"""

from __future__ import annotations

import math

import pytest

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.core.measurements import Measurement
from abduce.controller.core.space import Space
from abduce.controller.decide.stopping import Budget
from abduce.controller.errors import MeasurementRejected
from abduce.hypotheses import belief as belief_module
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN

GRID = [i / 10 for i in range(11)]  # 0.0, 0.1, ..., 1.0
SETTINGS = CampaignSettings(n_init=4, fit=FitSettings(screen=32, maxiter=30), evidence_samples=64, reference_size=64)


def line() -> Campaign:
    return Campaign(
        Space.finite(GRID), [BUILTIN["linear"]], "discriminate", None, Budget(20), seed=0, settings=SETTINGS
    )


def plane() -> Campaign:
    """A continuous box, x in [0, 1] and T in [4, 300]."""
    return Campaign(
        Space.box([(0.0, 1.0), (4.0, 300.0)]),
        [BUILTIN["linear"]],
        "discriminate",
        None,
        Budget(20),
        seed=0,
        settings=SETTINGS,
    )


def state(c: Campaign):
    return c.n, c.data, c.history, c.consecutive_failures, c.ask()


def refused(c: Campaign, m: Measurement) -> str:
    """Tell ``m``; it must be refused and change nothing. Returns the reason."""
    before = state(c)
    with pytest.raises(MeasurementRejected) as info:
        c.tell(m)
    assert info.value.request_id == m.request_id
    assert state(c) == before
    return info.value.reason


def copy_of(text: str) -> str:
    """An equal string that is not the same object (as a request id decoded from the wire is)."""
    out = "".join(list(text))
    assert out == text and out is not text
    return out


# ------------------------------------------------------------------ which request


def test_the_answer_to_the_pending_request_is_taken_by_value():
    c = line()
    r = c.ask()
    record = c.tell(Measurement(copy_of(r.request_id), r.x, 0.25))
    assert record.request_id == r.request_id and c.n == 1
    assert c.data == ([r.x], [0.25])


def test_an_id_that_is_not_the_pending_one_is_an_unknown_request():
    c = line()
    r = c.ask()
    rid = r.request_id
    others = [
        "",
        "never-issued",
        "~" * len(rid),
        "0" * len(rid),
        rid[:-1],
        rid + "0",
        chr(ord(rid[0]) - 1) + rid[1:],
        chr(ord(rid[0]) + 1) + rid[1:],
        rid[:-1] + chr(ord(rid[-1]) - 1),
        rid[:-1] + chr(ord(rid[-1]) + 1),
    ]
    for other in others:  # smaller and greater than the pending id, in every position that matters
        assert refused(c, Measurement(other, r.x, 0.5)) == "unknown-request", other
    c.tell(Measurement(rid, r.x, 0.5))
    assert c.n == 1


def test_before_any_ask_every_id_is_unknown():
    c = line()
    with pytest.raises(MeasurementRejected) as info:
        c.tell(Measurement(c.request_id(0), (0.0,), 0.5))  # the id the first request will have
    assert info.value.reason == "unknown-request" and c.n == 0
    r = c.ask()
    assert r.request_id == c.request_id(0)
    c.tell(Measurement(r.request_id, r.x, 0.5))
    assert c.n == 1


def test_a_told_request_is_a_duplicate_whatever_it_carries():
    c = line()
    r = c.ask()
    c.tell(Measurement(r.request_id, r.x, 0.5))
    for m in (
        Measurement(r.request_id, r.x, 0.5),
        Measurement(copy_of(r.request_id), r.x, 0.7),
        Measurement(r.request_id, (math.nan,), math.nan),
    ):  # duplicate comes first
        assert refused(c, m) == "duplicate"
    nxt = c.ask()
    assert nxt.request_id != r.request_id
    assert refused(c, Measurement(r.request_id, nxt.x, 0.5)) == "duplicate"  # also while another is pending
    c.tell(Measurement(nxt.request_id, nxt.x, 0.5))
    assert c.n == 2


# ------------------------------------------------------------------ which point of a batch


def test_a_batch_takes_its_points_0_to_q_minus_1_and_no_other_index():
    c = line()
    r = c.ask(q=4)
    assert r.q == 4
    for index in (4, 5, -1, 1.5, "1", None):  # past the last, before the first, not an int
        assert refused(c, Measurement(r.request_id, r.points[0], 0.5, index=index)) == "unknown-request", index
    with pytest.raises(MeasurementRejected, match=r"the request has points 0\.\.3, not 4"):
        c.tell(Measurement(r.request_id, r.points[0], 0.5, index=4))
    c.tell(Measurement(r.request_id, r.points[3], 0.5, index=3))  # the last index is a point, in any order
    assert refused(c, Measurement(r.request_id, r.points[3], 0.5, index=3)) == "duplicate"
    assert c.n == 1


def test_a_named_point_must_name_exactly_the_spaces_axes():
    c = plane()
    r = c.ask()
    x, t = r.x
    for named in ({"x1": x, "T": t}, {"x0": x}, {"x0": x, "x1": t, "T": 1.0}):
        assert refused(c, Measurement(r.request_id, named, 0.5)) == "wrong-axes", named
    c.tell(Measurement(r.request_id, {"x1": t, "x0": x}, 0.5))  # by name, in any order
    assert c.data == ([r.x], [0.5])


# ------------------------------------------------------------------ the point and the value


@pytest.mark.parametrize("x", [(), (0.5, 0.5), (0.5, 0.5, 0.5)])
def test_wrong_dimension_on_a_line(x):
    c = line()
    assert refused(c, Measurement(c.ask().request_id, x, 0.5)) == "wrong-dimension"


@pytest.mark.parametrize("x", [(0.5,), (0.5, 100.0, 1.0), ()])
def test_wrong_dimension_on_a_plane(x):
    c = plane()
    assert refused(c, Measurement(c.ask().request_id, x, 0.5)) == "wrong-dimension"


@pytest.mark.parametrize(
    "x,y",
    [((0.5,), None), ((0.5,), "abc"), ((0.5,), [1.0]), ((None,), 0.5), (("a",), 0.5), ((object(),), 0.5)],
)
def test_a_coordinate_or_value_that_is_not_a_number_is_non_numeric(x, y):
    c = line()
    assert refused(c, Measurement(c.ask().request_id, x, y)) == "non-numeric"


@pytest.mark.parametrize(
    "x,y",
    [((0.5,), math.nan), ((0.5,), math.inf), ((0.5,), -math.inf), ((math.nan,), 0.5), ((-math.inf,), 0.5)],
)
def test_nan_or_inf_is_non_finite(x, y):
    c = line()
    assert refused(c, Measurement(c.ask().request_id, x, y)) == "non-finite"


@pytest.mark.parametrize("x", [(0.5, math.nan), (math.inf, 100.0)])
def test_nan_or_inf_in_any_coordinate_is_non_finite(x):
    c = plane()
    assert refused(c, Measurement(c.ask().request_id, x, 0.5)) == "non-finite"


@pytest.mark.parametrize("x", [(1.01, 100.0), (-0.01, 100.0), (0.5, 3.9), (0.5, 300.1), (2.0, 500.0)])
def test_outside_the_box_is_outside_space(x):
    c = plane()
    assert refused(c, Measurement(c.ask().request_id, x, 0.5)) == "outside-space"


@pytest.mark.parametrize("x", [(0.0, 4.0), (1.0, 300.0), (0.0, 300.0), (0.3, 123.456)])
def test_anywhere_in_the_closed_box_is_taken(x):
    c = plane()
    c.tell(Measurement(c.ask().request_id, x, 0.5))
    assert c.data == ([x], [0.5])


@pytest.mark.parametrize("x", [(0.05,), (0.1234567,), (1.5,), (-0.1,)])
def test_off_the_candidates_is_outside_space(x):
    c = line()
    assert refused(c, Measurement(c.ask().request_id, x, 0.5)) == "outside-space"


@pytest.mark.parametrize("x", [(0.0,), (0.3,), (1.0,), (0.7 + 1e-9,)])  # within the rounding a reply may carry
def test_a_candidate_is_taken(x):
    c = line()
    c.tell(Measurement(c.ask().request_id, x, 0.5))
    assert c.n == 1 and c.data[0] == [x]


def test_after_a_refusal_the_same_request_can_still_be_answered():
    c = line()
    r = c.ask()
    for bad in (
        Measurement(r.request_id, r.x, math.nan),
        Measurement(r.request_id, (5.0,), 0.5),
        Measurement("other", r.x, 0.5),
    ):
        refused(c, bad)
    c.tell(Measurement(r.request_id, r.x, 0.5))
    assert c.n == 1


# ------------------------------------------------------------------ what a good measurement resets and records


def test_a_good_reading_ends_a_run_of_skipped_ones():
    c = line()
    c.skip(c.ask().request_id)  # a reading that was not a number
    c.skip(c.ask().request_id)
    assert c.consecutive_failures == 2
    r = c.ask()
    c.tell(Measurement(r.request_id, r.x, 0.5))
    assert c.consecutive_failures == 0


def test_a_tiny_candidate_set_is_measured_once_each_then_the_campaign_stops():
    points = [0.0, 0.5, 1.0]
    c = Campaign(
        Space.finite(points),
        [BUILTIN["linear"]],
        "discriminate",
        None,
        Budget(10),
        seed=0,
        settings=CampaignSettings(n_init=2, fit=FitSettings(screen=32, maxiter=30), evidence_samples=64),
    )
    asked = []
    while not c.done:
        r = c.ask()
        asked.append(r.x[0])
        c.tell(Measurement(r.request_id, r.x, 0.1 + r.x[0]))
    assert sorted(asked) == points  # the third request is the one candidate not yet measured


def test_a_restored_step_takes_the_journalled_fit_instead_of_fitting(monkeypatch):
    settings = CampaignSettings(n_init=2, fit=FitSettings(screen=32, maxiter=30), evidence_samples=64)

    def build():
        return Campaign(
            Space.finite(GRID), [BUILTIN["linear"]], "discriminate", None, Budget(3), seed=0, settings=settings
        )

    live, states, told = build(), [], []
    while not live.done:
        r = live.ask()
        m = Measurement(r.request_id, r.x, 0.2 + 0.5 * r.x[0])
        record = live.tell(m)
        told.append(m)
        states.append(live.fit_states(record.refit))  # what the loop journals with each decision
    assert any(states)  # there was a fit to restore

    def no_fitting(*args, **kwargs):
        raise AssertionError("a restored step must not fit")

    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", no_fitting)
    monkeypatch.setattr(belief_module, "fit_planned", no_fitting)
    replayed = build()
    for m, restore in zip(told, states):
        assert replayed.ask().request_id == m.request_id
        replayed.tell(m, restore=restore)
    assert replayed.history == live.history
