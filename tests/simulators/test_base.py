import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.simulators.base import FrozenNoise, Simulator, as_points, check_simulator
from abduce.simulators.registry import SIMULATORS


def test_frozen_noise_is_drawn_once_in_candidate_order_and_looked_up_exactly():
    cands = np.linspace(0, 1, 5)[:, None]
    noise = FrozenNoise(cands, np.random.default_rng(3), shape=(2,))
    np.testing.assert_array_equal(noise.eps, np.random.default_rng(3).standard_normal((5, 2)))
    np.testing.assert_array_equal(noise.indices(cands[[4, 0, 4]]), [4, 0, 4])
    np.testing.assert_array_equal(noise.at(cands[[2]]), noise.eps[[2]])
    with pytest.raises(ConfigError, match=r"\[0.3\] is not a candidate"):
        noise.indices(np.array([[0.3]]))


@pytest.mark.parametrize("name", ["transition-1d", "loops", "phase-2d", "spm-image", "sample-series"])
def test_every_registered_simulator_offers_the_interface(name):
    sim = SIMULATORS[name](seed=1)
    assert isinstance(sim, Simulator) and check_simulator(sim) is sim
    assert len(sim.axis_names) == len(sim.bounds) == sim.candidates().shape[1]
    x = sim.candidates()[:3]
    assert sim.truth(x).shape == sim.measure(x).shape == (3, *sim.spectrum_shape)
    assert sim.dwell_s == 0.0 and sim.noise_per_point is False


def test_check_simulator_names_what_is_missing():
    class Half:
        bounds = ((0.0, 1.0),)

        def truth(self, x):
            return x

    with pytest.raises(ConfigError, match="lacks axis_names, seed"):
        check_simulator(Half())
    assert not isinstance(Half(), Simulator)


def test_as_points_shapes():
    assert as_points(np.array([0.1, 0.2]), 1).shape == (2, 1)
    with pytest.raises(ConfigError, match=r"n x 2"):
        as_points(np.zeros((3, 1)), 2)
