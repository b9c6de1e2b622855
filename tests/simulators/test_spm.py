import json

import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.simulators.spm import SPMImage
from abduce.simulators.transition1d import Transition1D


def test_default_image_is_128_by_128_pixels():
    sim = SPMImage()
    c = sim.candidates()
    assert c.shape == (16384, 2) and sim.axis_names == ("x", "y")
    assert sim.bounds == ((0.0, 127.0), (0.0, 127.0))
    assert SPMImage(grid=(4, 3), pixel_size=0.5).bounds == ((0.0, 1.5), (0.0, 1.0))


def test_truth_at_a_pixel_is_the_law_of_its_control_value_plus_its_domain_offset():
    sim = SPMImage(law="second-order", x_c=0.6, beta=0.5, amplitude=1.0, seed=5)
    pix = np.array([[38.1, 20.0], [0.0, 127.0], [120.0, 64.0]])
    c = pix[:, 0] / 127.0  # the wedge along x
    nearest = np.array([np.argmin(np.hypot(*(sim.centres - p).T)) for p in pix])
    expected = np.clip(0.6 - c, 0, None) ** 0.5 + sim.offsets[nearest]
    np.testing.assert_allclose(sim.truth(pix), expected, atol=1e-12)
    np.testing.assert_allclose(sim.control(pix), c)
    np.testing.assert_array_equal(sim.domain(pix), nearest)


@pytest.mark.parametrize("law", ["first-order", "sigmoid", "linear", "curie-weiss"])
def test_every_transition1d_law_is_reused(law):
    sim = SPMImage(law=law, grid=16, seed=2)
    px = sim.candidates()
    law1d = Transition1D(law=law, noise=0.0, grid=0)
    np.testing.assert_allclose(sim.truth(px), law1d.truth(sim.control(px)) + sim.offsets[sim.domain(px)])


def test_domains_are_seeded_and_give_small_offsets():
    a, b, other = SPMImage(seed=1), SPMImage(seed=1), SPMImage(seed=2)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, other.centres)
    assert len(np.unique(a.domain(a.candidates()))) == a.domains == 6
    assert np.abs(a.offsets).max() < 0.25


def test_ripple_along_y():
    sim = SPMImage(ripple=0.1, ripple_period=0.5, grid=101)
    np.testing.assert_allclose(sim.control(np.array([[50.0, 12.5]])), 0.5 + 0.1)  # quarter of a 50-px period


def test_seeded_and_frozen_noise():
    px = SPMImage(grid=32).candidates()
    a, b = SPMImage(grid=32, seed=4).measure(px), SPMImage(grid=32, seed=4).measure(px)
    np.testing.assert_array_equal(a, b)
    assert (a - SPMImage(grid=32, seed=4).truth(px)).std() == pytest.approx(0.05, rel=0.1)
    sim = SPMImage(seed=4, noise_per_point=True)
    px = sim.candidates()
    pick = px[[5, 9000, 5]]
    np.testing.assert_array_equal(sim.measure(pick), sim.measure(px)[[5, 9000, 5]])
    with pytest.raises(ConfigError, match=r"\[0.5, 3.0\] is not a candidate"):
        sim.measure(np.array([[0.5, 3.0]]))


def test_the_default_grid_fits_in_a_hello_frame():
    cands = SPMImage(pixel_size=5.0 / 127).candidates().tolist()
    assert len(json.dumps(cands)) < (1 << 20) * 0.8  # the codec's default max_json_bytes


def test_bad_settings():
    with pytest.raises(ConfigError, match="grid"):
        SPMImage(grid=1)
    with pytest.raises(ConfigError, match="pixel_size"):
        SPMImage(pixel_size=0.0)
    with pytest.raises(ConfigError, match="unknown law"):
        SPMImage(law="quadratic")
