"""The journal's summary (abduce.controller.views.summary.summarise): what `abduce inspect` and the report say leads."""

from abduce.controller.journal.events import DecisionBody
from abduce.controller.views.summary import summarise

NAMES = ("linear", "first-order", "sigmoid")


def _decision(probabilities: dict[str, float], log_evidence: dict[str, float], none: float) -> DecisionBody:
    return DecisionBody(
        step=5,
        request_id="r5",
        x=(0.5,),
        y=1.0,
        hypothesis=None,
        reason="model-information",
        refit=NAMES,
        reward=None,
        probabilities=probabilities,
        log_evidence=log_evidence,
        integrated_variance=dict.fromkeys(NAMES, 0.1),
        parameters={},
        fit_failures={},
        stopped=False,
        none={"probability": none, "log_evidence": 0.0, "log_evidence_se": 0.0},
    )


def test_the_journal_names_the_leader_the_live_campaign_names_where_every_law_underflowed():
    """Every law at 0.0 against "none of these": the summary's leader is the law of the largest log evidence, as
    the live campaign's (before, the first of the zeros in the journal's order); otherwise the most probable."""
    zeros = _decision(dict.fromkeys(NAMES, 0.0), {"linear": -5200.0, "first-order": -4700.0, "sigmoid": -4900.0}, 1.0)
    summary = summarise(NAMES, zeros, 6, [], [zeros])
    assert summary.leader == "first-order"
    assert summary.explained is False  # "none of these" leads all the same
    usual = _decision({"linear": 0.7, "first-order": 0.1, "sigmoid": 0.2}, dict.fromkeys(NAMES, -10.0), 0.0)
    assert summarise(NAMES, usual, 6, [], [usual]).leader == "linear"
