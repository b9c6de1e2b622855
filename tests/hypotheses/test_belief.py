"""The belief's arithmetic, on fake fitted states (no GP fitted): the prior over the laws and "none of
these", the noise floor, the memory-capped switch, and refits restored from journalled states."""

import math
from dataclasses import dataclass

import pytest
import torch

from abduce.controller.errors import ConfigError
from abduce.hypotheses.belief import Belief, InferenceSettings
from abduce.hypotheses.evidence import Evidence
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN, NONE_OF_THESE

POINTS = torch.linspace(0, 1, 51, dtype=torch.float64).unsqueeze(-1)
LAWS = [BUILTIN["second-order"], BUILTIN["linear"], BUILTIN["sigmoid"]]


@dataclass
class FakeTracker:
    log_z: float
    log_z_se: float = 0.0

    def evidence(self) -> Evidence:
        return Evidence(log_z=self.log_z, mean={"a": 1.0}, sd={"a": 0.1}, ess=100.0, log_z_se=self.log_z_se)


class FakePosterior:
    def integrated_variance(self) -> float:
        return 0.25


def belief_with(log_z: dict[str, float], none: float | None, se: dict[str, float] | None = None, **settings):
    b = Belief(LAWS, POINTS, (0.0,), (1.0,), InferenceSettings(**settings))
    for slot in b.all_slots():
        name = slot.hypothesis.name
        value = none if slot is b.none else log_z.get(name)
        if value is not None:
            slot.fit, slot.posterior = object(), FakePosterior()
            slot.evidence = FakeTracker(value, (se or {}).get(name, 0.0))
    return b


def test_probabilities_weigh_each_law_by_an_equal_share_of_one_minus_the_none_prior():
    log_z = {"second-order": 2.0, "linear": 0.5, "sigmoid": -1.0}
    weighed = belief_with(log_z, none=1.5, none_prior=0.2).weigh()
    # P_i = pi_i Z_i / sum_j pi_j Z_j with pi_law = 0.8 / 3 and pi_none = 0.2, written out
    terms = {n: 0.8 / 3 * math.exp(v) for n, v in log_z.items()} | {"none": 0.2 * math.exp(1.5)}
    total = sum(terms.values())
    for name in log_z:
        assert weighed.probabilities[name] == pytest.approx(terms[name] / total, rel=1e-12)
    assert weighed.none["probability"] == pytest.approx(terms["none"] / total, rel=1e-12)
    assert weighed.none["log_evidence"] == 1.5
    assert weighed.integrated_variance == dict.fromkeys(log_z, 0.25)
    assert weighed.parameters["linear"] == {"a": [1.0, 0.1]}


def test_laws_that_underflow_against_none_of_these_keep_their_odds_within_the_set():
    """A set that explains the data thousands of nats worse than "none of these": every law's probability is
    0 to rounding, and within the set (what an acquisition weighs them by) their odds are still e^3 : 1."""
    log_z = {"second-order": -2000.0, "linear": -2003.0}
    b = belief_with(log_z, none=0.0)
    weighed = b.weigh()
    assert set(weighed.probabilities.values()) == {0.0} and weighed.none["probability"] == 1.0
    within = b.within_set(weighed.log_z)
    assert within["second-order"] == pytest.approx(1 / (1 + math.exp(-3.0)), rel=1e-12)
    assert within["linear"] == pytest.approx(1 / (1 + math.exp(3.0)), rel=1e-12)
    assert b.within_set({"linear": float("-inf")}) == {}


def test_without_none_of_these_the_laws_share_the_prior_equally():
    weighed = belief_with({"second-order": 1.0, "linear": 0.0}, none=None, none_prior=0.0).weigh()
    e = math.e
    assert weighed.none is None
    assert weighed.probabilities == pytest.approx({"second-order": e / (e + 1), "linear": 1 / (e + 1)}, rel=1e-12)


def test_an_unfitted_law_has_no_probability_and_the_rest_still_sum_to_one():
    weighed = belief_with({"second-order": 1.0}, none=0.0).weigh()
    assert set(weighed.probabilities) == {"second-order"}
    assert sum(weighed.probabilities.values()) + weighed.none["probability"] == pytest.approx(1.0, rel=1e-12)


