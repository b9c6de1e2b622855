import pytest

from abduce.hypotheses.declaration import Hypothesis, Parameter
from abduce.hypotheses.errors import FitError
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN

LO, SPAN = (0.0,), (1.0,)


def test_fit_recovers_the_transition(transition_data):
    u, y = transition_data
    fit = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0), FitSettings())
    model = fit.model(u, y)
    values = {k: float(v.detach()) for k, v in model.physics.values().items()}
    assert values["x_c"] == pytest.approx(0.6, abs=0.05)
    assert values["beta"] == pytest.approx(0.5, abs=0.2)
    assert fit.n == 40 and fit.starts >= 2


def test_warm_start_on_the_same_data_never_loses_the_optimum(transition_data):
    u, y = transition_data
    cold = fit_hypothesis(FitProblem(BUILTIN["sigmoid"], u, y, LO, SPAN, seed=0), FitSettings())
    warm = fit_hypothesis(FitProblem(BUILTIN["sigmoid"], u, y, LO, SPAN, warm=cold, seed=1), FitSettings())
    assert warm.log_posterior >= cold.log_posterior - 1e-6


def test_warm_start_survives_a_new_data_scale(transition_data):
    u, y = transition_data
    cold = fit_hypothesis(FitProblem(BUILTIN["second-order"], u[:20], y[:20], LO, SPAN, seed=0), FitSettings())
    doubled = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, 2 * y, LO, SPAN, warm=cold, seed=0), FitSettings())
    a_cold = cold.frame.to_physical(BUILTIN["second-order"].parameters[0], cold.model(u, y).physics.value("A"))
    a_new = doubled.frame.to_physical(BUILTIN["second-order"].parameters[0], doubled.model(u, 2 * y).physics.value("A"))
    assert float(a_new) == pytest.approx(2 * float(a_cold), rel=0.3)


def test_fitting_deterministic_for_a_seed(transition_data):
    u, y = transition_data
    a = fit_hypothesis(FitProblem(BUILTIN["first-order"], u, y, LO, SPAN, seed=3), FitSettings())
    b = fit_hypothesis(FitProblem(BUILTIN["first-order"], u, y, LO, SPAN, seed=3), FitSettings())
    assert a.log_posterior == b.log_posterior


def test_a_mean_that_is_always_nan_raises_a_typed_error(transition_data):
    u, y = transition_data
    broken = Hypothesis("broken", lambda x, p: p["a"] * x[..., 0] * float("nan"), (Parameter("a"),))
    with pytest.raises(FitError) as info:
        fit_hypothesis(FitProblem(broken, u, y, LO, SPAN, seed=0), FitSettings())
    assert info.value.hypothesis == "broken" and info.value.n == 40


@pytest.mark.parametrize("explore_every,n,expected", [(4, 36, 2), (0, 36, 1), (4, 35, 1)])
def test_a_warm_fit_also_starts_from_the_screen_every_few_points(transition_data, explore_every, n, expected):
    """A warm state that beats every screened draw under the prior-median kernel (here: the optimum itself)
    is the only start, except when n is a multiple of explore_every: then the best draw is started too, so
    a warm state stuck in a local optimum is left (FitSettings.explore_every)."""
    from abduce.hypotheses.fitting import plan_fit

    u, y = transition_data
    u, y = u[:n], y[:n]
    settings = FitSettings(explore_every=explore_every)
    warm = fit_hypothesis(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, seed=0), settings)
    plan = plan_fit(FitProblem(BUILTIN["second-order"], u, y, LO, SPAN, warm=warm, seed=1), settings)
    assert len(plan.starts) == expected


def test_explore_every_must_not_be_negative():
    from abduce.controller.errors import ConfigError

    with pytest.raises(ConfigError, match="explore_every"):
        FitSettings(explore_every=-1)
