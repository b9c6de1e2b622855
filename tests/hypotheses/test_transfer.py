"""Priors transferred from a past campaign (hypotheses/transfer.py): the mixture's density, CDF and draws,
the conversion from physical units in a fit's frame, the law weights, and the evidence under such a prior."""

import math

import pytest
import torch

from abduce.controller.errors import ConfigError
from abduce.hypotheses.declaration import Frame, Hypothesis, LogNormal, Normal, Parameter, Uniform
from abduce.hypotheses.evidence import log_evidence
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis, log_prior, prior_draws
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.model import relative_mean
from abduce.hypotheses.transfer import (
    Mixture,
    Transferred,
    declared_shares,
    joint_from_unit,
    joint_log_prob,
    law_weights,
    transferred,
)

LO, SPAN = (0.0,), (1.0,)


def _normalised_and_drawn_as_its_cdf(m: Mixture, lo: float, hi: float) -> None:
    """``m`` integrates to 1 over ``[lo, hi]``, and its draws (a part picked by the uniform, then that part's
    inverse CDF) follow its CDF."""
    grid = torch.linspace(lo, hi, 200001, dtype=torch.float64)
    assert torch.trapezoid(m.log_prob(grid, lo, hi).exp(), grid).item() == pytest.approx(1.0, abs=1e-4)
    r = torch.sort(m.from_unit((torch.arange(20000, dtype=torch.float64) + 0.5) / 20000, lo, hi)).values
    empirical = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    assert (m.cdf(r, lo, hi) - empirical).abs().max().item() < 1e-3


@pytest.mark.parametrize("declared", [Uniform(), Normal(0.4, 0.5), LogNormal(median=0.3, sigma=0.8)])
def test_the_mixture_is_a_normalised_density_whose_draws_follow_its_cdf(declared):
    log = isinstance(declared, LogNormal)  # its past part log-normal, about as wide
    m = Mixture(declared, mean=0.7, sd=0.03 / 0.7 if log else 0.03, share=0.2, lo=0.05, hi=1.0, log=log)
    _normalised_and_drawn_as_its_cdf(m, 0.05, 1.0)
    # 80% of the mass sits within 3 sd of the past mean, and the declared prior keeps the rest
    inside = (m.cdf(torch.tensor(0.79), 0.05, 1.0) - m.cdf(torch.tensor(0.61), 0.05, 1.0)).item()
    outside = (declared.cdf(torch.tensor(0.79), 0.05, 1.0) - declared.cdf(torch.tensor(0.61), 0.05, 1.0)).item()
    assert inside == pytest.approx(0.8 * 0.9973 + 0.2 * outside, abs=1e-3)
    assert m.gpytorch_prior().log_prob(torch.tensor(0.7, dtype=torch.float64)).item() == pytest.approx(
        m.log_prob(torch.tensor(0.7, dtype=torch.float64), 0.05, 1.0).item()
    )


def test_a_mixture_with_a_carried_part_is_a_normalised_density_whose_draws_follow_its_cdf():
    """Three parts: the declared prior (0.2), the quantity carried over from the last sample's laws (0.3, near
    0.3) and the law's own past posterior (0.5, near 0.7)."""
    m = Mixture(Uniform(), 0.7, 0.03, 0.2, 0.0, 1.0, carry=0.3, carried_mean=0.3, carried_sd=0.02)
    _normalised_and_drawn_as_its_cdf(m, 0.0, 1.0)
    near = (m.cdf(torch.tensor(0.36), 0.0, 1.0) - m.cdf(torch.tensor(0.24), 0.0, 1.0)).item()
    assert near == pytest.approx(0.3 * 0.9973 + 0.2 * 0.12, abs=1e-3)  # the carried part and the declared's
    # a law the past campaign did not fit: no past part (outside), the declared prior stands in for it
    alone = Mixture(Uniform(), 0.5, 1.0, 0.5, 0.0, 1.0, outside=True, carry=0.5, carried_mean=0.3, carried_sd=0.02)
    assert not alone.alone
    assert alone.log_prob(torch.tensor(0.3), 0.0, 1.0).exp().item() == pytest.approx(
        0.5 + 0.5 / (0.02 * 2.5066), rel=1e-3
    )
    assert Mixture(Uniform(), 0.5, 1.0, 0.5, 0.0, 1.0, outside=True).alone  # nothing carried: declared alone


