"""Sweeps: config validation, the summary's arithmetic, and real runs on Dask (local and a separate scheduler)."""

import json
import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from abduce.controller.errors import AbduceError
from abduce.controller.sweep import identification_curve, load_sweep, run_sweep, summarize
from tests.instruments.conftest import wait_until

TINY = """
[sweep]
name = "tiny"
policies = ["discriminate", "random"]
seeds = {seeds}
budget = {budget}
n_init = 4

[hypothesis_sets]
two = ["second-order", "linear"]

[[problem]]
name = "so"
source = "simulated:transition-1d"
options = {{ truth = "second-order", grid = 101 }}
truth = "second-order"
"""


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_a_typo_names_the_key_and_an_unknown_policy_lists_the_known_ones(tmp_path):
    with pytest.raises(AbduceError, match=r"sweep.budgte"):
        load_sweep(write(tmp_path, TINY.format(seeds=2, budget=6).replace("budget =", "budgte =")))
    with pytest.raises(AbduceError, match="discrimnate.*known"):
        load_sweep(write(tmp_path, TINY.format(seeds=2, budget=6).replace('"discriminate"', '"discrimnate"')))


def test_the_grid_is_problems_times_sets_times_policies_times_seeds(tmp_path):
    cfg = load_sweep(write(tmp_path, TINY.format(seeds=3, budget=6)))
    cells = cfg.cells()
    assert len(cells) == 1 * 1 * 2 * 3
    assert {(c["policy"], c["seed"]) for c in cells} == {(p, s) for p in ("discriminate", "random") for s in range(3)}


def test_n95_is_the_first_n_at_which_95_percent_of_seeds_are_identified():
    rows = []
    # 20 seeds: seed s crosses P(true) >= 0.95 at n = 1 + s; seed 19 never does
    for seed in range(20):
        for n in range(1, 21):
            p = 0.99 if (seed < 19 and n >= 1 + seed) else 0.5
            rows.append({"problem": "p", "hypothesis_set": "h", "policy": "x", "seed": seed, "n": n, "p_true": p,
                         "leader": "", "error": 0.1 if n == 20 else math.nan, "seconds": 1.0 if n == 20 else math.nan})
    results = pd.DataFrame(rows)
    curve = identification_curve(results)
    assert curve[1] == pytest.approx(1 / 20) and curve[18] == pytest.approx(18 / 20)
    s = summarize(results).iloc[0]
    assert s["n95"] == 19  # the 19th of 20 seeds (95%) crosses at n = 19
    assert s["identified_at_budget"] == pytest.approx(0.95) and s["median_error"] == pytest.approx(0.1)


def test_a_sweep_runs_on_a_local_cluster_and_writes_table_summary_and_plot(tmp_path):
    cfg = load_sweep(write(tmp_path, TINY.format(seeds=2, budget=7)))
    seen = []
    results, summary = run_sweep(cfg, tmp_path / "out", workers=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4)
    assert len(results) == 4 * 7 and set(results["n"]) == set(range(1, 8))
    assert (tmp_path / "out" / "results.csv").exists() and (tmp_path / "out" / "identification.png").stat().st_size > 0
    assert set(summary["policy"]) == {"discriminate", "random"}
    last = results.groupby(["policy", "seed"]).tail(1)
    assert last["error"].notna().all() and (last["error"] < 1).all()


def scheduled(scheduler_file) -> str | None:
    """The address in a Dask scheduler file, once the scheduler has written all of it."""
    try:
        return json.loads(scheduler_file.read_text()).get("address")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_the_same_sweep_runs_against_a_separately_started_dask_scheduler(tmp_path):
    dask = shutil.which("dask", path=os.path.dirname(sys.executable))
    assert dask, "the dask command comes with distributed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    scheduler_file = tmp_path / "scheduler.json"  # the scheduler names the free port it bound here
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        assert wait_until(lambda: scheduled(scheduler_file) or procs[0].poll() is not None, timeout=300)
        address = scheduled(scheduler_file)
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=env, cwd=os.getcwd()))
        cfg = load_sweep(write(tmp_path, TINY.format(seeds=1, budget=6)))
        results, _ = run_sweep(cfg, tmp_path / "out", scheduler=address)
        local, _ = run_sweep(cfg, tmp_path / "local", workers=1)
    finally:
        for p in procs[::-1]:
            p.terminate()
            p.wait(30)
    cols = ["problem", "policy", "seed", "n", "p_true", "leader"]
    pd.testing.assert_frame_equal(results[cols].reset_index(drop=True), local[cols].reset_index(drop=True))


@pytest.mark.slow
def test_a_sweep_of_200_campaigns_on_a_local_cluster(tmp_path):
    text = TINY.format(seeds=50, budget=8).replace('["discriminate", "random"]',
                                                   '["epsilon-greedy", "discriminate", "random", "grid"]')
    cfg = load_sweep(write(tmp_path, text))
    assert len(cfg.cells()) == 200
    results, summary = run_sweep(cfg, tmp_path / "out")
    assert results.groupby(["policy", "seed"]).ngroups == 200
    assert (summary["seeds"] == 50).all()


def test_n95_counts_only_a_level_that_holds_to_the_budget():
    # 20 seeds; all identified at n = 3, one seed (of 20) lost again at n = 4..5 twice over (90%), back at n = 6
    rows = []
    for seed in range(20):
        for n in range(1, 9):
            lost = seed < 2 and n in (4, 5)
            p = 0.99 if n >= 3 and not lost else 0.5
            rows.append({"problem": "p", "hypothesis_set": "h", "policy": "x", "seed": seed, "n": n, "p_true": p,
                         "leader": "", "error": math.nan, "seconds": math.nan})
    assert summarize(pd.DataFrame(rows)).iloc[0]["n95"] == 6
