"""A snapshot (data + journalled fits, conditioned once) answers as the replayed campaign does."""

import numpy as np
import pytest

from abduce.controller.errors import CampaignStateError
from abduce.controller.journal import Journal
from abduce.controller.rebuild import rebuild, snapshot
from tests.controller.test_inspect import recorded


@pytest.mark.parametrize("nan_at", [None, 6])
def test_snapshot_equals_the_rebuilt_campaign_after_every_step(nan_at):
    run, live = recorded(nan_at)
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        for n in (3, 4, 5, 7, 10):
            _, replayed = rebuild(journal, upto=n)
            _, snap = snapshot(journal, upto=n)
            assert snap.n == replayed.n == n and snap.data == replayed.data
            assert snap.summary() == replayed.summary() == live[n]
            for name in replayed.hypothesis_names:
                a, b = replayed.posterior(name), snap.posterior(name)
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(b[0], a[0], rtol=1e-8, atol=1e-10)
                    np.testing.assert_allclose(b[1], a[1], rtol=1e-6, atol=1e-8)
            if n >= 4:
                (sa, da), (sb, db) = replayed.acquisition_scores(), snap.acquisition_scores()
                assert da == db
                np.testing.assert_allclose(sb, sa, rtol=1e-6, atol=1e-9)


def test_a_snapshot_refuses_to_ask_or_tell():
    run, _ = recorded(None)
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        _, snap = snapshot(journal, upto=6)
    with pytest.raises(CampaignStateError, match="snapshot"):
        snap.ask()
