import torch

from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.posterior import CandidatePosterior


def test_cached_posterior_equals_botorch_and_rank_one_updates_equal_a_rebuild(transition_data):
    u, y = transition_data
    fit = fit_hypothesis(FitProblem(BUILTIN["sigmoid"], u[:25], y[:25], (0.0,), (1.0,), seed=0), FitSettings())
    s = fit.frame.s
    cand = torch.linspace(0, 1, 333, dtype=torch.float64).unsqueeze(-1)
    post = CandidatePosterior(fit.model(u[:25], y[:25]), u[:25], y[:25] / s, cand, chunk=50)
    for i in range(25, 40):
        post.add(u[i], float(y[i]) / s)
    full = fit.model(u, y)
    with torch.no_grad():
        ref = full.posterior(cand)
    torch.testing.assert_close(post.mean, ref.mean[:, 0] * s, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(post.var, ref.variance[:, 0] * s**2, rtol=1e-6, atol=1e-10)
    rebuilt = CandidatePosterior(full, u, y / s, cand)
    torch.testing.assert_close(post.v_factor, rebuilt.v_factor, rtol=1e-8, atol=1e-10)
