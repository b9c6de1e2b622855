import pytest
import torch
from botorch.acquisition.active_learning import qNegIntegratedPosteriorVariance

from abduce.controller.decide.acquisition import (
    ACQUISITIONS,
    IntegratedVarianceReduction,
    discrimination_score,
)
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.posterior import CandidatePosterior


@pytest.fixture
def fitted(transition_data):
    u, y = transition_data
    u, y = u[::3], y[::3]
    models = []
    for name in ("second-order", "sigmoid"):
        fit = fit_hypothesis(FitProblem(BUILTIN[name], u, y, (0.0,), (1.0,), seed=0), FitSettings(screen=64))
        models.append((fit.model(u, y), fit.frame.s))
    return u, y, models


def test_closed_form_nipv_equals_botorch_qnipv(fitted):
    u, _, models = fitted
    model = models[0][0]
    reference = torch.linspace(0, 1, 64, dtype=torch.float64).unsqueeze(-1)
    X = torch.linspace(0, 1, 17, dtype=torch.float64).reshape(17, 1, 1)
    ours = IntegratedVarianceReduction(model, reference)(X)
    theirs = qNegIntegratedPosteriorVariance(model, mc_points=reference)(X)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-10)


def test_finite_set_nipv_ranks_candidates_as_the_botorch_form(fitted):
    u, y, models = fitted
    model, s = models[0]
    cand = torch.linspace(0, 1, 101, dtype=torch.float64).unsqueeze(-1)
    post = CandidatePosterior(model, u, y / s, cand)
    finite = post.variance_reduction(torch.arange(101))
    continuous = IntegratedVarianceReduction(model, cand)(cand.unsqueeze(1))
    # NIPV = -(IV_now - reduction): same maths, offset by a constant and scaled by s^2
    torch.testing.assert_close(finite / s**2, continuous - continuous.min() + finite.min() / s**2, rtol=1e-6, atol=1e-9)


def test_discrimination_is_zero_for_identical_certain_models_and_symmetric():
    mean = torch.tensor([[1.0, 2.0], [1.0, 2.5]], dtype=torch.float64)
    var = torch.full((2, 2), 1e-12, dtype=torch.float64)
    noise = torch.tensor([0.1, 0.1], dtype=torch.float64)
    w = torch.tensor([0.5, 0.5], dtype=torch.float64)
    score = discrimination_score(mean, var, noise, w)
    assert score[0].item() == pytest.approx(0.0, abs=1e-9)
    assert score[1].item() > 0.3
    swapped = discrimination_score(mean.flip(0), var, noise.flip(0), w)
    torch.testing.assert_close(score, swapped)