def test_the_floor_puts_two_standard_errors_against_the_leader_and_for_none_of_these():
    se = {"second-order": 0.5, "linear": 0.25, NONE_OF_THESE.name: 0.1}
    weighed = belief_with({"second-order": 3.0, "linear": 0.0}, none=-1.0, se=se, none_prior=0.1).weigh()
    # each of the K = 3 declared laws has prior 0.9 / 3 (sigmoid is unfitted), none of these 0.1
    lead = 0.3 * math.exp(3.0 - 1.0)
    other = 0.3 * math.exp(0.0 + 0.5)
    none = 0.1 * math.exp(-1.0 + 0.2)
    assert weighed.floor == pytest.approx(lead / (lead + other + none), rel=1e-12)


def test_the_exact_limit_is_capped_by_the_memory_of_the_candidate_factors():
    # 0.001 GiB / (8 B x 2.2 x 51 points x 3 laws) rows
    b = Belief(LAWS, POINTS, (0.0,), (1.0,), InferenceSettings(exact_max_n=10_000, exact_memory_gb=0.001))
    assert b.exact_limit == int(0.001 * 2**30 / (8 * 2.2 * 51 * 3))
    assert Belief(LAWS, POINTS, (0.0,), (1.0,), InferenceSettings(exact_max_n=7)).exact_limit == 7


def test_none_of_these_is_weighed_by_the_prior_not_listed():
    with pytest.raises(ConfigError, match="none_prior"):
        Belief([*LAWS, NONE_OF_THESE], POINTS, (0.0,), (1.0,), InferenceSettings())
    assert Belief(LAWS, POINTS, (0.0,), (1.0,), InferenceSettings(none_prior=0.0)).none is None


@pytest.mark.parametrize("bad", [dict(none_prior=1.0), dict(inducing=0), dict(check_below=-1)])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        InferenceSettings(**bad)


def test_a_restored_refit_equals_the_fit_it_restores_without_fitting(monkeypatch):
    from abduce.hypotheses import belief as belief_module

    u = torch.linspace(0, 1, 12, dtype=torch.float64).unsqueeze(-1)
    y = 0.3 + 0.5 * u[:, 0] + 0.01 * torch.sin(40 * u[:, 0])
    settings = InferenceSettings(fit=FitSettings(screen=32, maxiter=30), evidence_samples=64, none_prior=0.0)
    live = Belief([BUILTIN["linear"]], POINTS, (0.0,), (1.0,), settings)
    assert live.refit(live.all_slots(), u, y, seed=lambda purpose, i: 7) == {}
    saved = live.fit_states(["linear"])

    def no_fitting(*args, **kwargs):
        raise AssertionError("a restored refit must not fit")

    monkeypatch.setattr(belief_module, "fit_planned", no_fitting)
    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", no_fitting)
    again = Belief([BUILTIN["linear"]], POINTS, (0.0,), (1.0,), settings)
    assert again.refit(again.all_slots(), u, y, seed=lambda purpose, i: 7, restore=saved) == {}
    assert again.weigh() == live.weigh()
    torch.testing.assert_close(again.band("linear")[0], live.band("linear")[0], rtol=0, atol=0)


