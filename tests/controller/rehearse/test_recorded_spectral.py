"""A rehearsal on a recorded spectral data set whose channel carries its bias axis: the reduction receives it."""

from __future__ import annotations

import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.recorded import RecordedDataset
from abduce.simulators.loops import Loops


def response_map(path, with_axis: bool = True):
    """Noise-free loops of a 21-composition wafer stored as the response alone (``21 x 64``), with the bias
    waveform as the channel's spectral axis (V); returns the simulator, for its exact coercive bias."""
    sim = Loops(grid=21, m=64, noise=0.0, chi=0.0, seed=0)
    x = sim.candidates()
    loops = sim.measure(x)
    RecordedDataset(
        points=x,
        axis_names=sim.axis_names,
        values={"response": loops[:, 1]},
        units={"response": "pm"},
        spectral_axes={"response": SpectralAxis("bias", "V", sim.bias())} if with_axis else {},
    ).save(path)
    return sim


@pytest.mark.parametrize("ext", ["h5", "nc"])
def test_a_rehearsal_reduces_each_response_with_its_bias_axis(tmp_path, ext):
    sim = response_map(tmp_path / f"wafer.{ext}")
    rehearsal = Rehearsal(
        f"recorded:{tmp_path / f'wafer.{ext}'}",
        ("second-order", "linear"),
        reduction="coercive-field",
        budget=6,
        n_init=4,
        seed=1,
    )
    steps = []
    rehearsal.run([steps.append])
    assert len(steps) == 6
    x = np.array([s.x for s in steps])
    y = np.array([s.y for s in steps])
    # the physical oracle: a chi = 0 loop crosses zero at +/- Vc(x); sampled at 64 biases, linear interpolation
    # of tanh between samples 0.25 V apart misses it by well under 1%
    np.testing.assert_allclose(y, sim.coercive_bias(x), rtol=0.01, atol=1e-3)
    assert np.ptp(y) > 0.1 * sim.vc0  # the values differ from point to point: they come from the loops


def test_without_its_bias_axis_a_1d_response_cannot_be_reduced_to_a_coercive_field(tmp_path):
    response_map(tmp_path / "bare.h5", with_axis=False)
    rehearsal = Rehearsal(
        f"recorded:{tmp_path / 'bare.h5'}", ("second-order",), reduction="coercive-field", budget=2, n_init=2
    )
    with pytest.raises(ConfigError, match="bias spectral axis"):
        rehearsal.run()
