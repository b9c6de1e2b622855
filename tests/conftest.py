"""Shared fixtures: small data sets from the simulator, no network, CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def transition_data():
    """40 noisy points of a second-order transition (x_c = 0.6, beta = 0.5) on [0, 1]."""
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(seed=1)
    x = np.linspace(0, 1, 40)[:, None]
    y = sim.measure(x)
    return torch.tensor(x), torch.tensor(y)