def _fitted_line(n: int):
    """A belief holding the linear law fitted on the first ``n`` of 13 noisy readings of a line."""
    u = torch.linspace(0, 1, 13, dtype=torch.float64).unsqueeze(-1)
    y = 0.3 + 0.5 * u[:, 0] + 0.05 * torch.randn(13, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    settings = InferenceSettings(  # no hyperparameter factor: its Laplace step is for a fit at its optimum
        fit=FitSettings(screen=32, maxiter=30), evidence_samples=64, none_prior=0.0, hyperparameter_evidence=False
    )
    b = Belief([BUILTIN["linear"]], POINTS, (0.0,), (1.0,), settings)
    assert b.refit(b.all_slots(), u[:n], y[:n], seed=lambda purpose, i: 7) == {}
    return b, u, y


def _needle(held):
    """``held`` refitted on all 13 readings into the needle: its noise and residual at their floors."""
    from dataclasses import replace

    raw = ("likelihood.noise_covar.raw_noise", "covar_module.raw_outputscale")
    floor = {k: torch.full_like(held.state[k], -25.0) for k in raw}
    return replace(held, state={**held.state, **floor}, n=13, _model=None)


def test_the_evidence_with_one_more_point_is_the_evidence_after_adding_it():
    b, u, y = _fitted_line(12)
    slot = b.slots[0]
    s = slot.fit.frame.s
    row = slot.posterior.row_for(u[-1])
    ahead, ess = slot.evidence.with_point(row, u[-1], float(y[-1]) / s)
    b.add([slot], u[-1], float(y[-1]))
    after = slot.evidence.evidence()
    assert ahead == pytest.approx(after.log_z, abs=1e-9) and ess == pytest.approx(after.ess, rel=1e-9)


def test_a_refit_whose_evidence_falls_far_below_the_held_fit_is_refused(monkeypatch):
    """A fit that pressed the noise to its floor (the needle a jump law fell into at five readings) gives the
    readings a log evidence hundreds of nats below the held fit's: the held fit stays, the refusal is said as
    a failure, and the caller conditions the held fit on the new reading."""
    from dataclasses import replace

    from abduce.hypotheses import belief as belief_module

    b, u, y = _fitted_line(12)
    held = b.slots[0].fit
    needle = _needle(held)
    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", lambda plans, settings: [needle])
    failures = b.refit(b.all_slots(), u, y, seed=lambda purpose, i: 7)
    assert list(failures) == ["linear"] and failures["linear"].startswith("refit refused")
    assert b.slots[0].fit is held and b.slots[0].posterior.n == 12  # untouched: the campaign adds the reading

    b, u, y = _fitted_line(12)  # the same refit against a held fit that is no better: kept
    same = replace(held, n=13, _model=None)
    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", lambda plans, settings: [same])
    assert b.refit(b.all_slots(), u, y, seed=lambda purpose, i: 7) == {}
    assert b.slots[0].posterior.n == 13


def test_a_held_fit_on_too_few_effective_draws_refuses_nothing(monkeypatch):
    """The held estimate must rest on a tenth of its draws: with one draw carrying all the weight, its log
    evidence is that draw's, and the refit (the needle above) is taken."""

    from abduce.hypotheses import belief as belief_module

    b, u, y = _fitted_line(12)
    held = b.slots[0]
    best = int(torch.nonzero(held.evidence.inside)[:, 0][torch.argmax(held.evidence.weights())])
    others = torch.arange(len(held.evidence.log_pq)) != best  # every draw but the best one weighs e^-1e6 less
    held.evidence.log_pq = torch.where(others, held.evidence.log_pq - 1e6, held.evidence.log_pq)
    needle = _needle(held.fit)
    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", lambda plans, settings: [needle])
    assert b.refit(b.all_slots(), u, y, seed=lambda purpose, i: 7) == {}
    assert held.fit.n == 13


def test_a_refit_refused_live_is_refused_again_on_resume_without_fitting(monkeypatch):
    """A journalled refusal (``refused_refits`` of the step's failures) keeps the held fit, as live, and
    fits nothing: a resume cannot decide otherwise."""
    from abduce.hypotheses import belief as belief_module

    b, u, y = _fitted_line(12)
    held = b.slots[0]
    fit, posterior = held.fit, held.posterior

    def no_fitting(*args, **kwargs):
        raise AssertionError("a refused refit must not fit again")

    monkeypatch.setattr(belief_module, "fit_planned", no_fitting)
    monkeypatch.setattr(belief_module, "fit_hypotheses_batched", no_fitting)
    why = f"{belief_module.REFUSED}: its hyperparameters give the data log evidence -1669.0, ..."
    journalled = {"linear": why, "sigmoid": "the fit failed from every start"}
    restore = belief_module.refused_refits(journalled, 13)
    assert restore == {"linear": {"n": 13, "refused": why}}  # a failed fit is not a refusal: refitted on resume
    assert b.refit(b.all_slots(), u, y, seed=lambda purpose, i: 7, restore=restore) == {"linear": why}
    assert held.fit is fit and held.posterior is posterior
