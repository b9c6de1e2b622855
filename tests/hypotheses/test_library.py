import math

import numpy as np
import pytest
import torch

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.hypotheses.library import BUILTIN, ONE_D, SECOND_ORDER, resolve_hypothesis, smooth_relu
from abduce.simulators.transition1d import Transition1D

# Physical parameters that make each built-in reproduce the simulator's truth
# (the simulator is numpy, written apart from these torch models).
MATCHING = {
    "second-order": {"A": 1.0, "x_c": 0.6, "beta": 0.5, "delta": 1e-6, "span": 1.0},
    "first-order": {"A": 1.0, "x_c": 0.6, "delta": 1e-6},
    "sigmoid": {"A": 1.0, "x_c": 0.6, "w": 0.05},
    "linear": {"y_lo": 1.0, "y_hi": 0.0, "x0": 0.0, "span": 1.0},
    "constant": {"c": 0.5},
    "curie-weiss": {"C": 0.1, "theta": -0.1},
}


@pytest.mark.parametrize("name", sorted(ONE_D))
def test_builtin_matches_the_independent_simulator(name):
    x = np.linspace(0.0, 1.0, 101)
    x = x[np.abs(x - 0.6) > 0.01]  # the smoothed kink differs only within delta of x_c
    truth = Transition1D(truth=name, seed=0).truth(x[:, None])
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in MATCHING[name].items()}
    model = BUILTIN[name].mean(torch.tensor(x[:, None]), params).numpy()
    np.testing.assert_allclose(model, truth, atol=2e-3)


def test_the_power_laws_amplitude_means_the_same_on_a_space_of_any_width():
    """m(x) = A ((x_c - x) / span)^beta: on a wafer 0.25 wide the law is the unit space's law with x scaled,
    at the same A, so A's bound (3 data scales) admits the same power laws on both. Measured on the loop
    benchmark: with (x_c - x)^beta in physical units, a mean-field law (beta = 1/2) reaching the data scale at
    the lower edge with x_c = 0.05 of a 0.25 wafer needed A = 4.5 > 3, and an edge transition was read as
    first-order at P = 0.997 from one reading below x_c."""
    f = lambda x, x_c, span: SECOND_ORDER.mean(  # noqa: E731
        torch.tensor(x, dtype=torch.float64)[:, None],
        {
            "A": torch.tensor(2.0, dtype=torch.float64),
            "x_c": torch.tensor(x_c, dtype=torch.float64),
            "beta": torch.tensor(0.5, dtype=torch.float64),
            "delta": torch.tensor(1e-3 * span, dtype=torch.float64),
            "span": torch.tensor(span, dtype=torch.float64),
        },
    )
    u = np.linspace(0.0, 0.19, 20)
    torch.testing.assert_close(f(0.25 * u, 0.05, 0.25), f(u, 0.2, 1.0), rtol=1e-9, atol=1e-12)
    a_needed = 1.0 / math.sqrt(0.05 / 0.25)  # m(0) = 1 data scale with x_c = 0.05 on [0, 0.25]
    assert a_needed <= SECOND_ORDER.parameters[0].bounds[1]


def test_every_builtin_has_a_docstring_with_a_formula():
    for h in BUILTIN.values():
        assert "=" in h.doc and len(h.doc) > 30


def test_smoothed_kink_has_finite_gradients_at_x_c():
    x_c = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[0.6]], dtype=torch.float64)
    params = {
        "A": torch.tensor(1.0, dtype=torch.float64),
        "x_c": x_c,
        "beta": torch.tensor(0.5, dtype=torch.float64),
        "delta": torch.tensor(1e-3, dtype=torch.float64),
        "span": torch.tensor(1.0, dtype=torch.float64),
    }
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
