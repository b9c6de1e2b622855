import math

import pytest
import torch

from abduce.controller.errors import ConfigError
from abduce.hypotheses.declaration import Frame, Hypothesis, LogNormal, Normal, Parameter, Uniform

PRIORS = [(Uniform(), (0.0, 2.0)), (Normal(0.3, 0.5), (-1.0, 1.0)), (LogNormal(0.3, 0.5), (0.05, 2.0))]


@pytest.mark.parametrize("prior,bounds", PRIORS)
def test_truncated_priors_integrate_to_one(prior, bounds):
    grid = torch.linspace(*bounds, 200001, dtype=torch.float64)
    density = prior.log_prob(grid, *bounds).exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("prior,bounds", PRIORS)
def test_inverse_cdf_stays_in_bounds_and_matches_density(prior, bounds):
    u = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    r = prior.from_unit(u, *bounds)
    assert r.min() >= bounds[0] and r.max() <= bounds[1]
    grid = torch.linspace(*bounds, 100001, dtype=torch.float64)
    mean = torch.trapezoid(grid * prior.log_prob(grid, *bounds).exp(), grid).item()
    assert r.mean().item() == pytest.approx(mean, abs=2e-3)


def test_density_is_zero_outside_bounds():
    assert Normal(0, 1).log_prob(torch.tensor([2.0], dtype=torch.float64), -1, 1).item() == -math.inf


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "not ok"}, "identifier"),
        ({"name": "a", "unit": "kelvin"}, "unit"),
        ({"name": "a", "bounds": (1.0, 0.0)}, "lo < hi"),
        ({"name": "a", "bounds": (0.0, 1.0), "prior": LogNormal()}, "above 0"),
        ({"name": "a", "fixed": 2.0}, "outside"),
    ],
)
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Parameter(**kwargs)


def test_duplicate_parameter_names_are_refused():
    with pytest.raises(ConfigError, match="duplicate"):
        Hypothesis("h", lambda x, p: x[..., 0], (Parameter("a"), Parameter("a")))


@pytest.mark.parametrize("unit", ["1", "x", "dx", "y", "y/dx", "y*dx"])
def test_frame_round_trip(unit):
    frame = Frame(lo=(300.0,), span=(50.0,), s=7.0)
    p = Parameter("a", unit=unit)
    r = torch.tensor(0.37, dtype=torch.float64)
    assert frame.to_relative(p, frame.to_physical(p, r)).item() == pytest.approx(0.37)


def test_frame_units():
    frame = Frame(lo=(300.0,), span=(50.0,), s=7.0)
    one = torch.tensor(1.0, dtype=torch.float64)
    assert frame.to_physical(Parameter("x_c", unit="x"), one * 0.5).item() == 325.0
    assert frame.to_physical(Parameter("A", unit="y"), one).item() == 7.0
    assert frame.to_physical(Parameter("k", unit="y/dx"), one).item() == pytest.approx(7.0 / 50.0)
