"""The agent's own safety check, ``InstrumentAgent.check``, with no sockets: SPEC section 6, ``reject``.

The rules, from the SPEC's table of reject codes: ``wrong-dimension`` when a
point does not have exactly one coordinate per axis; ``out-of-limits`` when a
coordinate lies outside its axis's closed ``[min, max]``; ``off-grid`` when
candidates were declared and the point's largest coordinate difference to
every candidate, divided by that axis's ``max - min``, is more than 1e-6. A
request is measured only when every point passes. The expected verdicts below
are worked out from those rules and the numbers in each test, not read off the
agent.
"""

from __future__ import annotations

import pytest

from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure, Reject

TOL = 1e-6  # SPEC section 6: "at most 1e-6" of the axis span is still on the grid


class Fixed(Driver):
    """A driver that only describes itself; ``check`` never measures."""

    def __init__(self, capabilities: Capabilities) -> None:
        self._caps = capabilities

    def describe(self) -> Capabilities:
        return self._caps

    def measure(self, request: Measure) -> Reading:  # pragma: no cover - never called by check
        raise AssertionError("check must not measure")


def agent(axes, candidates=None) -> InstrumentAgent:
    caps = Capabilities(
        axes=[Axis(name=n, min=lo, max=hi) for n, lo, hi in axes], candidates=candidates, channels=[Channel(name="y")]
    )
    codec = Codec(Keyring({"k": bytes(32)}), "k")
    return InstrumentAgent(Fixed(caps), "tcp://127.0.0.1:9", codec, "limits")  # serve() is never called: no socket


def verdict(a: InstrumentAgent, *points) -> str | None:
    """The reject code for a request of these points, or None when it would be measured."""
    r = a.check(Measure(request_id="r-1", points=[list(p) for p in points]))
    if r is None:
        return None
    assert isinstance(r, Reject) and r.request_id == "r-1" and r.reason
    return r.code


# one axis, no candidates ------------------------------------------------------------------


LINE = [("x", -2.0, 3.0)]


@pytest.mark.parametrize("x", [-2.0, 3.0, 0.0, 0.5, -1.999, 2.999])
def test_inside_the_closed_interval_is_measured(x):
    assert verdict(agent(LINE), (x,)) is None


@pytest.mark.parametrize("x", [-2.0000001, 3.0000001, -5.0, 7.0, -1e300, 1e300])
def test_outside_the_interval_is_out_of_limits(x):
    assert verdict(agent(LINE), (x,)) == "out-of-limits"


@pytest.mark.parametrize("point", [(), (0.0, 0.0), (0.0, 0.0, 0.0)])
def test_a_point_with_the_wrong_number_of_coordinates_is_wrong_dimension(point):
    assert verdict(agent(LINE), point) == "wrong-dimension"


def test_every_point_of_a_request_is_checked():
    a = agent(LINE)
    assert verdict(a, (0.0,), (1.0,), (2.0,)) is None
    assert verdict(a, (0.0,), (1.0,), (9.0,)) == "out-of-limits"  # the bad one is last
    assert verdict(a, (9.0,), (0.0,)) == "out-of-limits"
    assert verdict(a, (0.0,), (0.0, 1.0)) == "wrong-dimension"


# two axes with different limits -----------------------------------------------------------------


PLANE = [("x", 0.0, 1.0), ("T", 4.0, 300.0)]


@pytest.mark.parametrize(
    "point,code",
    [
        ((0.0, 4.0), None),
        ((1.0, 300.0), None),
        ((0.5, 150.0), None),
        ((0.5, 3.9), "out-of-limits"),  # only the second axis is outside
        ((0.5, 300.5), "out-of-limits"),
        ((1.5, 150.0), "out-of-limits"),  # only the first axis is outside
        ((-0.1, 150.0), "out-of-limits"),
        ((150.0, 0.5), "out-of-limits"),  # the coordinates belong to the axes in order
        ((0.5,), "wrong-dimension"),
        ((0.5, 150.0, 1.0), "wrong-dimension"),
    ],
)
def test_each_coordinate_against_its_own_axis(point, code):
    assert verdict(agent(PLANE), point) == code


def test_the_reason_names_the_axis_and_value():
    r = agent(PLANE).check(Measure(request_id="r-1", points=[[0.5, 301.0]]))
    assert r is not None and "T" in r.reason and "301" in r.reason


