"""Batched fitting of several hypotheses equals fitting them one by one (within rounding)."""

import dataclasses

import pytest
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from abduce.hypotheses.batched import fit_hypotheses_batched, negative_log_posteriors
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis, plan_fit
from abduce.hypotheses.library import BUILTIN

NAMES = ("second-order", "first-order", "linear", "sigmoid")
LO, SPAN = (0.0,), (1.0,)


def _assert_the_objective_is_gpytorchs(plans, u):
    """Every start of every plan: the batched objective equals GPyTorch's exact marginal likelihood."""
    models = [p.start_model(state) for p in plans for state in p.starts]
    ours = negative_log_posteriors(models, u, plans[0].v)
    for model, value in zip(models, ours):
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with torch.no_grad():
            assert float(value) == pytest.approx(-float(mll(model(u), plans[0].v)), rel=1e-9, abs=1e-9)


def test_batched_objective_is_gpytorchs_exact_marginal_likelihood(transition_data):
    u, y = transition_data
    plans = [plan_fit(FitProblem(BUILTIN[n], u, y, LO, SPAN, seed=1), FitSettings(restarts=2)) for n in NAMES]
    _assert_the_objective_is_gpytorchs(plans, u)


def test_batched_objective_takes_each_members_own_smoothness(transition_data):
    """Members of one batch with Matern nu = 1/2, 3/2 and 5/2: each equals GPyTorch's likelihood of its own."""
    u, y = transition_data
    hyps = [dataclasses.replace(BUILTIN["linear"], name=f"linear-{nu}", nu=nu) for nu in (0.5, 1.5, 2.5)]
    plans = [plan_fit(FitProblem(h, u, y, LO, SPAN, seed=2), FitSettings(restarts=1)) for h in hyps]
    _assert_the_objective_is_gpytorchs(plans, u)


@pytest.mark.parametrize("warm, names", [(False, NAMES), (True, NAMES), (True, NAMES[:1])])
def test_batched_fits_equal_one_by_one_fits(transition_data, warm, names):
    """Four hypotheses (a discriminate step's refits) or one (an epsilon-greedy step's: its starts batched)."""
    u, y = transition_data
    settings = FitSettings(screen=128, restarts=2, maxiter=150)
    warm_fits = (
        {n: fit_hypothesis(FitProblem(BUILTIN[n], u[:30], y[:30], LO, SPAN, seed=7), settings) for n in names}
        if warm
        else {}
    )
    single = [
        fit_hypothesis(FitProblem(BUILTIN[n], u, y, LO, SPAN, warm=warm_fits.get(n), seed=3), settings) for n in names
    ]
    plans = [plan_fit(FitProblem(BUILTIN[n], u, y, LO, SPAN, warm=warm_fits.get(n), seed=3), settings) for n in names]
    batched = fit_hypotheses_batched(plans, settings)
    for one, many in zip(single, batched):
        assert one.hypothesis.name == many.hypothesis.name and one.starts == many.starts
        # the stated tolerance: log posterior per point within 1e-6, every fitted value within 1e-4
        assert many.log_posterior == pytest.approx(one.log_posterior, abs=1e-6)
        for key, value in one.state.items():
            torch.testing.assert_close(
                many.state[key], value, rtol=1e-4, atol=1e-4, msg=f"{one.hypothesis.name}: {key}"
            )
        # the batched log posterior is the optimiser's last value: GPyTorch's at the state it reports
        model = next(p for p in plans if p.hypothesis.name == many.hypothesis.name).start_model(many.state)
        with torch.no_grad():
            gpytorch_value = float(ExactMarginalLogLikelihood(model.likelihood, model)(model(u), plans[0].v))
        assert many.log_posterior == pytest.approx(gpytorch_value, rel=1e-9, abs=1e-9)


def test_a_start_that_fails_fails_alone(transition_data):
    u, y = transition_data
    plans = [
        plan_fit(FitProblem(BUILTIN[n], u, y, LO, SPAN, seed=0), FitSettings(restarts=1)) for n in ("linear", "sigmoid")
    ]
    bad = plans[0].starts[0]
    bad["likelihood.noise_covar.raw_noise"] = torch.full_like(bad["likelihood.noise_covar.raw_noise"], float("nan"))
    fits = fit_hypotheses_batched(plans, FitSettings(restarts=1, maxiter=50))
    assert not hasattr(fits[0], "state") and "linear" in str(fits[0])
    assert fits[1].hypothesis.name == "sigmoid" and fits[1].log_posterior > 0


def test_a_prior_the_batched_objective_does_not_know_is_fitted_one_by_one(transition_data):
    """A hypothesis declared with another GPyTorch prior still fits: its plan falls back to one by one."""
    from gpytorch.priors import GammaPrior

    from abduce.hypotheses import Hypothesis, Parameter
    from abduce.hypotheses.declaration import Uniform

    class Gamma(Uniform):
        def gpytorch_prior(self):
            return GammaPrior(2.0, 2.0)

    line = Hypothesis(
        "gamma-line", lambda x, p: p["a"] * x[..., 0], (Parameter("a", bounds=(0.05, 5.0), prior=Gamma()),)
    )
    u, y = transition_data
    settings = FitSettings(screen=64, restarts=1, maxiter=60)
    [many] = fit_hypotheses_batched([plan_fit(FitProblem(line, u, y, LO, SPAN, seed=3), settings)], settings)
    one = fit_hypothesis(FitProblem(line, u, y, LO, SPAN, seed=3), settings)
    assert many.log_posterior == one.log_posterior
