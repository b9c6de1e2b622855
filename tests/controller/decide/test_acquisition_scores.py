"""Every acquisition's score on a candidate set, tested on fake posteriors (no GP is fitted).

A :class:`~abduce.hypotheses.posterior.PosteriorAtPoints` is only means, variances and a noise at N
points (relative frame and a scale), so the acquisitions' maths is checked here against numbers
written by hand, as BoTorch tests its acquisition functions with a mock posterior; the tests that
compare the scores with BoTorch's forms on fitted GPs stay in ``test_acquisition.py``.
"""

import math

import pytest
import torch

from abduce.controller.decide.acquisition import (
    ACQUISITIONS,
    UCB_BETA,
    at_points,
    discrimination_score,
    model_information,
)
from abduce.hypotheses.posterior import PosteriorAtPoints

DT = torch.float64


class FakePosterior(PosteriorAtPoints):
    """Given means and latent variances (physical units) at N points, a noise variance and a scale."""

    def __init__(self, mean, var, noise, s=2.0):
        self.s = s
        self.points = torch.linspace(0, 1, len(mean), dtype=DT).unsqueeze(-1)
        self.mean_rel = torch.as_tensor(mean, dtype=DT) / s
        self.var_rel = torch.as_tensor(var, dtype=DT) / s**2
        self.noise_rel = noise / s**2
        self.reductions: list[torch.Tensor] = []

    def variance_reduction(self, reference, chunk=None):
        self.reductions.append(reference)
        return self.var_rel * self.s**2 / (1 + torch.arange(len(self.mean_rel), dtype=DT))


def score(name, posteriors, driver=0, weights=(0.5, 0.5), reference=None):
    reference = torch.arange(len(posteriors[0].mean_rel)) if reference is None else reference
    return ACQUISITIONS[name]().score(posteriors, driver, torch.tensor(weights, dtype=DT), reference)


def test_the_fake_reads_back_in_physical_units():
    p = FakePosterior([1.0, 3.0], [0.04, 0.25], noise=0.01)
    torch.testing.assert_close(p.mean, torch.tensor([1.0, 3.0], dtype=DT))
    torch.testing.assert_close(p.var, torch.tensor([0.04, 0.25], dtype=DT))
    assert p.noise == pytest.approx(0.01) and p.integrated_variance() == pytest.approx(0.145)
    mean, var, noise = at_points([p, FakePosterior([0.0, 0.0], [1.0, 1.0], noise=0.5)])
    assert mean.shape == var.shape == (2, 2) and noise.tolist() == pytest.approx([0.01, 0.5])


def test_variance_ucb_and_nipv_score_the_driving_hypothesis_only():
    driver = FakePosterior([0.0, 1.0, 2.0], [0.09, 0.01, 0.04], noise=0.01)
    other = FakePosterior([5.0, 5.0, 5.0], [9.0, 9.0, 9.0], noise=1.0)
    torch.testing.assert_close(score("variance", [other, driver], driver=1), driver.var)
    assert score("variance", [other, driver], driver=1).argmax() == 0
    ucb = score("ucb", [driver, other], driver=0)
    torch.testing.assert_close(ucb, torch.tensor([0.0 + 2 * 0.3, 1.0 + 2 * 0.1, 2.0 + 2 * 0.2], dtype=DT))
    assert UCB_BETA == 4.0 and ucb.argmax() == 2  # the mean wins over the spread here
    reference = torch.tensor([0, 2])
    nipv = score("nipv", [driver, other], driver=0, reference=reference)
    torch.testing.assert_close(nipv, torch.tensor([0.09, 0.005, 0.04 / 3], dtype=DT))
    assert driver.reductions[-1] is reference and other.reductions == []


def test_discriminate_measures_where_the_hypotheses_disagree_relative_to_their_spread():
    # agree at 0, disagree by 1 at 1 and 2; at 2 both are unsure, so 1 discriminates best
    a = FakePosterior([0.0, 0.0, 0.0], [0.01, 0.01, 1.0], noise=0.01)
    b = FakePosterior([0.0, 1.0, 1.0], [0.01, 0.01, 1.0], noise=0.01)
    got = score("discriminate", [a, b])
    assert got.argmax() == 1 and got[1] > got[2] > got[0]
    # by hand at point 1: s^2 = 0.02 for both, J = 1/2 (0 + 1 * (50 + 50)) = 50, times p_a p_b = 1/4;
    # plus each hypothesis's information 1/2 log(1 + 0.01/0.01), weighted 1/2 + 1/2
    assert got[1].item() == pytest.approx(50 / 4 + 0.5 * math.log(2))
    mean, var, noise = at_points([a, b])
    torch.testing.assert_close(got, discrimination_score(mean, var, noise, torch.tensor([0.5, 0.5], dtype=DT)))


def test_discriminate_fades_to_the_leaders_information_as_it_takes_all_the_probability():
    a = FakePosterior([0.0, 0.0], [0.04, 0.01], noise=0.01)
    b = FakePosterior([1.0, 1.0], [0.01, 0.01], noise=0.01)
    got = score("discriminate", [a, b], weights=(1.0, 0.0))
    torch.testing.assert_close(got, 0.5 * torch.log1p(a.var / a.noise))  # the leader's own information only


def test_model_information_is_zero_where_the_hypotheses_agree_and_at_most_the_entropy_of_p():
    a = FakePosterior([0.0, 0.0, 0.0], [0.01, 0.01, 0.01], noise=0.01)
    b = FakePosterior([0.0, 0.3, 10.0], [0.01, 0.01, 0.01], noise=0.01)
    for weights in ((0.5, 0.5), (0.9, 0.1)):
        got = score("model-information", [a, b], weights=weights)
        entropy = -sum(p * math.log(p) for p in weights)
        assert got[0].item() == pytest.approx(0.0, abs=1e-9)  # they predict alike
        assert 0 < got[1] < got[2] <= entropy + 1e-9
        assert got[2].item() == pytest.approx(entropy, rel=1e-6)  # 100 sd apart: the reading names the law
    assert score("model-information", [a, b], weights=(1.0, 0.0)).abs().max() < 1e-12  # nothing left to learn
    mean, var, noise = at_points([a, b])
    torch.testing.assert_close(
        score("model-information", [a, b]), model_information(mean, var, noise, torch.tensor([0.5, 0.5], dtype=DT))
    )
