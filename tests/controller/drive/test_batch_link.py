"""A batch over the instrument protocol: one ``measure`` message carries every point of a request, and the
controller's :class:`~abduce.controller.drive.remote.LinkInstrument` returns one measurement per point."""

import os

from abduce.controller.core.campaign import Campaign, CampaignSettings
from abduce.controller.decide.stopping import Budget
from abduce.controller.drive.link import InstrumentLink
from abduce.controller.drive.loop import run_campaign
from abduce.controller.drive.remote import LinkInstrument
from abduce.controller.intake.capabilities import space_of
from abduce.hypotheses.fitting import FitSettings
from abduce.hypotheses.library import BUILTIN
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.simulated import build
from abduce.instruments.protocol.codec import Codec, Keyring
from tests.instruments.conftest import LOOPBACK, AgentThread


def test_a_campaign_with_batches_of_four_runs_over_the_protocol_one_message_per_request():
    keyring = Keyring({"lab": os.urandom(32)})
    sent: list[dict] = []
    link = InstrumentLink(LOOPBACK, Codec(keyring, "lab"), heartbeat_s=0.2, audit=sent.append).start()
    agent = AgentThread(
        InstrumentAgent(build("simulated:transition-1d", grid=101, seed=0), link.endpoint, Codec(keyring, "lab"), "sim")
    )
    try:
        registered = link.wait_for_agent(15)
        settings = CampaignSettings(n_init=4, fit=FitSettings(screen=32, maxiter=30), evidence_samples=64, q=4)
        c = Campaign(
            space_of(registered.capabilities),
            [BUILTIN["second-order"], BUILTIN["linear"]],
            "discriminate",
            None,
            Budget(10),
            seed=0,
            settings=settings,
        )
        run_campaign(c, LinkInstrument(link, registered))
        measures = [line for line in sent if line["dir"] == "out" and line["msg_type"] == "measure"]
        assert c.done and c.n == 10
        assert [r.index for r in c.history] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
        assert len(measures) == len({r.request_id for r in c.history}) == 3  # 4 + 4 + 2 points
    finally:
        agent.stop()
        link.close()
