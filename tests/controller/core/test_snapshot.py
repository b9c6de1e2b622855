"""A snapshot (data + journalled fits, conditioned once) answers as the replayed campaign does."""

import numpy as np
import pytest

from abduce.controller.errors import CampaignStateError
from abduce.controller.journal.rebuild import rebuild, snapshot
from abduce.controller.journal.store import Journal
from tests.controller.views.test_inspect import recorded


@pytest.mark.parametrize("nan_at", [None, 6])
def test_snapshot_equals_the_rebuilt_campaign_after_every_step(nan_at):
    run, live = recorded(nan_at)
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        steps = sorted(k for k in live if k > 0)
        assert steps == list(range(1, max(live) + 1))  # every step the live campaign took, none left out
        for n in steps:
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


def test_indices_of_many_points_equals_index_of_one_by_one():
    from abduce.controller.core.space import Space

    rng = np.random.default_rng(0)
    cand = rng.random((500, 2)) * [2.0, 10.0] + [-1.0, 5.0]
    space = Space.finite(cand)
    queries = [tuple(c) for c in cand[::7]] + [(0.123456, 7.0), tuple(cand[3] + [1e-9, 0.0])]
    assert space.indices_of(queries) == [space.index_of(q) for q in queries]
    assert space.indices_of(queries)[-2] is None and space.indices_of(queries)[-1] == 3
