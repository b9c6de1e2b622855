"""Inspect, plot, report and export of a real 10^4-measurement journal: seconds each, side by side.

Step 1 (once; minutes, cached in --run): runs a real campaign of --n
measurements against transition-1d (second-order truth, --grid candidates,
hypotheses second-order and linear, epsilon-greedy) into a run directory,
journalled as the loop always journals. To keep that under ~15 minutes here
its fits are lighter than the defaults (64 screened draws, one start, 30
iterations, a refit each time n doubles, 256 inducing points past n = 1000);
the run's config.json says so. What is timed does not depend on it: the
commands read the journal, and the posteriors come from the last journalled
fits (``rebuild.snapshot``), exact or inducing.

Step 2: times each of ``abduce inspect --json``, ``abduce plot``, ``abduce
report`` and ``abduce export`` as a fresh process (imports included, as a
person runs them), and prints seconds and the ratio to the 10 s goal.

    python tests/benchmarks/large_journal.py [--n 10000] [--grid 20001] [--run /tmp/abduce-large-run]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the commands timed pick their own thread counts

GOAL_S = 10.0


def make_run(path: Path, n: int, grid: int, seed: int) -> float:
    """Run the campaign into ``path`` (a run directory); returns the seconds it took."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the daemon runs campaigns
    import numpy as np

    from abduce.controller.core.campaign import CampaignSettings
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.simulated import SimulatedRun
    from abduce.hypotheses.fitting import FitSettings

    opts = SimulatedRun(
        hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=n, grid=grid, seed=seed, device="cpu"
    )
    settings = CampaignSettings(
        fit=FitSettings(screen=64, restarts=1, maxiter=30),
        refit_growth=1.0,
        refit_every_step_below=20,
        inducing=256,
    )
    campaign, sim = opts.build()
    campaign.settings = settings  # before the first fit: every fit uses it
    config = {
        "mode": "in-process",
        **opts.model_dump(mode="json"),
        "benchmark_settings": "screen=64 restarts=1 maxiter=30 refit_growth=1.0 refit_every_step_below=20 "
        "inducing=256 (tests/benchmarks/large_journal.py)",
    }
    rundir = RunDirectory(path, config)

    def instrument(request):
        return Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))

    t0 = time.perf_counter()
    try:
        run_campaign(campaign, instrument, [rundir], journal=rundir.journal)
    finally:
        rundir.close()
    rundir.finish(campaign)
    return time.perf_counter() - t0


def timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "abduce.controller.cli", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode:
        return seconds, "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return seconds, ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--grid", type=int, default=20_001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", type=Path, default=Path(tempfile.gettempdir()) / "abduce-large-run")
    args = ap.parse_args()
    if not (args.run / "summary.json").exists():
        shutil.rmtree(args.run, ignore_errors=True)
        print(f"running a {args.n}-measurement campaign into {args.run} (once) ...", flush=True)
        print(f"  done in {make_run(args.run, args.n, args.grid, args.seed):.0f} s", flush=True)
    out = Path(tempfile.mkdtemp(prefix="abduce-large-out-"))
    try:
        rows = [
            ("inspect --json", ["inspect", str(args.run), "--json"]),
            ("plot", ["plot", str(args.run), "--out", str(out / "plots")]),
            ("report", ["report", str(args.run), "--out", str(out / "report.html")]),
            ("export", ["export", str(args.run), "--out", str(out / "run.nc")]),
        ]
        print(f"journal of {args.n} measurements, {args.grid} candidates: {args.run}")
        print(f"{'command':<16}{'seconds':>9}{'/ goal':>8}")
        for label, cmd in rows:
            seconds, note = timed(cmd)
            print(f"{label:<16}{seconds:>9.2f}{seconds / GOAL_S:>8.2f}  {note}", flush=True)
        skipped = [p.name for p in (out / "plots").glob("*")] if (out / "plots").exists() else []
        print(f"plots written: {', '.join(sorted(skipped)) or 'none'}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