def test_a_law_the_past_campaign_did_not_fit_takes_the_carried_quantities_in_its_changed_part():
    """A first-order jump after a power law: its x_c from the power law's posterior (sd / sqrt(tau), widened by
    the drift), in the part of its prior where the law changed and the sample went on."""
    jump = BUILTIN["first-order"]
    carried = {("x_c", "x", 0): (310.0, 2.0)}
    h = transferred(jump, {}, {}, temper=0.25, share=0.5, drift=0.1, carried=carried, carry=0.5)
    priors = {p.name: p.prior for p in h.in_frame(Frame(lo=(300.0,), span=(50.0,), s=8.0)).parameters}
    x_c = priors["x_c"]
    assert isinstance(x_c, Mixture) and x_c.outside and (x_c.share, x_c.carry) == (0.5, 0.5)
    assert (x_c.carried_mean, x_c.carried_sd) == pytest.approx((0.2, math.hypot(4.0 / 50.0, 0.1)))
    assert not isinstance(priors["A"], Mixture)  # nothing carried for it: its declared prior
    # no carry (a run journalled before it): the carried quantities are not used
    assert transferred(jump, {}, {}, temper=0.25, share=1.0, carried=carried) == jump


def test_a_transferred_prior_is_converted_in_each_fits_frame_and_never_evaluated_without_one():
    h = transferred(BUILTIN["second-order"], {"x_c": (310.0, 2.0), "A": (4.0, 0.5)}, {}, temper=0.25, share=0.2)
    x_c = next(p for p in h.parameters if p.name == "x_c")
    assert isinstance(x_c.prior, Transferred) and x_c.prior.sd == pytest.approx(4.0)  # 2 / sqrt(0.25)
    with pytest.raises(ConfigError, match="physical units"):
        prior_draws(h, 8, 0)
    framed = h.in_frame(Frame(lo=(300.0,), span=(50.0,), s=8.0))  # a space 300-350 K, data up to 8
    priors = {p.name: p.prior for p in framed.parameters}
    assert isinstance(priors["x_c"], Mixture)
    assert (priors["x_c"].mean, priors["x_c"].sd) == pytest.approx((0.2, 4.0 / 50.0))
    assert (priors["A"].mean, priors["A"].sd) == pytest.approx((0.5, 0.5 / math.sqrt(0.25) / 8.0))
    assert priors["beta"] is next(p.prior for p in BUILTIN["second-order"].parameters if p.name == "beta")
    # the same sample measured on another range: the past critical point lies outside it, the declared prior
    # weighs alone (still a Mixture: a fit's state keeps the same priors from frame to frame)
    elsewhere = next(p.prior for p in h.in_frame(Frame(lo=(400.0,), span=(50.0,), s=8.0)).parameters if p.name == "x_c")
    assert isinstance(elsewhere, Mixture) and elsewhere.outside and elsewhere.declared is x_c.prior.declared
    r = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    assert torch.allclose(elsewhere.log_prob(r, 0.0, 1.0), x_c.prior.declared.log_prob(r, 0.0, 1.0))
    assert h.as_declared() == BUILTIN["second-order"]
    # a drift of 0.1: the sd widened by a tenth of the parameter's relative range, in quadrature (a random walk)
    drifting = transferred(BUILTIN["second-order"], {"x_c": (310.0, 2.0)}, {}, temper=0.25, share=0.2, drift=0.1)
    p = next(p for p in drifting.in_frame(Frame(lo=(300.0,), span=(50.0,), s=8.0)).parameters if p.name == "x_c")
    lo, hi = p.bounds
    assert p.prior.sd == pytest.approx(math.hypot(4.0 / 50.0, 0.1 * (hi - lo)))
    assert BUILTIN["second-order"].in_frame(Frame(lo=(0.0,), span=(1.0,), s=1.0)) is BUILTIN["second-order"]
    # an exponent, whose declared prior is log-normal: its past part and drift in log beta, so that the
    # drift does not lend beta ~ 0.05 (a power law all but a jump) the mass of its neighbours
    beta = next(p for p in drifting.parameters if p.name == "beta")
    exponent = transferred(BUILTIN["second-order"], {"beta": (0.25, 0.02)}, {}, temper=0.25, share=0.2, drift=0.1)
    q = next(p.prior for p in exponent.in_frame(Frame(lo=(300.0,), span=(50.0,), s=8.0)).parameters if p.name == "beta")
    assert q.log and q.mean == pytest.approx(0.25)
    assert q.sd == pytest.approx(math.hypot(0.04 / 0.25, 0.1 * math.log(2.0 / 0.05)))
    small = (q._normal(q.mean, q.sd).cdf(torch.tensor(0.1), *beta.bounds)).item()
    linear = Normal(0.25, math.hypot(0.04, 0.1 * 1.95)).cdf(torch.tensor(0.1), *beta.bounds).item()
    assert small < 0.02 < 0.05 < linear


