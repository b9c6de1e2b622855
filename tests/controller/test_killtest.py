"""The suite's run of tests/killtest.py: 20 kill -9s of the daemon, nothing lost, nothing doubled."""

from tests.killtest import run


def test_twenty_kills_lose_nothing_and_measure_nothing_twice(tmp_path):
    result = run(kills=20, budget=40, seed=1, workdir=tmp_path, log=lambda *a: None, window_s=0.8)
    assert result["kills"] == 20 and result["mid_campaign_kills"] >= 10
    assert result["measurements"] == result["unique_ids"] == 40
    assert result["measured_twice"] == [] and result["instrument_measurements"] == 40
    assert result["equals_uninterrupted"]
