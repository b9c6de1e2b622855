"""Every built-in law and its gradients are finite over the whole declared range (property-based),
and :func:`abduce.hypotheses.check` finds a law that is not, naming where."""

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from abduce.hypotheses import Hypothesis, Parameter, check
from abduce.hypotheses.declaration import Frame
from abduce.hypotheses.errors import HypothesisError
from abduce.hypotheses.library import BUILTIN, ONE_D, PHASE_BOUNDARIES, smooth_relu
from abduce.hypotheses.model import relative_mean


def relative_value(bounds):
    """A relative parameter value inside its bounds, the bounds themselves drawn often."""
    lo, hi = bounds
    return st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi, allow_nan=False))


@st.composite
def cases(draw, name):
    h = ONE_D[name]
    rel = {p.name: draw(relative_value(p.bounds)) for p in h.free}
    lo = draw(st.floats(-1e3, 1e3, allow_nan=False))
    span = draw(st.floats(1e-3, 1e3, allow_nan=False))
    s = draw(st.floats(1e-6, 1e6, allow_nan=False))
    points = draw(st.lists(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)), min_size=1, max_size=40))
    return h, rel, Frame(lo=(lo,), span=(span,), s=s), points


@pytest.mark.parametrize("name", sorted(ONE_D))
def test_every_builtin_is_finite_with_finite_gradients_everywhere_in_its_range(name):
    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(cases(name))
    def finite(case):
        h, rel, frame, points = case
        params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in rel.items()}
        u = torch.tensor(points, dtype=torch.float64).unsqueeze(-1)
        m = relative_mean(h, frame, u, params)
        assert torch.isfinite(m).all(), (rel, frame, points, m)
        if params:
            grads = torch.autograd.grad(m.sum(), list(params.values()))
            assert all(torch.isfinite(g) for g in grads), (rel, frame, points, grads)

    finite()


def test_the_second_order_law_stays_the_law_far_above_its_critical_point():
    """In log space the kink's value is unchanged where it was representable, and tends to 0 beyond."""
    h = BUILTIN["second-order"]
    x = torch.linspace(0.0, 1.0, 201, dtype=torch.float64).unsqueeze(-1)
    p = {
        "A": torch.tensor(1.3, dtype=torch.float64),
        "x_c": torch.tensor(0.05, dtype=torch.float64),
        "beta": torch.tensor(0.4, dtype=torch.float64),
        "delta": torch.tensor(1e-3, dtype=torch.float64),
        "span": torch.tensor(1.0, dtype=torch.float64),
    }
    plain = 1.3 * smooth_relu(0.05 - x[:, 0], 0.4 * p["delta"]) ** 0.4  # the direct form: exact until it underflows
    kept = (0.05 - x[:, 0]) / 0.4e-3 > -700  # softplus still a normal float there: no precision lost
    assert 0 < kept.sum() < len(x)
    torch.testing.assert_close(h.mean(x, p)[kept], plain[kept], rtol=1e-12, atol=0)
    assert (h.mean(x, p)[~kept] < 1e-100).all()  # where the direct form gave exactly 0
    below = x[:, 0] < 0.05 - 0.01
    exact = 1.3 * (0.05 - x[below, 0]) ** 0.4  # relu(t)^beta itself, well below x_c
    torch.testing.assert_close(h.mean(x, p)[below], exact, rtol=1e-6, atol=0)


@pytest.mark.parametrize("beta", [0.125, 0.25, 0.5, 2.0])
def test_the_second_order_kink_is_sharp_for_every_exponent(beta):
    """Five deltas above x_c the law is under 1% of its value five deltas below, whatever beta: the
    kink is rounded over beta * delta (the power of a kink rounded over delta fell over delta / beta:
    at beta = 1/8 it kept 44% of that value there, and fits put x_c below the truth)."""
    h = BUILTIN["second-order"]
    f64 = {"dtype": torch.float64}
    p = {
        "A": torch.tensor(1.0, **f64),
        "x_c": torch.tensor(0.5, **f64),
        "beta": torch.tensor(beta, **f64),
        "delta": torch.tensor(1e-3, **f64),
        "span": torch.tensor(1.0, **f64),
    }
    below, above = h.mean(torch.tensor([[0.495], [0.505]], **f64), p)
    assert float(above) < 0.01 * float(below)
    assert float(below) == pytest.approx(0.005**beta, rel=0.1)  # and still the power law just below x_c


def test_check_passes_every_builtin_on_boxes_and_candidate_sets():
    grid = torch.linspace(300.0, 400.0, 501, dtype=torch.float64).unsqueeze(-1)
    for h in ONE_D.values():
        check(h, lo=(0.0,), hi=(1.0,))
        check(h, lo=(300.0,), hi=(400.0,), candidates=grid)
    for h in PHASE_BOUNDARIES.values():  # composition x temperature (K), as the phase-2d simulator's box
        check(h, lo=(0.0, 100.0), hi=(1.0, 700.0))
        check(h, lo=(0.0, 0.0), hi=(0.5, 1.0))


def test_check_names_the_parameters_and_point_where_a_law_breaks():
    """The law as it was written before (the plain power of the smoothed kink): its gradient in x_c is NaN
    once a point lies about 0.75 of the span above x_c."""
    plain = replace(
        BUILTIN["second-order"], mean=lambda x, p: p["A"] * smooth_relu(p["x_c"] - x[..., 0], p["delta"]) ** p["beta"]
    )
    with pytest.raises(HypothesisError) as info:
        check(plain, lo=(0.0,), hi=(1.0,))
    err = info.value
    assert err.hypothesis == "second-order" and err.what.startswith("gradient of")
    assert set(err.parameters) == {"A", "x_c", "beta"}
    # the point it names really does break the law there
    frame = Frame(lo=(0.0,), span=(1.0,), s=1.0)
    rel = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in err.parameters.items()}
    m = relative_mean(plain, frame, torch.tensor([err.point], dtype=torch.float64), rel)
    grads = torch.autograd.grad(m.sum(), list(rel.values()))
    assert not all(torch.isfinite(g) for g in grads)
    assert err.point[0] - err.parameters["x_c"] > 0.7  # far above the critical point, where the kink underflows


def test_check_catches_a_value_that_is_not_finite_and_a_campaign_refuses_the_law():
    from abduce.controller.core.campaign import Campaign
    from abduce.controller.core.space import Space
    from abduce.controller.decide.stopping import Budget

    log_law = Hypothesis(
        "log-law",
        lambda x, p: p["a"] * torch.log(x[..., 0]),
        (Parameter("a", unit="y"),),
        doc="m = a log x, which is -inf at x = 0",
    )
    with pytest.raises(HypothesisError, match="the value is not finite") as info:
        check(log_law, lo=(0.0,), hi=(1.0,))
    assert info.value.point == (0.0,)
    with pytest.raises(HypothesisError, match="log-law"):
        Campaign(Space.box([(0.0, 1.0)]), [log_law], "discriminate", None, Budget(5), seed=0)
    Campaign(Space.box([(0.5, 1.0)]), [log_law], "discriminate", None, Budget(5), seed=0)  # fine away from 0
    assert math.isfinite(float(log_law.mean(torch.tensor([[0.5]]), {"a": torch.tensor(1.0)})[0]))
