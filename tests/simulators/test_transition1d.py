import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.simulators.transition1d import Transition1D


@pytest.mark.parametrize(
    "truth,x,expected",
    [
        ("second-order", 0.35, 0.5),  # (0.6 - 0.35)^0.5
        ("second-order", 0.8, 0.0),
        ("first-order", 0.59, 1.0),
        ("first-order", 0.61, 0.0),
        ("sigmoid", 0.6, 0.5),
        ("linear", 0.25, 0.75),
        ("constant", 0.9, 0.5),
        ("curie-weiss", 0.1, 0.5),
    ],
)
def test_truth_against_analytic_values(truth, x, expected):
    assert Transition1D(truth=truth).truth_at(np.array([[x]]))[0] == pytest.approx(expected)


def test_noise_is_seeded_and_five_percent_of_the_amplitude():
    x = np.full((20000, 1), 0.9)
    a = Transition1D(seed=7, amplitude=2.0).measure(x)
    b = Transition1D(seed=7, amplitude=2.0).measure(x)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(0.1, rel=0.03)
    assert a.mean() == pytest.approx(0.0, abs=0.01)


def test_candidates_and_bad_settings():
    assert Transition1D(grid=11).candidates().shape == (11, 1)
    assert Transition1D(grid=0).candidates() is None
    with pytest.raises(ConfigError, match="third-order"):
        Transition1D(truth="third-order")
    with pytest.raises(ConfigError):
        Transition1D(noise=-1.0)