# a candidate grid -------------------------------------------------------------------------------


GRID = [[0.0, 4.0], [0.25, 100.0], [1.0, 300.0]]


@pytest.mark.parametrize("point", GRID)
def test_a_declared_candidate_is_measured(point):
    assert verdict(agent(PLANE, GRID), point) is None


@pytest.mark.parametrize(
    "point,code",
    [
        ((0.25, 4.0), "off-grid"),  # each coordinate is some candidate's, but no single candidate has both
        ((0.0, 100.0), "off-grid"),
        ((0.5, 150.0), "off-grid"),
        ((2.0, 100.0), "out-of-limits"),  # the limits come before the grid
        ((0.25,), "wrong-dimension"),
    ],
)
def test_a_point_that_is_not_a_candidate(point, code):
    assert verdict(agent(PLANE, GRID), point) == code


# The tolerance, per axis, relative to that axis's span: x spans 1, T spans 296.
@pytest.mark.parametrize(
    "offset,code",
    [
        ((0.9 * TOL, 0.0), None),
        ((1.1 * TOL, 0.0), "off-grid"),
        ((0.0, 0.9 * TOL * 296), None),
        ((0.0, 1.1 * TOL * 296), "off-grid"),  # 3.3e-4 of a kelvin: more than 1e-6 of T's span
        ((0.0, 1.02 * TOL * 296), "off-grid"),  # just over: would pass if T's span were taken as 304 or 300
        ((0.0, 0.98 * TOL * 296), None),  # just under: would fail if T's span were taken as 292 or 290
        ((-0.9 * TOL, -0.9 * TOL * 296), None),  # below the candidate as well as above
        ((-1.1 * TOL, 0.0), "off-grid"),
        ((0.0, -1.1 * TOL * 296), "off-grid"),
        ((0.9 * TOL, 1.1 * TOL * 296), "off-grid"),  # the largest difference decides, not the sum or the first
        ((1.1 * TOL, 0.9 * TOL * 296), "off-grid"),
    ],
)
def test_the_grid_tolerance_is_one_millionth_of_each_axis_span(offset, code):
    candidate = GRID[1]  # (0.25, 100): inside the limits whichever way it moves
    point = (candidate[0] + offset[0], candidate[1] + offset[1])
    assert verdict(agent(PLANE, GRID), point) == code


def test_exactly_one_millionth_of_the_span_is_still_on_the_grid():
    # On an axis of span 1 from 0, 0 and 2**-20 differ by exactly 2**-20 < 1e-6 < 2**-19: exact in binary.
    a = agent([("x", 0.0, 1.0)], [[0.0], [1.0]])
    assert verdict(a, (2.0**-20,)) is None
    assert verdict(a, (2.0**-19,)) == "off-grid"
    # and exactly 1e-6 (the same double on both sides of the comparison) is "at most 1e-6"
    assert verdict(a, (1e-6,)) is None


def test_the_nearest_candidate_counts_not_the_first():
    a = agent(PLANE, GRID)
    assert verdict(a, (1.0, 300.0 - 0.5 * TOL * 296)) is None  # the last candidate, a hair below it
    assert verdict(a, (0.0, 4.0 + 0.5 * TOL * 296)) is None  # the first


def test_a_grid_on_an_axis_away_from_zero():
    # span 10 on [-5, 5]: the tolerance is 1e-5 in x, whatever the coordinates' magnitude
    a = agent([("x", -5.0, 5.0)], [[-5.0], [0.0], [5.0]])
    assert verdict(a, (5.0 - 0.5e-5,)) is None
    assert verdict(a, (5.0 - 2e-5,)) == "off-grid"
    assert verdict(a, (-5.0 + 0.5e-5,)) is None
    assert verdict(a, (0.0 + 2e-5,)) == "off-grid"


def test_without_candidates_any_point_inside_the_limits_is_measured():
    a = agent(PLANE)
    assert verdict(a, (0.123456789, 123.456789)) is None
    assert verdict(a, (0.123456789, 123.456789), (0.9, 299.0)) is None


def test_every_point_must_be_on_the_grid():
    a = agent(PLANE, GRID)
    assert verdict(a, GRID[0], GRID[2]) is None
    assert verdict(a, GRID[0], (0.5, 150.0)) == "off-grid"
    assert verdict(a, (0.5, 150.0), GRID[0]) == "off-grid"
