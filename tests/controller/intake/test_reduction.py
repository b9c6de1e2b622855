import math

import numpy as np
import pytest

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.intake.reduction import REDUCTIONS, apply_reduction, resolve_reduction


def parallelogram(vm=2.0, vc=0.5, slope=1.0, k=9):
    """Linear branches P = slope (V -/+ vc) on [-vm, vm], closed by vertical edges at the tips.

    Area 4 slope vc vm, coercive field vc, remanence slope vc.
    """
    up = np.linspace(-vm, vm, k)
    down = up[::-1]
    return np.array([np.r_[up, down], np.r_[slope * (up - vc), slope * (down + vc)]])


def user_reduction(spectrum):
    return float(spectrum[1].sum())


def test_loop_reductions_on_a_parallelogram():
    loop = parallelogram(vm=2.0, vc=0.5, slope=1.5)
    assert REDUCTIONS["loop-area"](loop) == pytest.approx(4 * 1.5 * 0.5 * 2.0)
    assert REDUCTIONS["coercive-field"](loop) == pytest.approx(0.5)
    assert REDUCTIONS["remanence"](loop) == pytest.approx(1.5 * 0.5)


def test_loop_reductions_do_not_depend_on_where_the_cycle_starts_or_its_sense_of_travel():
    loop = parallelogram(vm=3.0, vc=1.0, slope=0.5, k=13)
    for shift in (0, 3, 13, 20):
        rolled = np.roll(loop, shift, axis=1)
        assert REDUCTIONS["loop-area"](rolled) == pytest.approx(6.0)
        assert REDUCTIONS["coercive-field"](rolled) == pytest.approx(1.0)
        assert REDUCTIONS["remanence"](rolled) == pytest.approx(0.5)
    assert REDUCTIONS["loop-area"](loop[:, ::-1]) == pytest.approx(6.0)  # clockwise: still positive


def test_an_inverted_loop_has_negative_remanence_and_no_hysteresis_gives_zero():
    loop = parallelogram()
    inverted = loop * [[1.0], [-1.0]]
    assert REDUCTIONS["remanence"](inverted) == pytest.approx(-0.5)
    line = parallelogram(vc=0.0)
    assert REDUCTIONS["loop-area"](line) == pytest.approx(0.0, abs=1e-12)
    assert REDUCTIONS["coercive-field"](line) == pytest.approx(0.0, abs=1e-12)
    assert REDUCTIONS["remanence"](line) == pytest.approx(0.0, abs=1e-12)


def test_a_branch_that_never_crosses_zero_has_no_coercive_field():
    loop = parallelogram()
    loop[1] += 100.0
    assert math.isnan(REDUCTIONS["coercive-field"](loop))
    assert REDUCTIONS["remanence"](loop) == pytest.approx(0.5)


def test_square_loop_area():
    square = np.array([[-1.0, 1.0, 1.0, -1.0], [-2.0, -2.0, 2.0, 2.0]])
    assert REDUCTIONS["loop-area"](square) == pytest.approx(8.0)


def test_mean_and_max():
    s = np.array([[1.0, 2.0], [3.0, 6.0]])
    assert REDUCTIONS["mean"](s) == 3.0 and REDUCTIONS["max"](s) == 6.0
    assert REDUCTIONS["mean"](np.array([0.5, 1.5, 4.0])) == 2.0


def test_a_loop_reduction_refuses_a_non_loop():
    with pytest.raises(ConfigError, match=r"2 x m .*shape \(3, 5\)"):
        REDUCTIONS["remanence"](np.zeros((3, 5)))


def test_resolve_names_and_dotted_paths():
    assert resolve_reduction("loop-area") is REDUCTIONS["loop-area"]
    f = resolve_reduction("tests.controller.intake.test_reduction:user_reduction")
    assert f(parallelogram(vc=0.0)) == pytest.approx(0.0)
    assert resolve_reduction("tests.controller.intake.test_reduction.user_reduction") is f
    assert set(REDUCTIONS.names()) >= {"loop-area", "coercive-field", "remanence", "mean", "max"}


@pytest.mark.parametrize(
    "spec,error,match",
    [
        ("loop_area", UnknownNameError, r"unknown reduction 'loop_area'.*package.module:function"),
        ("no_such_pkg.mod:f", ConfigError, r"reduction 'no_such_pkg.mod:f' does not import"),
        ("numpy:no_such_function", ConfigError, r"reduction 'numpy:no_such_function' does not import"),
        ("math:pi", ConfigError, r"reduction 'math:pi' is a float, not a function"),
        (":f", ConfigError, r"reduction ':f' does not import"),
    ],
)
def test_bad_specs_are_config_errors_naming_the_spec(spec, error, match):
    with pytest.raises(error, match=match):
        resolve_reduction(spec)


# ------------------------------------------------------------------ a 1-D response with its bias axis


@pytest.mark.parametrize("name", ["loop-area", "coercive-field", "remanence"])
def test_a_loop_reduction_takes_a_1d_response_with_its_bias_axis_as_it_takes_the_2_x_m_loop(name):
    loop = np.roll(parallelogram(vm=2.0, vc=0.5, slope=1.5, k=11), 5, axis=1)
    bias, response = loop
    expected = {"loop-area": 4 * 1.5 * 0.5 * 2.0, "coercive-field": 0.5, "remanence": 1.5 * 0.5}[name]
    f = REDUCTIONS[name]
    assert f(response, axis=bias) == pytest.approx(expected)
    assert f(loop) == pytest.approx(expected)  # the 2 x m form still works
    assert f(loop, axis=np.zeros(22)) == pytest.approx(expected)  # a 2 x m loop carries its own bias
    assert apply_reduction(f, response, bias) == pytest.approx(expected)  # the axis reaches it


def test_the_bias_axis_is_what_the_loop_reduction_uses():
    bias, response = parallelogram(vm=2.0, vc=0.5, slope=1.0)
    # the same response sampled against a bias twice as wide: the coercive field doubles, the remanence stays
    assert REDUCTIONS["coercive-field"](response, axis=2 * bias) == pytest.approx(1.0)
    assert REDUCTIONS["remanence"](response, axis=2 * bias) == pytest.approx(0.5)
    assert REDUCTIONS["loop-area"](response, axis=2 * bias) == pytest.approx(2 * 4 * 0.5 * 2.0)


def test_a_1d_response_without_an_axis_or_with_a_wrong_one_is_a_config_error():
    bias, response = parallelogram()
    with pytest.raises(ConfigError, match=r"1-D response with its bias spectral axis.*no spectral axis"):
        REDUCTIONS["coercive-field"](response)
    with pytest.raises(ConfigError, match=r"response of shape \(18,\) and a spectral axis of shape \(17,\)"):
        REDUCTIONS["remanence"](response, axis=bias[:-1])


def test_apply_reduction_passes_the_axis_only_to_a_reduction_that_takes_one():
    bias, response = parallelogram()
    seen = {}

    def with_axis(spectrum, axis=None):
        seen["axis"] = axis
        return float(np.dot(spectrum, axis))

    assert apply_reduction(with_axis, response, bias) == pytest.approx(float(np.dot(response, bias)))
    np.testing.assert_array_equal(seen["axis"], bias)
    assert apply_reduction(REDUCTIONS["max"], response, bias) == pytest.approx(response.max())  # no axis parameter
    assert apply_reduction(user_reduction, np.array([bias, response])) == pytest.approx(response.sum())