def test_discrimination_of_two_hypotheses_equals_a_hand_computation():
    """Two predictive normals N(0, 0.02) and N(1, 0.05) (latent variances 0.01 and 0.04 plus noise 0.01),
    probabilities 1/4 and 3/4. The symmetric KL divergence is taken by quadrature of its integrand, not
    from the closed form the code uses; the information terms are 1/2 log(1 + var/noise) by hand."""
    import math

    from scipy import integrate

    def pdf(y, m, v):
        return math.exp(-((y - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    def kl(m1, v1, m2, v2):
        f = lambda y: pdf(y, m1, v1) * (math.log(pdf(y, m1, v1)) - math.log(pdf(y, m2, v2)))
        return integrate.quad(f, m1 - 12 * math.sqrt(v1), m1 + 12 * math.sqrt(v1), epsabs=1e-12, limit=200)[0]

    j = kl(0.0, 0.02, 1.0, 0.05) + kl(1.0, 0.05, 0.0, 0.02)
    assert j == pytest.approx(35.45, rel=1e-9)  # 1/2 [(0.03^2)/(0.02 * 0.05) + 1 * (50 + 20)], by hand
    expected = 0.25 * 0.75 * j + 0.25 * 0.5 * math.log(2.0) + 0.75 * 0.5 * math.log(5.0)
    mean = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    var = torch.tensor([[0.01], [0.04]], dtype=torch.float64)
    noise = torch.tensor([0.01, 0.01], dtype=torch.float64)
    w = torch.tensor([0.25, 0.75], dtype=torch.float64)
    assert discrimination_score(mean, var, noise, w).item() == pytest.approx(expected, rel=1e-9)


def test_discrimination_fades_when_one_hypothesis_holds_all_the_probability():
    mean = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    var = torch.full((2, 1), 1e-12, dtype=torch.float64)
    noise = torch.tensor([0.1, 0.1], dtype=torch.float64)
    sure = discrimination_score(mean, var, noise, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert sure.item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ["discriminate", "model-information"])
def test_the_botorch_form_equals_the_finite_set_score(fitted, name):
    u, y, models = fitted
    cand = torch.linspace(0, 1, 41, dtype=torch.float64).unsqueeze(-1)
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    posts = [CandidatePosterior(m, u, y / s, cand) for m, s in models]
    finite = ACQUISITIONS[name]().score(posts, 0, w, torch.arange(41))
    continuous = ACQUISITIONS[name]().botorch([m for m, _ in models], 0, w, None)(cand.unsqueeze(1))
    torch.testing.assert_close(finite, continuous.detach(), rtol=1e-6, atol=1e-9)


def test_unknown_acquisition_names_the_known_ones():
    with pytest.raises(KeyError, match="nipv"):
        ACQUISITIONS["nope"]


def test_model_information_equals_the_mutual_information_by_quadrature():
    """I(y; H) for three hypotheses at two points against scipy's quadrature of
    sum_i p_i int N_i(y) log(N_i(y) / q(y)) dy; and its limits: log 2 for two far-apart equiprobable
    hypotheses, 0 for identical ones or one that holds all the probability."""
    import math

    from scipy import integrate

    from abduce.controller.decide.acquisition import model_information

    mean = torch.tensor([[0.0, 1.0], [0.3, 1.0], [1.5, -2.0]], dtype=torch.float64)
    var = torch.tensor([[0.01, 0.2], [0.05, 0.1], [0.2, 0.3]], dtype=torch.float64)
    noise = torch.tensor([0.02, 0.05, 0.01], dtype=torch.float64)
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    got, fine = model_information(mean, var, noise, w), model_information(mean, var, noise, w, nodes=128)
    for b in range(2):
        mu, s2 = mean[:, b].tolist(), (var[:, b] + noise).tolist()
        pdf = lambda y, i: math.exp(-((y - mu[i]) ** 2) / (2 * s2[i])) / math.sqrt(2 * math.pi * s2[i])
        q = lambda y: sum(float(w[j]) * pdf(y, j) for j in range(3))
        total = 0.0
        for i in range(3):
            f = lambda y: pdf(y, i) * (math.log(pdf(y, i)) - math.log(q(y))) if pdf(y, i) > 0 else 0.0
            sd = math.sqrt(s2[i])
            total += float(w[i]) * integrate.quad(f, mu[i] - 12 * sd, mu[i] + 12 * sd, limit=400, epsabs=1e-13)[0]
        assert float(fine[b]) == pytest.approx(total, rel=1e-7, abs=1e-10)  # the formula, to quadrature's accuracy
        assert float(got[b]) == pytest.approx(total, rel=1e-4)  # the default nodes: ample to rank candidates
    far = model_information(
        torch.tensor([[0.0], [50.0]], dtype=torch.float64),
        torch.zeros(2, 1, dtype=torch.float64),
        torch.tensor([1.0, 1.0], dtype=torch.float64),
        torch.tensor([0.5, 0.5], dtype=torch.float64),
    )
    assert float(far) == pytest.approx(math.log(2), rel=1e-9)
    same = model_information(
        torch.ones(2, 1, dtype=torch.float64),
        torch.ones(2, 1, dtype=torch.float64),
        torch.tensor([1.0, 1.0], dtype=torch.float64),
        torch.tensor([0.5, 0.5], dtype=torch.float64),
    )
    assert float(same) == pytest.approx(0.0, abs=1e-12)
    sure = model_information(mean, var, noise, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(sure, torch.zeros(2, dtype=torch.float64), atol=1e-12)
