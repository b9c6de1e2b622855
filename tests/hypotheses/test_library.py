import numpy as np
import pytest
import torch

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.hypotheses.library import BUILTIN, SECOND_ORDER, resolve_hypothesis, smooth_relu
from abduce.simulators.transition1d import Transition1D

# Physical parameters that make each built-in reproduce the simulator's truth
# (the simulator is numpy, written apart from these torch models).
MATCHING = {
    "second-order": {"A": 1.0, "x_c": 0.6, "beta": 0.5, "delta": 1e-6},
    "first-order": {"A": 1.0, "x_c": 0.6, "delta": 1e-6},
    "sigmoid": {"A": 1.0, "x_c": 0.6, "w": 0.05},
    "linear": {"y_lo": 1.0, "y_hi": 0.0, "x0": 0.0, "span": 1.0},
    "constant": {"c": 0.5},
    "curie-weiss": {"C": 0.1, "theta": -0.1},
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_matches_the_independent_simulator(name):
    x = np.linspace(0.0, 1.0, 101)
    x = x[np.abs(x - 0.6) > 0.01]  # the smoothed kink differs only within delta of x_c
    truth = Transition1D(truth=name, seed=0).truth(x[:, None])
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in MATCHING[name].items()}
    model = BUILTIN[name].mean(torch.tensor(x[:, None]), params).numpy()
    np.testing.assert_allclose(model, truth, atol=2e-3)


def test_every_builtin_has_a_docstring_with_a_formula():
    for h in BUILTIN.values():
        assert "=" in h.doc and len(h.doc) > 30


def test_smoothed_kink_has_finite_gradients_at_x_c():
    x_c = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[0.6]], dtype=torch.float64)
    params = {"A": torch.tensor(1.0, dtype=torch.float64), "x_c": x_c,
              "beta": torch.tensor(0.5, dtype=torch.float64), "delta": torch.tensor(1e-3, dtype=torch.float64)}
    SECOND_ORDER.mean(x, params).sum().backward()
    assert torch.isfinite(x_c.grad)
    assert smooth_relu(torch.tensor(-1.0), torch.tensor(1e-3)).item() >= 0


def test_resolve_by_name_and_dotted_path():
    assert resolve_hypothesis("sigmoid") is BUILTIN["sigmoid"]
    assert resolve_hypothesis("abduce.hypotheses.library:SECOND_ORDER") is SECOND_ORDER
    assert resolve_hypothesis("abduce.hypotheses.library.SECOND_ORDER") is SECOND_ORDER


def test_resolve_errors_name_the_problem():
    with pytest.raises(UnknownNameError, match="second-ordr"):
        resolve_hypothesis("second-ordr")
    with pytest.raises(ConfigError, match="does not import"):
        resolve_hypothesis("abduce.nowhere:THING")
    with pytest.raises(ConfigError, match="not an abduce Hypothesis"):
        resolve_hypothesis("abduce.hypotheses.library:BUILTIN")
