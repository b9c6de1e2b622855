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
    assert Transition1D(truth=truth).truth(np.array([[x]]))[0] == pytest.approx(expected)
    assert Transition1D(law=truth).truth(np.array([[x]]))[0] == pytest.approx(expected)


def test_noise_is_seeded_and_five_percent_of_the_amplitude():
    x = np.full((20000, 1), 0.9)
    a = Transition1D(seed=7, amplitude=2.0).measure(x)
    b = Transition1D(seed=7, amplitude=2.0).measure(x)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(0.1, rel=0.03)
    assert a.mean() == pytest.approx(0.0, abs=0.01)


def test_the_noise_stream_is_unchanged_without_noise_per_point():
    """Seeded tests and benchmarks rely on this exact stream: truth + noise * rng.standard_normal(n) per call."""
    sim = Transition1D(seed=5)
    x = np.array([[0.1], [0.7], [0.1]])
    first, second = sim.measure(x), sim.measure(x)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(first, sim.truth(x) + 0.05 * rng.standard_normal(3))
    np.testing.assert_array_equal(second, sim.truth(x) + 0.05 * rng.standard_normal(3))


def test_frozen_noise_gives_the_same_value_for_a_point_in_any_order_or_twice():
    sim = Transition1D(grid=11, seed=2, noise_per_point=True)
    cands = sim.candidates()
    all_once = sim.measure(cands)
    reordered = sim.measure(cands[::-1])[::-1]
    np.testing.assert_array_equal(all_once, reordered)
    np.testing.assert_array_equal(sim.measure(cands[[3, 3]]), all_once[[3, 3]])
    np.testing.assert_array_equal(
        Transition1D(grid=11, seed=2, noise_per_point=True).measure(cands[[7]]), all_once[[7]]
    )
    assert not np.array_equal(Transition1D(grid=11, seed=3, noise_per_point=True).measure(cands), all_once)
    np.testing.assert_allclose(all_once - sim.truth(cands), 0.05 * np.random.default_rng(2).standard_normal(11))
    with pytest.raises(ConfigError, match=r"\[0.15\] is not a candidate"):
        sim.measure(np.array([[0.15]]))


def test_interface_defaults():
    sim = Transition1D()
    assert sim.axis_names == ("x",) and sim.channel == "y" and sim.spectrum_shape == ()
    assert sim.dwell_s == 0.0 and sim.noise_per_point is False and sim.law == "second-order"


def test_candidates_and_bad_settings():
    assert Transition1D(grid=11).candidates().shape == (11, 1)
    assert Transition1D(grid=0).candidates() is None
    with pytest.raises(ConfigError, match="third-order"):
        Transition1D(truth="third-order")
    with pytest.raises(ConfigError):
        Transition1D(noise=-1.0)
    with pytest.raises(ConfigError, match="disagree"):
        Transition1D(law="sigmoid", truth="linear")
    with pytest.raises(ConfigError, match="noise_per_point needs a candidate grid"):
        Transition1D(grid=0, noise_per_point=True)
    with pytest.raises(ConfigError, match="dwell_s"):
        Transition1D(dwell_s=-1.0)


# ---- out-of-set truths: shapes no built-in law explains (hand-computed values) ----