@pytest.mark.parametrize(
    "moments, units, temper, message",
    [
        ({"x_c2": (0.3, 0.01)}, {}, 0.5, "no free parameter 'x_c2'"),
        ({"x_c": (0.3, 0.0)}, {}, 0.5, "sd > 0"),
        ({"x_c": (math.nan, 0.1)}, {}, 0.5, "finite"),
        ({"x_c": (0.3, 0.01)}, {"x_c": ("y", 0)}, 0.5, "unit 'x' on axis 0"),
        ({"x_c": (0.3, 0.01)}, {}, 0.0, "temper must be in"),
    ],
)
def test_a_transfer_that_does_not_fit_the_law_is_refused_naming_what(moments, units, temper, message):
    with pytest.raises(ConfigError, match=message):
        transferred(BUILTIN["second-order"], moments, units, temper=temper, share=0.2)


def test_the_laws_prior_mixes_the_declared_one_with_the_tempered_past_probabilities():
    w = law_weights([1.0, 1.0, 1.0, 1.0], [0.9, 0.09, 0.01, None], temper=0.5, share=0.2)
    assert sum(w) == pytest.approx(4.0)
    q = [math.sqrt(0.9), math.sqrt(0.09), math.sqrt(0.01)]
    assert w[0] == pytest.approx(4.0 * (0.2 * 0.25 + 0.8 * q[0] / sum(q)))
    assert w[3] == pytest.approx(4.0 * 0.2 * 0.25)  # not weighed by the past campaign: its declared share only
    assert law_weights([1.0, 1.0, 0.1], [None, None, None], temper=0.5, share=0.2) == pytest.approx([1.0, 1.0, 0.1])
    assert law_weights([1.0, 1.0], [0.7, 0.3], temper=1.0, share=1.0) == pytest.approx([1.0, 1.0])


def test_each_laws_declared_share_is_the_new_sample_branch_of_its_prior():
    base, past = [1.0, 1.0, 1.0, 1.0], [0.9, 0.09, 0.01, None]
    w, pi = declared_shares(base, past, temper=0.5, share=0.2), law_weights(base, past, temper=0.5, share=0.2)
    q = [math.sqrt(0.9), math.sqrt(0.09), math.sqrt(0.01)]
    assert w[0] == pytest.approx(0.2 * 0.25 / (0.2 * 0.25 + 0.8 * q[0] / sum(q)))
    assert w[3] == 1.0  # a law the past campaign did not weigh: the declared prior alone
    # pi_h w_h = lambda beta_h: the new-sample branch holds lambda of the prior, spread as declared
    assert [a * b / 4.0 for a, b in zip(w, pi)] == pytest.approx([0.05] * 4)
    assert declared_shares([1.0, 1.0], [0.7, 0.3], temper=1.0, share=1.0) == [1.0, 1.0]


def _two_transferred(share):
    lo, hi = 0.05, 2.0
    free = (
        Parameter("x_c", bounds=(0.0, 1.0), prior=Mixture(Uniform(), 0.7, 0.03, share, 0.0, 1.0)),
        Parameter("beta", bounds=(lo, hi), prior=Mixture(LogNormal(median=0.3, sigma=0.4), 0.4, 0.05, share, lo, hi)),
        Parameter("c", bounds=(-1.0, 1.0), prior=Normal(0.0, 0.5)),
    )
    return free


