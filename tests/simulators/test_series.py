"""The sample-series simulator (simulators/series.py): drift, the series' own scatter, changed samples, refusals,
and serving it like any simulator."""

import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.sources import build_seeded
from abduce.simulators.series import SampleSeries
from abduce.simulators.transition1d import Transition1D


def test_each_sample_drifts_from_the_last_with_the_series_own_scatter():
    samples = [SampleSeries(sample=k, x_c=0.4, drift=0.05, jitter=0.01, beta_drift=0.02, series_seed=7, seed=k)
               for k in range(5)]  # fmt: skip
    steps = np.diff([s.x_c for s in samples])
    assert np.all(np.abs(steps - 0.05) < 0.06) and not np.allclose(steps, 0.05)  # drift plus scatter
    assert [s.beta for s in samples] == pytest.approx([0.3, 0.32, 0.34, 0.36, 0.38])
    # the scatter belongs to the series: another noise seed, the same sample
    again = SampleSeries(sample=3, x_c=0.4, drift=0.05, jitter=0.01, beta_drift=0.02, series_seed=7, seed=99)
    assert again.x_c == samples[3].x_c and again.seed == 99
    assert SampleSeries(sample=3, x_c=0.4, drift=0.05, jitter=0.01, series_seed=8).x_c != samples[3].x_c
    # a sample is a Transition1D of those parameters: the same truth
    plain = Transition1D(law="second-order", x_c=samples[2].x_c, beta=samples[2].beta, seed=2)
    x = np.linspace(0, 1, 11)[:, None]
    np.testing.assert_array_equal(samples[2].truth(x), plain.truth(x))


def test_a_changed_sample_follows_the_other_law_and_the_next_goes_back():
    laws = [SampleSeries(sample=k, changes=[2], changed_law="sigmoid").law for k in range(4)]
    assert laws == ["second-order", "second-order", "sigmoid", "second-order"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sample": -1}, "sample must be an integer >= 0"),
        ({"sample": 1.5}, "sample must be an integer >= 0"),
        ({"changed_law": "third-order"}, "unknown changed_law"),
        ({"jitter": -0.1}, "jitter must be >= 0"),
        ({"drift": float("nan")}, "drift must be finite"),
        ({"sample": 5, "amplitude_drift": -0.3}, "amplitude drifted"),
    ],
)
def test_bad_series_options_are_clear_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        SampleSeries(**options)


def test_it_is_served_by_name_like_the_other_simulators():
    driver = build_seeded("simulated:sample-series", {"sample": 2, "drift": 0.1, "jitter": 0.0, "x_c": 0.3}, seed=5)
    assert driver.simulator.x_c == pytest.approx(0.5) and driver.simulator.seed == 5
    caps = driver.describe()
    assert caps.channels[0].name == "y" and len(caps.axes) == 1
