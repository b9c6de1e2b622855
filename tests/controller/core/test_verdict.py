"""Which law leads (abduce.controller.core.verdict.leader): the rule the live campaign and `abduce inspect` share."""

import math

from abduce.controller.core.verdict import leader


def test_the_most_probable_law_leads_and_none_while_one_is_unfitted():
    probs = {"linear": 0.2, "sigmoid": 0.7, "first-order": 0.1}
    assert leader(probs) == "sigmoid"
    assert leader(probs, {"linear": 9.0, "sigmoid": -9.0, "first-order": 0.0}) == "sigmoid"  # evidence: ties only
    assert leader(probs, unfitted=("linear",)) is None
    assert leader({}) is None


def test_laws_that_all_underflowed_are_ranked_by_their_log_evidence_not_by_dict_order():
    """Every law at 0.0 against "none of these": the law named is the one of the largest log evidence (before,
    the first in dict order, whatever the data said); a law without a finite evidence ranks last."""
    probs = dict.fromkeys(["linear", "sigmoid", "first-order", "second-order"], 0.0)
    log_z = {"linear": -4100.0, "sigmoid": -3900.0, "first-order": None, "second-order": -math.inf}
    assert leader(probs, log_z) == "sigmoid"
    assert leader(probs) == "linear"  # without evidences: the first, as any tie