def test_a_laws_transferred_parameters_share_one_joint_prior_whose_draws_follow_it():
    """Either the sample is like the last (every parameter near the past posterior) or new (every parameter
    from the declared prior): a sample whose parameters all moved keeps ``w`` of the declared mass, not
    ``w^k`` as a mixture per parameter would give it."""
    free = _two_transferred(share=0.1)
    grid = torch.linspace(0.0, 1.0, 1201, dtype=torch.float64), torch.linspace(0.05, 2.0, 2401, dtype=torch.float64)
    x, b = torch.meshgrid(*grid, indexing="ij")
    relative = {"x_c": x, "beta": b, "c": torch.zeros_like(x)}
    density = (joint_log_prob(free, relative) - Normal(0.0, 0.5).log_prob(torch.tensor(0.0), -1.0, 1.0)).exp()
    mass = torch.trapezoid(torch.trapezoid(density, b[0], dim=1), x[:, 0]).item()
    assert mass == pytest.approx(1.0, abs=2e-3)
    far = {"x_c": torch.tensor(0.2), "beta": torch.tensor(1.5), "c": torch.tensor(0.0)}  # both moved
    declared = sum(p.prior.declared.log_prob(far[p.name], *p.bounds) for p in free)
    assert joint_log_prob(free, far).item() == pytest.approx(declared.item() + math.log(0.1), abs=1e-6)
    per_parameter = sum(p.prior.log_prob(far[p.name], *p.bounds) for p in free)
    assert per_parameter.item() < joint_log_prob(free, far).item() - 2.0  # 0.1^2 against 0.1
    # draws: a tenth from the declared prior, in both coordinates at once, and each marginal the mixture's
    unit = torch.quasirandom.SobolEngine(3, scramble=True, seed=3).draw(4096, dtype=torch.float64)
    draws = joint_from_unit(free, unit)
    near = ((draws[:, 0] - 0.7).abs() < 0.15) & ((draws[:, 1] - 0.4).abs() < 0.25)
    assert (~near).float().mean().item() == pytest.approx(0.1 * 0.88, abs=0.02)  # declared draws away from both
    for i, p in enumerate(free):
        r = torch.sort(draws[:, i]).values
        empirical = torch.arange(1, len(r) + 1, dtype=torch.float64) / len(r)
        assert (p.prior.cdf(r, *p.bounds) - empirical).abs().max().item() < 0.01
    assert joint_from_unit(_two_transferred(share=1.0), unit[:8]).shape == (8, 3)


def test_a_joint_prior_with_a_carried_part_picks_one_part_for_all_of_a_laws_parameters():
    """Like the last (0.5), law changed with the sample's x_c carried over and beta declared (0.3), new (0.2):
    a draw takes x_c near the carried 0.3 exactly when it takes the carried part, and the density is the
    three products' sum."""
    lo, hi = 0.05, 2.0
    kw = {"carry": 0.3}
    free = (
        Parameter(
            "x_c",
            bounds=(0.0, 1.0),
            prior=Mixture(Uniform(), 0.7, 0.03, 0.2, 0.0, 1.0, carried_mean=0.3, carried_sd=0.02, **kw),
        ),
        Parameter(
            "beta", bounds=(lo, hi), prior=Mixture(LogNormal(median=0.3, sigma=0.4), 0.4, 0.05, 0.2, lo, hi, **kw)
        ),
    )
    grid = torch.linspace(0.0, 1.0, 1201, dtype=torch.float64), torch.linspace(lo, hi, 2401, dtype=torch.float64)
    x, b = torch.meshgrid(*grid, indexing="ij")
    mass = torch.trapezoid(torch.trapezoid(joint_log_prob(free, {"x_c": x, "beta": b}).exp(), b[0], dim=1), x[:, 0])
    assert mass.item() == pytest.approx(1.0, abs=2e-3)
    at = {"x_c": torch.tensor(0.3), "beta": torch.tensor(1.5)}  # x_c carried, beta far from its past: declared
    beta = free[1].prior.base.log_prob(at["beta"], lo, hi)
    expect = math.log(
        0.3 * math.exp(-0.5 * 0) / (0.02 * math.sqrt(2 * math.pi)) * beta.exp().item() + 0.2 * beta.exp().item()
    )
    assert joint_log_prob(free, at).item() == pytest.approx(expect, abs=1e-3)
    unit = torch.quasirandom.SobolEngine(2, scramble=True, seed=5).draw(4096, dtype=torch.float64)
    draws = joint_from_unit(free, unit)
    carried = (draws[:, 0] - 0.3).abs() < 0.08
    assert carried.float().mean().item() == pytest.approx(0.3 + 0.2 * 0.16, abs=0.02)
    for i, p in enumerate(free):  # each marginal the mixture's
        r = torch.sort(draws[:, i]).values
        empirical = torch.arange(1, len(r) + 1, dtype=torch.float64) / len(r)
        assert (p.prior.cdf(r, *p.bounds) - empirical).abs().max().item() < 0.01


