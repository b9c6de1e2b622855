"""The live campaign of ``abduce run --listen`` and of the daemon names the value it explains from its channel
and reduction, as the campaign rebuilt from its journal does; a channel the instrument lacks is the same clear
error as before, raised before anything is measured."""

import pytest

from abduce.controller.cli.campaigns import run_listening
from abduce.controller.core.quantity import Quantity
from abduce.controller.daemon import Daemon
from abduce.controller.drive.remote import ListenRun
from abduce.controller.errors import ConfigError
from abduce.controller.journal.rebuild import snapshot
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.settings import load_settings
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.keys import load_key, new_key
from abduce.instruments.protocol.codec import Codec, Keyring
from tests.controller.test_daemon import configured
from tests.instruments.conftest import AgentThread, ipc_endpoint

BUILT = []  # the live campaigns the runs below built


class Observed(ListenRun):
    """``abduce run --listen``'s recipe, keeping the campaign it builds for the test to look at."""

    def build_campaign(self, *args, **kwargs):
        campaign = super().build_campaign(*args, **kwargs)
        BUILT.append(campaign)
        return campaign


def loops_agent(endpoint, key):
    """Simulated hysteresis loops (one array channel, ``loop``, 2 x 16) served on ``endpoint``."""
    key_id, secret = load_key(key)
    driver = build("simulated:loops", grid=21, m=16, seed=1)
    return AgentThread(InstrumentAgent(driver, endpoint, Codec(Keyring({key_id: secret}), key_id), "sim"))


def listen_run(tmp_path, **recipe):
    new_key(tmp_path / "lab.key", "lab")
    endpoint = ipc_endpoint()
    opts = Observed(
        listen=endpoint, hypotheses=("second-order", "linear"), budget=5, n_init=4, seed=1, wait_s=60, **recipe
    )
    agent = loops_agent(endpoint, tmp_path / "lab.key")
    try:
        return run_listening(opts, tmp_path / "lab.key", tmp_path / "run", progress=False)
    finally:
        agent.stop()


def test_run_listen_names_the_reduced_value_as_the_rebuild_does(tmp_path):
    BUILT.clear()
    summary = listen_run(tmp_path, reduction="max")
    (live,) = BUILT
    with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as journal:
        _, rebuilt = snapshot(journal)
    assert summary["measurements"] == 5
    assert live.space.explained == rebuilt.space.explained == Quantity("max", "")  # not "y"


def test_run_listen_with_a_channel_the_instrument_lacks_fails_before_measuring(tmp_path):
    with pytest.raises(ConfigError, match="the instrument has no channel 'nope'; it declares \\['loop'\\]"):
        listen_run(tmp_path, channel="nope", reduction="max")
    assert not (tmp_path / "run" / "journal.sqlite").exists()  # nothing journalled, nothing measured


def daemon_with(tmp_path, campaign_lines: str) -> Daemon:
    path, listen, secret, codec = configured(tmp_path, seed=1, budget=5)
    path.write_text(path.read_text().replace("n_init = 4", f"n_init = 4\n{campaign_lines}"))
    agent = AgentThread(InstrumentAgent(build("simulated:loops", grid=21, m=16, seed=1), listen, codec, "sim"))
    d = Daemon(load_settings(path), path)
    try:
        d.run()
    finally:
        agent.stop()
    return d


def test_the_daemon_names_the_reduced_value_as_the_rebuild_does(tmp_path):
    d = daemon_with(tmp_path, 'reduction = "max"')
    with Journal.open(tmp_path / "run" / "journal.sqlite", readonly=True) as journal:
        _, rebuilt = snapshot(journal)
        measured = len(list(journal.events("measurement")))
    assert measured == 5 and d._campaign.space.explained == rebuilt.space.explained == Quantity("max", "")


def test_the_daemon_with_a_channel_the_instrument_lacks_fails_before_measuring(tmp_path):
    with pytest.raises(ConfigError, match="the instrument has no channel 'nope'"):
        daemon_with(tmp_path, 'channel = "nope"\nreduction = "max"')
    assert not (tmp_path / "run" / "journal.sqlite").exists()  # nothing journalled, nothing measured
