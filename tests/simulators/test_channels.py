"""The two-channel simulator: the costly channel is Transition1D's; the cheap one a saturating image of the law on
a curved background, with noise of its own stream."""

import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.simulators.channels import TwoChannel
from abduce.simulators.registry import SIMULATORS
from abduce.simulators.transition1d import Transition1D


def test_the_costly_channel_is_the_transition_and_the_cheap_one_its_image():
    options = dict(law="second-order", x_c=0.5, beta=0.5, amplitude=2.0, grid=21, seed=4)
    sim, alone = TwoChannel(**options), Transition1D(**options)
    x = sim.candidates()
    np.testing.assert_array_equal(sim.measure_channel(x, "y"), alone.measure(x))  # the same stream, untouched
    t, s = alone.truth(x), alone.span()
    u = x[:, 0]
    image = s * np.tanh(0.8 * t / s) / 0.8 + 0.3 * s * np.sin(np.pi * u / 2)  # written out from the docstring
    np.testing.assert_allclose(sim.cheap_truth(x), 100.0 + 40.0 * image, rtol=1e-12)
    assert sim.reading_sd("image") == pytest.approx(40.0 * 2.0 * sim.noise) and sim.reading_sd("y") is None
    assert SIMULATORS["two-channel"] is TwoChannel and sim.channels == ("y", "image")


def test_frozen_noise_is_per_channel_and_per_point():
    sim = TwoChannel(grid=11, seed=2, noise_per_point=True, noise=0.1)
    x = sim.candidates()
    first = sim.measure_channel(x, "image")
    np.testing.assert_array_equal(sim.measure_channel(x[::-1], "image"), first[::-1])
    residual = (first - sim.cheap_truth(x)) / sim.reading_sd("image")
    assert np.abs(residual).max() < 5 and np.std(residual) > 0.3  # unit-variance noise, drawn once


def test_bad_options_are_named():
    for options, why in (
        ({"cheap": "y"}, "a name of its own"),
        ({"cheap_cost": 0.0}, "cheap_cost"),
        ({"gain": 0.0}, "gain"),
        ({"saturation": -1.0}, "saturation"),
        ({"cheap_ratio": 0.0}, "cheap_ratio"),
    ):
        with pytest.raises(ConfigError, match=why):
            TwoChannel(**options)
    with pytest.raises(ConfigError, match="no channel 'spectrum'"):
        TwoChannel(grid=5).measure_channel(np.array([[0.5]]), "spectrum")