@pytest.mark.parametrize(
    "law,options,x,expected",
    [
        # A/2 (0.6 - x)^0.5 + A/2 (0.3 - x)^0.5 with A = 2
        ("two-transitions", {"x_c": 0.6, "x_c2": 0.3, "amplitude": 2.0}, 0.2, 0.4**0.5 + 0.1**0.5),
        ("two-transitions", {"x_c": 0.6, "x_c2": 0.3, "amplitude": 2.0}, 0.45, 0.15**0.5),
        ("two-transitions", {"x_c": 0.6, "x_c2": 0.3, "amplitude": 2.0}, 0.7, 0.0),
        # 2 exp(-(0.7 - 0.6)^2 / (2 0.1^2)) = 2 e^-0.5
        ("peak", {"x_c": 0.6, "width": 0.1, "amplitude": 2.0}, 0.7, 2.0 * 0.6065306597126334),
        ("peak", {"x_c": 0.6, "width": 0.1, "amplitude": 2.0}, 0.6, 2.0),
        # 3 steps down to x_c = 0.6 from lo = 0: edges at 0.2, 0.4, 0.6
        ("staircase", {"x_c": 0.6, "steps": 3}, 0.1, 1.0),
        ("staircase", {"x_c": 0.6, "steps": 3}, 0.3, 2 / 3),
        ("staircase", {"x_c": 0.6, "steps": 3}, 0.5, 1 / 3),
        ("staircase", {"x_c": 0.6, "steps": 3}, 0.7, 0.0),
        # (0.6 - 0.35)^0.5 + 0.5 (0.35 - 0) / 1 = 0.5 + 0.175; above x_c only the background
        ("sloped-transition", {"x_c": 0.6, "background": 0.5}, 0.35, 0.675),
        ("sloped-transition", {"x_c": 0.6, "background": 0.5}, 0.8, 0.4),
        ("sloped-transition", {"x_c": 0.6, "background": 0.5, "lo": 0.2, "hi": 1.2, "amplitude": 2.0}, 0.7, 2 * 0.25),
    ],
)
def test_out_of_set_truths_against_hand_computed_values(law, options, x, expected):
    assert Transition1D(law=law, **options).truth(np.array([[x]]))[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_a_staircase_of_one_step_is_the_first_order_law():
    x = np.linspace(0, 1, 101)[:, None]
    np.testing.assert_array_equal(
        Transition1D(law="staircase", steps=1, x_c=0.43).truth(x), Transition1D(law="first-order", x_c=0.43).truth(x)
    )


def test_noise_fraction_is_a_fraction_of_the_truths_range_over_the_space():
    # second-order on [0, 1]: from A (x_c - 0)^beta at x = 0 down to 0 -> range 2 sqrt(0.6)
    sim = Transition1D(law="second-order", x_c=0.6, beta=0.5, amplitude=2.0, noise_fraction=0.1)
    assert sim.noise == pytest.approx(0.1 * 2.0 * 0.6**0.5, rel=1e-12)
    peak = Transition1D(law="peak", x_c=0.5, width=0.05, amplitude=3.0, noise_fraction=0.04)
    assert peak.noise == pytest.approx(0.04 * 3.0 * (1 - np.exp(-0.5 * 10**2)), rel=1e-9)  # min at the edges
    assert Transition1D(law="first-order", amplitude=4.0, noise_fraction=0.0).noise == 0.0


@pytest.mark.parametrize(
    "options,match",
    [
        ({"law": "peak", "width": 0.0}, "width must be > 0"),
        ({"law": "staircase", "steps": 0}, "steps must be an integer >= 1"),
        ({"law": "staircase", "steps": 2.5}, "steps must be an integer >= 1"),
        ({"law": "staircase", "steps": True}, "steps must be an integer >= 1"),
        ({"law": "two-transitions", "x_c2": float("nan")}, "x_c2 must be finite"),
        ({"law": "sloped-transition", "background": float("inf")}, "background must be finite"),
        ({"noise": 0.1, "noise_fraction": 0.1}, "noise or noise_fraction, not both"),
        ({"noise_fraction": -0.1}, "noise_fraction must be >= 0"),
        ({"law": "fourth-order"}, "unknown law 'fourth-order'.*staircase"),
    ],
)
def test_bad_out_of_set_settings_name_the_setting(options, match):
    with pytest.raises(ConfigError, match=match):
        Transition1D(**options)


def test_a_staircase_of_steps_given_as_a_whole_float_takes_an_int():
    assert Transition1D(law="staircase", steps=2.0).steps == 2
