"""What driving abduce from bluesky-adaptive costs, next to abduce's own in-process loop, side by side.

The same 30-measurement campaign (transition-1d, the four transition laws, the same seed) twice: by
``SimulatedRun.run()`` (ask -> simulator -> tell, journalled in a run directory), and by a bluesky
``RunEngine`` running ``bluesky_adaptive.plans.optimize`` over ``CampaignOptimizer`` with an ophyd.sim
motor and detector (one acquisition run per measurement, outcomes from the RunEngine's documents,
journalled the same way). Prints the wall and CPU time of each, the time inside the campaign (suggest +
ingest) and so the RunEngine's own share, and whether both asked for the same points.

    python tests/benchmarks/bluesky_optimizer.py [--truth second-order] [--budget 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import numpy as np
    import torch
    from bluesky import RunEngine
    from bluesky_adaptive.plans import optimize
    from ophyd.sim import SynAxis, SynSignal

    from abduce.controller.beamline import CampaignOptimizer, Readings
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.simulated import SimulatedRun
    from abduce.instruments.protocol.models import Axis, Capabilities, Channel
    from abduce.simulators.registry import SIMULATORS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", default="second-order")
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    setup = SimulatedRun(truth=args.truth, seed=args.seed, budget=args.budget, device="cpu")

    wall, cpu = time.perf_counter(), time.process_time()
    rundir = RunDirectory(tmp / "in-process", {"mode": "in-process", **setup.model_dump(mode="json")})
    reference = setup.run([rundir], journal=rundir.journal)
    rundir.finish(reference)
    in_process = (time.perf_counter() - wall, time.process_time() - cpu)

    sim = SIMULATORS[setup.simulator](
        truth=setup.truth, x_c=setup.x_c, beta=setup.beta, noise=setup.noise, grid=setup.grid, seed=setup.seed
    )
    motor, det = SynAxis(name="x"), SynSignal(name="y")
    det.sim_set_func(lambda: float(sim.measure(np.array([[motor.position]]))[0]))
    caps = Capabilities(
        axes=[Axis(name="x", min=sim.lo, max=sim.hi)],
        channels=[Channel(name="y")],
        candidates=sim.candidates().tolist(),
    )
    wall, cpu = time.perf_counter(), time.process_time()
    optimizer = CampaignOptimizer.start(setup.recipe(), caps, tmp / "bluesky")
    inside = [0.0]
    for name in ("suggest", "ingest"):
        method = getattr(optimizer, name)

        def timed(*a, _method=method, **kw):
            t = time.perf_counter()
            try:
                return _method(*a, **kw)
            finally:
                inside[0] += time.perf_counter() - t

        setattr(optimizer, name, timed)
    readings = Readings("y")
    RE = RunEngine({})
    RE.subscribe(readings.receive_document)
    RE(optimize(optimizer.problem([motor], [det], readings), iterations=None))
    bluesky = (time.perf_counter() - wall, time.process_time() - cpu)

    c = optimizer.campaign
    same = c.data[0] == reference.data[0]
    print(f"{args.budget} measurements, truth {args.truth}, seed {args.seed}, torch threads 1")
    print(f"{'':34s}{'wall s':>9s}{'cpu s':>9s}")
    print(f"{'in-process (SimulatedRun)':34s}{in_process[0]:9.2f}{in_process[1]:9.2f}")
    print(f"{'RunEngine + bluesky-adaptive':34s}{bluesky[0]:9.2f}{bluesky[1]:9.2f}")
    print(f"{'  of which suggest + ingest':34s}{inside[0]:9.2f}")
    per_step = (bluesky[0] - inside[0]) / c.n
    print(
        f"{'  RunEngine, plans, documents':34s}{bluesky[0] - inside[0]:9.2f}   ({1000 * per_step:.0f} ms a measurement)"
    )
    print(
        f"same points asked: {same}; leader {c.leader()} (P = {c.probabilities()[c.leader()]:.4f}) "
        f"vs in-process {reference.leader()} (P = {reference.probabilities()[reference.leader()]:.4f})"
    )


if __name__ == "__main__":
    main()
