import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.simulators.phase2d import Phase2D


def test_order_parameter_below_the_boundary_equals_the_formula():
    sim = Phase2D(tc0=600.0, tc1=-400.0, tc2=100.0, beta=0.3, amplitude=2.0)
    x, t = 0.5, 250.0
    tc = 600 - 400 * 0.5 + 100 * 0.25  # 425 K
    assert sim.critical_temperature(np.array([x]))[0] == pytest.approx(425.0)
    assert sim.truth(np.array([[x, t]]))[0] == pytest.approx(2.0 * (1 - t / tc) ** 0.3)


@pytest.mark.parametrize("law", ["second-order", "first-order", "sigmoid"])
def test_on_and_above_the_boundary(law):
    sim = Phase2D(law=law)
    xs = np.linspace(0, 1, 7)
    on = np.column_stack([xs, sim.critical_temperature(xs)])
    above = on + [0.0, 30.0]
    below = on - [0.0, 30.0]
    if law == "sigmoid":  # a rounded boundary: half the amplitude on it
        np.testing.assert_allclose(sim.truth(on), 0.5)
    else:
        np.testing.assert_array_equal(sim.truth(on), 0.0)
        np.testing.assert_array_equal(sim.truth(above), 0.0)
    assert (sim.truth(below) > sim.truth(above)).all()


def test_first_order_is_a_step_of_the_amplitude():
    sim = Phase2D(law="first-order", amplitude=1.5)
    np.testing.assert_array_equal(sim.truth(np.array([[0.0, 599.0], [0.0, 601.0]])), [1.5, 0.0])


def test_grid_axes_and_candidate_order():
    sim = Phase2D()
    c = sim.candidates()
    assert c.shape == (41 * 41, 2) and sim.axis_names == ("composition", "temperature")
    assert sim.bounds == ((0.0, 1.0), (100.0, 700.0))
    np.testing.assert_array_equal(c[:2], [[0.0, 100.0], [0.0, 115.0]])  # composition-major
    assert Phase2D(grid=(5, 3)).candidates().shape == (15, 2)
    assert Phase2D(grid=0).candidates() is None


def test_seeded_noise_and_frozen_noise():
    x = np.tile([[0.9, 650.0]], (5000, 1))  # disordered: truth 0
    a, b = Phase2D(seed=3).measure(x), Phase2D(seed=3).measure(x)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(0.05, rel=0.05)
    sim = Phase2D(grid=5, seed=3, noise_per_point=True)
    c = sim.candidates()
    once = sim.measure(c)
    np.testing.assert_array_equal(sim.measure(c[::-1])[::-1], once)
    np.testing.assert_array_equal(sim.measure(c[[4, 4]]), once[[4, 4]])
    with pytest.raises(ConfigError, match=r"\[0.3, 200.0\] is not a candidate"):
        sim.measure(np.array([[0.3, 200.0]]))


def test_bad_settings():
    with pytest.raises(ConfigError, match="not > 0"):
        Phase2D(tc0=100.0, tc1=-400.0)
    with pytest.raises(ConfigError, match="unknown phase-2d law"):
        Phase2D(law="linear")
    with pytest.raises(ConfigError, match="grid"):
        Phase2D(grid=1)
    with pytest.raises(ConfigError, match="n x 2"):
        Phase2D().truth(np.array([[0.5]]))