def test_the_evidence_under_a_transferred_prior_matches_quadrature(transition_data):
    """The importance-sampled evidence integrates against the mixture in the fit's frame: checked against a
    quadrature over the one free parameter, with the kernel fixed (as in test_evidence.py)."""
    u, y = transition_data
    level = Hypothesis(
        "level", lambda x, p: p["c"] + 0 * x[..., 0], (Parameter("c", bounds=(-1.5, 1.5), unit="y"),)
    )  # fmt: skip
    h = transferred(level, {"c": (0.35, 0.05)}, {}, temper=0.5, share=0.3)
    fit = fit_hypothesis(FitProblem(h, u, y, LO, SPAN, seed=0), FitSettings())
    model = fit.model(u, y)
    assert isinstance(model.hypothesis.parameters[0].prior, Mixture)
    estimate = log_evidence(model, u, y, samples=512, seed=0).evidence()
    frame = model.frame
    k = model.covar_module(u).to_dense() + model.likelihood.noise * torch.eye(len(u), dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(len(u), dtype=torch.float64), covariance_matrix=k.detach())
    grid = torch.linspace(-1.5, 1.5, 40001, dtype=torch.float64)
    means = relative_mean(model.hypothesis, frame, u, {"c": grid.unsqueeze(-1)})
    log_p = log_prior(model.hypothesis, {"c": grid.unsqueeze(-1)}).squeeze(-1)
    integrand = (mvn.log_prob(y / frame.s - means) + log_p).exp()
    exact = math.log(torch.trapezoid(integrand, grid).item()) - len(u) * math.log(frame.s)
    assert estimate.log_z - estimate.log_occam == pytest.approx(exact, abs=0.05)


def test_a_warm_fit_across_a_change_of_data_scale_keeps_its_priors_state(transition_data):
    """A law whose amplitude prior is a declared normal, transferred: as the data scale grows, the past normal
    leaves the relative bounds and comes back; the warm start loads the last fit's state into the new model,
    which must hold the same priors (found by a review: a declared NormalPrior's buffers against none)."""
    u, y = transition_data
    c = Parameter("c", bounds=(-1.5, 1.5), unit="y", prior=Normal(0.0, 1.0))
    level = Hypothesis("level", lambda x, p: p["c"] + 0 * x[..., 0], (c,))
    h = transferred(level, {"c": (0.5, 0.005)}, {}, temper=1.0, share=0.2)
    # data up to 0.25: the past 0.5 is 2.0 in relative units, outside the bounds (its normal holds nothing there)
    small = fit_hypothesis(FitProblem(h, u, 0.25 * y / y.abs().max(), LO, SPAN, seed=0), FitSettings())
    big = fit_hypothesis(FitProblem(h, u, 4.0 * y / y.abs().max(), LO, SPAN, seed=0, warm=small), FitSettings())
    assert big.n == len(u)


def test_interchangeable_parts_keep_their_declared_priors():
    """Two copies of a law in a sum are ordered, their prior doubled on the ordered half: right only while the
    parts' priors are identical, which two past posteriors are not (found by a review: a prior of mass 1.78)."""
    from abduce.hypotheses.grammar import sum_of

    two = sum_of([BUILTIN["second-order"], BUILTIN["second-order"]])
    h = transferred(two, {"x_c_1": (0.3, 0.01), "x_c_2": (0.75, 0.01)}, {}, temper=1.0, share=0.2)
    assert h == two
