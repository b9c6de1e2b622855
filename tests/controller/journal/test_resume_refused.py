"""What a resume hands ``tell`` from a journalled decision: the fits it journalled, and the refits it refused."""

from types import SimpleNamespace

from abduce.controller.journal.resume import restored
from abduce.hypotheses.belief import REFUSED


def test_a_resume_restores_the_journalled_fits_and_refuses_again_the_refits_refused_live():
    why = f"{REFUSED}: its hyperparameters give the data log evidence -517.0, the fit of n = 4 held on ... -10.5"
    decision = SimpleNamespace(
        fits={"second-order": {"n": 5, "state": {}}},
        fit_failures={"first-order": why, "sigmoid": "no start converged"},  # a failed fit is fitted again
        step=4,  # the fifth reading: n = 5
    )
    assert restored(decision) == {"second-order": {"n": 5, "state": {}}, "first-order": {"n": 5, "refused": why}}
