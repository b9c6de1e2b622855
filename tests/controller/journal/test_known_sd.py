"""A reading's own standard deviation (``Measurement.y_sd``) through ``tell`` and the journal: refused when it
is not a standard deviation, used by the fits (the campaign differs from one told without it), journalled,
and re-told on resume to the same campaign."""

import math

import numpy as np
import pytest

from abduce.controller.core.measurements import Measurement
from abduce.controller.drive.loop import run_campaign
from abduce.controller.errors import MeasurementRejected
from abduce.controller.journal.resume import retell
from abduce.controller.journal.store import Journal
from tests.controller.core.test_campaign import make

CONFIG = {"policy": "discriminate", "seed": 0}


def with_sd(sim):
    """Readings with a known sd of 0.02 + 0.2 x (unknown, None, on every fourth request)."""

    def measure(r):
        sd = None if r.step % 4 == 3 else 0.02 + 0.2 * r.x[0]
        return Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0]), y_sd=sd)

    return measure


@pytest.mark.parametrize("bad", [-0.1, math.inf, "a lot"])
def test_a_y_sd_that_is_not_a_standard_deviation_is_refused_and_nothing_changes(bad):
    c, sim = make()
    r = c.ask()
    before = (c.n, c.data, c._y_sd[:])
    with pytest.raises(MeasurementRejected) as err:
        c.tell(Measurement(r.request_id, r.x, 0.5, y_sd=bad))
    assert err.value.reason == "bad-sd" and "y_sd" in str(err.value)
    assert (c.n, c.data, c._y_sd) == before
    c.tell(Measurement(r.request_id, r.x, 0.5, y_sd=float("nan")))  # NaN: unknown, accepted
    assert math.isnan(c._y_sd[-1])


def test_known_sds_change_the_campaign_and_journal_and_resume_to_the_same_one(tmp_path):
    path = tmp_path / "j.sqlite"
    told, sim = make(budget=9, seed=5)
    with Journal.create(path, CONFIG) as journal:
        run_campaign(told, with_sd(sim), journal=journal)
    plain, sim2 = make(budget=9, seed=5)
    run_campaign(plain, lambda r: Measurement(r.request_id, r.x, float(sim2.measure(np.array([r.x]))[0])))
    # the same simulator and seed, told with the readings' sds: the fits (hence the evidences) differ
    assert told.history[-1].log_evidence != plain.history[-1].log_evidence
    bodies = [e.body for e in Journal.open(path, readonly=True).events() if e.kind == "measurement"]
    sds = [b.get("y_sd") for b in bodies]
    assert sds[3] is None and "y_sd" not in bodies[3]  # an unknown sd is left out, as in older journals
    assert sds[0] == pytest.approx(0.02 + 0.2 * told.history[0].x[0])
    fresh, _ = make(budget=9, seed=5)
    with Journal.open(path) as journal:
        resumed = retell(fresh, journal)
    assert resumed.campaign.history == told.history
    assert resumed.campaign._y_sd[:4] == pytest.approx(told._y_sd[:4], nan_ok=True)
