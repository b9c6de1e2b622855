import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.controller.intake.reduction import coercive_field, loop_area, remanence
from abduce.simulators.loops import Loops


def test_the_loop_is_bias_over_response_with_the_triangular_waveform():
    sim = Loops(m=128, v_max=10.0)
    loop = sim.truth(np.array([[0.05]]))
    assert loop.shape == (1, 2, 128) and sim.spectrum_shape == (2, 128)
    v = loop[0, 0]
    assert (v[0], v[32], v[64], v[96]) == (0.0, 10.0, 0.0, -10.0)
    np.testing.assert_allclose(np.diff(v[:32]), 10 / 32)  # 0 -> +V_max in a quarter cycle
    np.testing.assert_allclose(np.diff(v[32:96]), -10 / 32)


@pytest.mark.parametrize(
    "x,expected", [(0.0, 1.0), (0.05, np.sqrt(0.09 / 0.14)), (0.1, np.sqrt(0.04 / 0.14)), (0.14, 0.0), (0.2, 0.0)]
)
def test_second_order_remanence_and_coercive_bias_follow_the_law(x, expected):
    sim = Loops(x_c=0.14, beta=0.5, r0=2.0, vc0=3.0)
    assert sim.remanence(np.array([x]))[0] == pytest.approx(2.0 * expected, abs=1e-12)
    assert sim.coercive_bias(np.array([x]))[0] == pytest.approx(3.0 * expected, abs=1e-12)


def test_first_order_law_is_a_step():
    sim = Loops(law="first-order", x_c=0.14)
    np.testing.assert_allclose(sim.remanence(np.array([0.0, 0.139, 0.141, 0.25])), [1.0, 1.0, 0.0, 0.0])


def test_analytic_branch_values():
    """P = Ps tanh((V -/+ Vc) / w) + chi V with Ps = R / tanh(Vc / w)."""
    sim = Loops(r0=1.0, vc0=3.0, w=1.0, chi=0.01, x_c=0.14)
    x = 0.05
    s = np.sqrt(0.09 / 0.14)
    ps, vc = s / np.tanh(3 * s), 3 * s
    loop = sim.truth(np.array([x]))[0]
    v = loop[0]
    np.testing.assert_allclose(loop[1, 10], ps * np.tanh(v[10] - vc) + 0.01 * v[10])  # ascending
    np.testing.assert_allclose(loop[1, 50], ps * np.tanh(v[50] + vc) + 0.01 * v[50])  # descending
    above = sim.truth(np.array([0.2]))[0]  # paraelectric: no hysteresis, Ps = r0 w / vc0
    np.testing.assert_allclose(above[1], np.tanh(above[0]) / 3 + 0.01 * above[0])


@pytest.mark.parametrize("law", ["second-order", "first-order", "sigmoid", "linear"])
def test_reductions_of_truth_loops_give_back_the_composition_dependence(law):
    chi, w, vc0, r0 = 0.01, 1.0, 3.0, 1.0
    sim = Loops(law=law, chi=chi, w=w, vc0=vc0, r0=r0)
    x = sim.candidates()
    loops = sim.truth(x)
    rem = np.array([remanence(lp) for lp in loops])
    ec = np.array([coercive_field(lp) for lp in loops])
    # remanence is exact up to rounding (V = 0 is sampled on both branches)
    np.testing.assert_allclose(rem, sim.remanence(x), atol=1e-12)
    # the dielectric term moves each crossing inwards by about chi w Vc / Ps <= chi w vc0 / r0;
    # linear interpolation of the tanh adds < 0.005 V
    np.testing.assert_allclose(ec, sim.coercive_bias(x), atol=chi * w * vc0 / r0 + 0.005)
    area = np.array([loop_area(lp) for lp in loops])
    hysteretic = sim.remanence(x) > 0
    assert (area[hysteretic] > 0).all() and np.allclose(area[~hysteretic], 0.0, atol=1e-9)


def test_without_dielectric_term_the_coercive_field_is_exact_to_interpolation():
    sim = Loops(chi=0.0)
    x = sim.candidates()
    ec = np.array([coercive_field(lp) for lp in sim.truth(x)])
    np.testing.assert_allclose(ec, sim.coercive_bias(x), atol=2e-3)


def test_reduced_noisy_loops_recover_the_critical_composition():
    sim = Loops(x_c=0.14, seed=4)
    x = sim.candidates()[:, 0]
    rem = np.array([remanence(lp) for lp in sim.measure(x[:, None])])
    # least squares of r(x) = a (x_c - x)_+^0.5 over a grid of x_c (a linear in closed form)
    best, best_sse = None, np.inf
    for xc in np.linspace(0.05, 0.24, 191):
        f = np.clip(xc - x, 0, None) ** 0.5
        a = f @ rem / (f @ f)
        sse = np.sum((rem - a * f) ** 2)
        if sse < best_sse:
            best, best_sse = xc, sse
    assert best == pytest.approx(0.14, abs=0.01)


def test_noise_is_seeded_on_the_response_row_only():
    x = np.full((400, 1), 0.05)
    a, b = Loops(seed=9).measure(x), Loops(seed=9).measure(x)
    np.testing.assert_array_equal(a, b)
    truth = Loops().truth(x)
    np.testing.assert_array_equal(a[:, 0], truth[:, 0])
    assert (a[:, 1] - truth[:, 1]).std() == pytest.approx(0.05, rel=0.03)  # 5% of r0 by default
    assert not np.array_equal(a, Loops(seed=10).measure(x))


def test_frozen_noise_per_composition():
    sim = Loops(grid=11, seed=1, noise_per_point=True)
    cands = sim.candidates()
    once = sim.measure(cands)
    np.testing.assert_array_equal(sim.measure(cands[::-1])[::-1], once)
    np.testing.assert_array_equal(sim.measure(cands[[2, 2]]), once[[2, 2]])
    with pytest.raises(ConfigError, match="not a candidate"):
        sim.measure(np.array([[0.013]]))


def test_composition_spread_smooths_the_law():
    sharp, smooth = Loops(sigma=0.0), Loops(sigma=0.005)
    far = np.array([0.02, 0.08, 0.2])
    np.testing.assert_allclose(smooth.remanence(far), sharp.remanence(far), atol=0.01)
    at_xc = smooth.remanence(np.array([0.14]))[0]
    assert 0.02 < at_xc < 0.2 and sharp.remanence(np.array([0.14]))[0] == 0.0


def test_bad_settings():
    with pytest.raises(ConfigError, match="multiple of 4"):
        Loops(m=130)
    with pytest.raises(ConfigError, match="vanishes"):
        Loops(x_c=0.0)
    with pytest.raises(ConfigError, match="unknown law"):
        Loops(law="cubic")
    with pytest.raises(ConfigError, match="w must be > 0"):
        Loops(w=0.0)
