"""Issue 16's "must hold", in-process way: a bluesky RunEngine with ophyd.sim devices completes a
30-measurement campaign through bluesky-adaptive's ``optimize`` and abduce's optimizer, and identifies the
simulated law as abduce's own in-process run (``SimulatedRun``) does with the same seed.

The oracle is the in-process run: the same recipe, the same simulator and seed, measured by abduce's own
loop. The RunEngine's campaign must ask for the same points, read the same values (up to the motor's
float arithmetic, ``old + (new - old)``), reach the same probabilities, and identify the truth by the
README's bar (P >= 0.9, ``x_c`` within 0.05). With batches of four (``n_points=4``, the recipe's ``q``) the
RunEngine's campaign reaches the same verdict in fewer acquisitions (the points differ: a batch is chosen
otherwise, and bluesky-adaptive routes the motor through it in its own order)."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky_adaptive.plans import optimize
from ophyd.sim import SynAxis, SynSignal

from abduce.controller.beamline.evaluation import Readings
from abduce.controller.beamline.optimizer import CampaignOptimizer
from abduce.controller.rehearse.simulated import SimulatedRun
from abduce.controller.views.inspection import inspect_run
from abduce.instruments.protocol.models import Axis, Capabilities, Channel
from abduce.simulators.registry import SIMULATORS


@pytest.mark.slow
@pytest.mark.parametrize(("truth", "q"), [("second-order", 1), ("first-order", 1), ("second-order", 4)])
def test_a_run_engine_campaign_identifies_the_law_as_the_in_process_run_does(truth, q, tmp_path):
    setup = SimulatedRun(truth=truth, seed=0, budget=30, device="cpu", q=q)
    in_process = setup.run()

    sim = SIMULATORS[setup.simulator](
        truth=truth, x_c=setup.x_c, beta=setup.beta, noise=setup.noise, grid=setup.grid, seed=setup.seed
    )
    motor, det = SynAxis(name="x"), SynSignal(name="y")
    det.sim_set_func(lambda: float(sim.measure(np.array([[motor.position]]))[0]))  # after construction: no draw
    caps = Capabilities(
        axes=[Axis(name="x", min=sim.lo, max=sim.hi)],
        channels=[Channel(name="y")],
        candidates=sim.candidates().tolist(),
    )
    optimizer = CampaignOptimizer.start(setup.recipe(), caps, tmp_path / "run")
    readings = Readings("y")
    RE = RunEngine({})
    RE.subscribe(readings.receive_document)
    runs = []
    RE.subscribe(lambda name, doc: runs.append(doc) if doc.get("run_key") == "default_acquire" else None)
    RE(optimize(optimizer.problem([motor], [det], readings), iterations=None, n_points=q))

    c = optimizer.campaign
    assert c.n == 30 and optimizer.should_stop()[0]
    if q == 1:
        xs, ys = c.data
        assert xs == in_process.data[0]  # the same 30 points asked for
        assert np.allclose(ys, in_process.data[1], rtol=0, atol=1e-12)
        assert c.probabilities() == pytest.approx(in_process.probabilities(), rel=1e-6, abs=1e-9)
    assert len(runs) == len({r.request_id for r in c.history})  # one acquisition (one suggest) per request
    assert len(runs) == (30 if q == 1 else 9)  # batches of four (the design's last and the budget's last shorter)
    for campaign in (c, in_process):
        assert campaign.leader() == truth and campaign.probabilities()[truth] >= 0.9
    ((_, _, verdict),) = optimizer.get_best_points()
    assert verdict["hypothesis"] == truth
    assert abs(verdict["parameters"]["x_c"]["mean"] - setup.x_c) <= 0.05
    # the run directory is abduce's own: inspect reads the same verdict from the journal
    seen = inspect_run(tmp_path / "run")
    assert (seen.mode, seen.summary.leader, seen.summary.measurements) == ("bluesky", truth, 30)
