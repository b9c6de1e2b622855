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
from abduce.controller.rehearse.scoring import identification_curve, summarize
from abduce.controller.rehearse.sweep import run_sweep
from abduce.controller.rehearse.sweep_config import load_sweep
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
            rows.append(
                {
                    "problem": "p",
                    "hypothesis_set": "h",
                    "policy": "x",
                    "seed": seed,
                    "n": n,
                    "p_true": p,
                    "leader": "",
                    "error": 0.1 if n == 20 else math.nan,
                    "seconds": 1.0 if n == 20 else math.nan,
                }
            )
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
    procs = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    ]
    try:
        assert wait_until(lambda: scheduled(scheduler_file) or procs[0].poll() is not None, timeout=300)
        address = scheduled(scheduler_file)
        procs.append(
            subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=os.getcwd(),
            )
        )
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
    text = TINY.format(seeds=50, budget=8).replace(
        '["discriminate", "random"]', '["epsilon-greedy", "discriminate", "random", "grid"]'
    )
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
            rows.append(
                {
                    "problem": "p",
                    "hypothesis_set": "h",
                    "policy": "x",
                    "seed": seed,
                    "n": n,
                    "p_true": p,
                    "leader": "",
                    "error": math.nan,
                    "seconds": math.nan,
                }
            )
    assert summarize(pd.DataFrame(rows)).iloc[0]["n95"] == 6


# ---- families: truths drawn per campaign (the identification benchmark) ----

from abduce.controller.rehearse.scoring import calibration, markdown  # noqa: E402
from abduce.controller.rehearse.sweep import band_coverage  # noqa: E402
from abduce.controller.rehearse.sweep_config import Draw, campaign_seed, draw  # noqa: E402

FAMILIES = """
[sweep]
name = "fam"
budget = 6
campaigns = {{ discriminate = 5, random = 5, grid = 2 }}

[hypothesis_sets]
two = ["second-order", "linear"]

[[family]]
name = "so"
source = "simulated:transition-1d"
options = {{ law = "second-order" }}
truth = "second-order"
hypothesis_set = "two"
[family.ranges]
x_c = {{ uniform = [0.05, 0.95] }}
amplitude = {{ log_uniform = [0.1, 10.0] }}
grid = {{ cycle = [201, 0] }}
{extra}

[[family]]
name = "peak"
source = "simulated:transition-1d"
options = {{ law = "peak" }}
truth = "none"
hypothesis_set = "two"
budget = 5
campaigns = {{ random = 3 }}
[family.ranges]
steps = {{ choice = [2, 3, 4] }}
"""


def families(tmp_path, extra=""):
    return load_sweep(write(tmp_path, FAMILIES.format(extra=extra)))


def test_family_cells_are_counts_per_policy_with_the_same_truth_and_seed_under_every_policy(tmp_path):
    cfg = families(tmp_path)
    cells = cfg.cells()
    assert len(cells) == 5 + 5 + 2 + 3
    so = [c for c in cells if c["problem"]["name"] == "so"]
    by = {(c["policy"], c["campaign"]): c for c in so}
    for i in range(2):  # paired: campaign i is the same truth and noise stream for every policy
        assert (
            by["discriminate", i]["problem"]["options"]
            == by["random", i]["problem"]["options"]
            == by["grid", i]["problem"]["options"]
        )
        assert by["discriminate", i]["seed"] == by["grid", i]["seed"] == campaign_seed("so", i)
    assert len({by["random", i]["seed"] for i in range(5)}) == 5
    assert {c["budget"] for c in so} == {6} and {c["budget"] for c in cells if c["problem"]["name"] == "peak"} == {5}
    c0 = by["random", 0]
    assert c0["problem"]["options"]["law"] == "second-order" and c0["problem"]["truth"] == "second-order"
    assert set(c0["drawn"]) == {"x_c", "amplitude", "grid"}
    assert [by["random", i]["problem"]["options"]["grid"] for i in range(4)] == [201, 0, 201, 0]  # cycle


def test_draws_are_deterministic_in_family_and_index_and_independent_of_the_other_ranges():
    ranges = {"x_c": Draw(uniform=(0.05, 0.95)), "amplitude": Draw(log_uniform=(0.1, 10.0))}
    a = [draw("fam", i, ranges) for i in range(20)]
    assert a == [draw("fam", i, ranges) for i in range(20)]
    assert a != [draw("other", i, ranges) for i in range(20)]
    more = {**ranges, "beta": Draw(uniform=(0.125, 0.5))}
    assert [{k: d[k] for k in ranges} for d in (draw("fam", i, more) for i in range(20))] == a
    # the generator is the documented one: SeedSequence(h(family), spawn_key=(index, h(option)))
    import hashlib

    import numpy as np

    def h(s):
        return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little")

    u = np.random.default_rng(np.random.SeedSequence(h("fam"), spawn_key=(7, h("x_c")))).random()
    assert a[7]["x_c"] == pytest.approx(0.05 + 0.9 * u, rel=1e-15)
    assert campaign_seed("fam", 3) == int(np.random.SeedSequence(h("fam"), spawn_key=(3, 0)).generate_state(1)[0])


def test_draws_stay_in_their_ranges_and_reach_both_edges():
    import numpy as np

    ranges = {
        "x_c": Draw(uniform=(0.05, 0.95)),
        "amplitude": Draw(log_uniform=(0.1, 10.0)),
        "steps": Draw(choice=[2, 3, 4]),
        "grid": Draw(cycle=[201, 0]),
    }
    d = [draw("edges", i, ranges) for i in range(3000)]
    x = np.array([v["x_c"] for v in d])
    a = np.log10([v["amplitude"] for v in d])
    assert x.min() >= 0.05 and x.max() < 0.95 and x.min() < 0.05 + 0.002 and x.max() > 0.95 - 0.002
    assert a.min() >= -1 and a.max() < 1 and a.min() < -1 + 0.005 and a.max() > 1 - 0.005
    # uniform in x and in log(amplitude): each tenth of the range holds about a tenth of the draws
    for v, lo, hi in ((x, 0.05, 0.95), (a, -1.0, 1.0)):
        counts = np.histogram(v, bins=10, range=(lo, hi))[0]
        assert counts.min() > 0.07 * len(v) and counts.max() < 0.13 * len(v)
    assert {v["steps"] for v in d} == {2, 3, 4}
    assert [v["grid"] for v in d[:5]] == [201, 0, 201, 0, 201]
    assert Draw(uniform=(0.3, 0.3)).sample(np.random.default_rng(0), 0) == 0.3


def test_reduced_runs_keep_the_first_campaigns_of_the_full_run(tmp_path):
    cfg = families(tmp_path)
    small = cfg.reduced(campaigns=2, budget=4, policies=["random"])
    full = {(c["problem"]["name"], c["policy"], c["campaign"]): c for c in cfg.cells()}
    cells = small.cells()
    assert {(c["problem"]["name"], c["policy"], c["campaign"]) for c in cells} == {
        ("so", "random", 0),
        ("so", "random", 1),
        ("peak", "random", 0),
        ("peak", "random", 1),
    }
    for c in cells:
        same = full[c["problem"]["name"], c["policy"], c["campaign"]]
        assert c["problem"]["options"] == same["problem"]["options"] and c["seed"] == same["seed"] and c["budget"] == 4
    only = cfg.only(["peak"])
    assert {c["problem"]["name"] for c in only.cells()} == {"peak"}
    with pytest.raises(AbduceError, match="no family 'pk'.*families: so, peak"):
        cfg.only(["pk"])
    with pytest.raises(AbduceError, match="family 'peak' runs none of the policies"):
        cfg.reduced(policies=["grid"])


@pytest.mark.parametrize(
    "edit,match",
    [
        (
            lambda t: t.replace('hypothesis_set = "two"\nbudget', 'hypothesis_set = "three"\nbudget'),
            r"family\.1 \('peak'\)\.hypothesis_set: 'three' is not defined",
        ),
        (
            lambda t: t.replace('truth = "second-order"', 'truth = "sigmoid"'),
            r"family\.0 \('so'\)\.truth: 'sigmoid' is not in set 'two'",
        ),
        (lambda t: t.replace("x_c = {{ uniform", "x_c = {{ unifrom"), r"family\.0\.ranges\.x_c\.unifrom"),
        (lambda t: t.replace("[0.1, 10.0]", "[0.0, 10.0]"), r"family\.0\.ranges\.amplitude.*log_uniform needs 0 < lo"),
        (lambda t: t.replace("uniform = [0.05, 0.95]", "uniform = [0.95, 0.05]"), r"family\.0\.ranges\.x_c.*lo <= hi"),
        (
            lambda t: t.replace(
                "x_c = {{ uniform = [0.05, 0.95] }}", "x_c = {{ uniform = [0.05, 0.95], choice = [1] }}"
            ),
            r"family\.0\.ranges\.x_c.*exactly one of",
        ),
        (
            lambda t: t.replace('options = {{ law = "peak" }}', 'options = {{ law = "peak", steps = 2 }}'),
            r"family\.1.*options and ranges both set steps",
        ),
        (lambda t: t.replace("campaigns = {{ random = 3 }}", "campaigns = {{ randm = 3 }}"), "randm.*known"),
        (
            lambda t: t.replace("campaigns = {{ random = 3 }}", "campaigns = {{ random = 0 }}"),
            r"family\.1\.campaigns\.random",
        ),
        (
            lambda t: t.replace('name = "peak"', 'name = "so"'),
            r"family\.1 \('so'\)\.name: family\.0 is called 'so' too",
        ),
        (
            lambda t: t.replace("campaigns = {{ discriminate = 5, random = 5, grid = 2 }}\n", ""),
            r"family\.0 \('so'\)\.campaigns: give campaigns",
        ),
    ],
)
def test_a_bad_family_names_the_key(tmp_path, edit, match):
    with pytest.raises(AbduceError, match=match):
        load_sweep(write(tmp_path, edit(FAMILIES).format(extra="")))


def test_problems_need_policies_and_the_policies_sweep_still_loads(tmp_path):
    with pytest.raises(AbduceError, match="sweep.policies"):
        load_sweep(
            write(tmp_path, TINY.format(seeds=2, budget=6).replace('policies = ["discriminate", "random"]\n', ""))
        )
    from pathlib import Path

    cfg = load_sweep(Path(__file__).resolve().parents[3] / "deploy" / "sweeps" / "policies.toml")
    assert len(cfg.cells()) == 2 * 5 * 20


def test_band_coverage_counts_the_points_inside_the_95_percent_band():
    import numpy as np

    # |0| <= 1.96, |1.9| <= 1.96, |2.0| > 1.96, |-1.95| <= 1.96, |3| > 1.96 (sd 1); with sd 2 all but 3 ... 4.1 > 3.92
    truth = np.array([0.0, 1.9, 2.0, -1.95, 3.0])
    assert band_coverage(np.zeros(5), np.ones(5), truth) == pytest.approx(3 / 5)
    assert band_coverage(np.zeros(5), np.full(5, 2.0), truth + np.array([0, 0, 0, 0, 1.1])) == pytest.approx(4 / 5)


def frame(rows):
    base = {
        "hypothesis_set": "h",
        "leader": "",
        "p_leader": math.nan,
        "p_none": math.nan,
        "error": math.nan,
        "seconds": math.nan,
        "cpu_seconds": math.nan,
        "coverage": math.nan,
        "xc_error": math.nan,
        "xc_sd": math.nan,
        "wrong_at_09": math.nan,
        "leader_misfit": math.nan,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def test_summarize_families_at_the_budget():
    rows = []
    # in the set, 4 campaigns x 2 steps; at the end: campaign 0 right at 0.97, 1 right at 0.92,
    # 2 wrong (linear at 0.95), 3 wrong but unsure (linear at 0.6)
    ends = [
        ("second-order", 0.97, 0.97, 0.01, 0.0),
        ("second-order", 0.92, 0.92, 0.02, 0.0),
        ("linear", 0.95, 0.03, 0.02, 1.0),
        ("linear", 0.6, 0.3, 0.1, 0.0),
    ]
    cover = [1.0, 0.9, 0.5, 0.8]
    luck = [0.5, -1.0, 2.5, 1.9]  # noise_z: campaign 2's data are the tail of its noise (|z| > 2)
    xc = [(0.01, 0.01), (-0.03, 0.01), (0.05, 0.1), (math.nan, math.nan)]  # |err|/sd = 1, 3, 0.5
    for c, ((leader, pl, pt, pn, wrong), cov, (e, sd), z) in enumerate(zip(ends, cover, xc, luck)):
        rows.append(
            {
                "problem": "so",
                "policy": "random",
                "campaign": c,
                "seed": 100 + c,
                "truth": "second-order",
                "n": 1,
                "p_true": 0.3,
                "leader": "linear",
                "p_leader": 0.5,
                "p_none": 0.2,
            }
        )
        rows.append(
            {
                "problem": "so",
                "policy": "random",
                "campaign": c,
                "seed": 100 + c,
                "truth": "second-order",
                "n": 2,
                "p_true": pt,
                "leader": leader,
                "p_leader": pl,
                "p_none": pn,
                "wrong_at_09": wrong,
                "coverage": cov,
                "xc_error": e,
                "xc_sd": sd,
                "error": 0.1 * c,
                "cpu_seconds": 2.0,
                "noise_z": z,
            }
        )
    # out of the set, 4 campaigns: none leads in two (0.8 > 0.2, 0.6 > 0.4), a law at 0.93 in the third
    # and at 0.7 in the fourth, which fails its checks (flagged: 3 of 4)
    for c, (pl, pn, wrong, misfit) in enumerate(
        [(0.2, 0.8, 0.0, 0.0), (0.4, 0.6, 0.0, 1.0), (0.93, 0.05, 1.0, 0.0), (0.7, 0.3, 0.0, 1.0)]
    ):
        rows.append(
            {
                "problem": "peak",
                "policy": "random",
                "campaign": c,
                "seed": c,
                "truth": "none",
                "n": 2,
                "p_true": math.nan,
                "leader": "linear",
                "p_leader": pl,
                "p_none": pn,
                "wrong_at_09": wrong,
                "leader_misfit": misfit,
            }
        )
    s = summarize(frame(rows)).set_index("problem")
    so, peak = s.loc["so"], s.loc["peak"]
    assert so["seeds"] == 4 and so["identified_at_budget"] == pytest.approx(0.25)  # only 0.97 >= 0.95
    assert so["wrong_at_09"] == pytest.approx(0.25) and so["p_none_median"] == pytest.approx(0.02)
    assert so["none_leads"] == 0.0 and math.isnan(so["n95"])
    assert so["coverage_mean"] == pytest.approx(0.8) and so["coverage_min"] == pytest.approx(0.5)
    assert so["coverage_fair_noise"] == pytest.approx((1.0 + 0.9 + 0.8) / 3)  # campaign 2 (|z| = 2.5) left out
    assert math.isnan(peak["coverage_fair_noise"])
    assert so["xc_within_2sd"] == pytest.approx(2 / 3) and so["xc_err_over_sd_median"] == pytest.approx(1.0)
    assert so["median_error"] == pytest.approx(0.15) and so["median_cpu_seconds"] == 2.0
    assert peak["truth"] == "none" and math.isnan(peak["identified_at_budget"]) and math.isnan(peak["n95"])
    assert peak["p_none_median"] == pytest.approx(0.45) and peak["none_leads"] == pytest.approx(2 / 4)
    assert peak["wrong_at_09"] == pytest.approx(1 / 4) and math.isnan(peak["coverage_mean"])
    assert peak["flagged"] == pytest.approx(3 / 4) and so["flagged"] == 0.0  # none leads, or the leader misfits
    md = markdown(summarize(frame(rows)), budgets={"so": 2, "peak": 2})
    assert (
        "| so (2) | random | 4 | 0.25 | 0.25 | — | 0.020 | 0.00 | 0.00 | 0.80 (0.50); 0.90 fair noise | 0.67 | 1 |"
        in md
    )
    assert "| peak (2) | random | 4 | n/a | 0.25 | n/a | 0.450 | 0.50 | 0.75 | n/a | n/a | n/a |" in md


def test_calibration_bins_the_leaders_probability_and_weighs_the_gaps():
    rows = []

    def case(policy, p, right, truth="second-order", leader=None, p_true=0.1):
        rows.append(
            {
                "problem": "f",
                "policy": policy,
                "campaign": len(rows),
                "seed": 0,
                "n": 1,
                "truth": truth,
                "leader": leader if leader is not None else ("second-order" if right else "linear"),
                "p_leader": p,
                "p_true": p if right else p_true,
            }
        )

    for k in range(10):  # 0.6: 6 of 10 right; 0.995: 9 of 10 right
        case("a", 0.6, k < 6)
        case("a", 0.995, k < 9)
    for k in range(4):  # another policy: 0.8, 1 of 4 right
        case("b", 0.8, k < 1)
    case("a", 0.4, True)  # below the first bin
    case("a", 0.97, False, truth="none", p_true=math.nan)  # out of the set
    case("a", math.nan, False, leader="", p_true=math.nan)  # a law unfitted: no leader
    cal = calibration(frame(rows)).set_index(["policy", "bin"])
    assert list(dict.fromkeys(cal.index.get_level_values("bin"))) == [
        "0.5-0.7",
        "0.7-0.9",
        "0.9-0.95",
        "0.95-0.99",
        ">0.99",
    ]
    a = cal.loc["a"]
    assert a.loc["0.5-0.7", "count"] == 10 and a.loc["0.5-0.7", "accuracy"] == pytest.approx(0.6)
    assert a.loc[">0.99", "count"] == 10 and a.loc[">0.99", "accuracy"] == pytest.approx(0.9)
    assert a.loc["0.9-0.95", "count"] == 0 and math.isnan(a.loc["0.9-0.95", "accuracy"])
    assert a["ece"].iloc[0] == pytest.approx(0.5 * 0.0 + 0.5 * 0.095) and a["cases"].iloc[0] == 20
    b = cal.loc["b"]
    assert b.loc["0.7-0.9", "confidence"] == pytest.approx(0.8) and b["ece"].iloc[0] == pytest.approx(0.55)
    pooled = cal.loc["all"]
    assert pooled["cases"].iloc[0] == 24
    assert pooled["ece"].iloc[0] == pytest.approx((10 * 0.0 + 4 * 0.55 + 10 * 0.095) / 24)
    assert calibration(frame(rows))["count"].sum() == 2 * 24


def test_the_estimate_charges_each_campaign_its_budget_times_the_measured_cost_per_step(tmp_path):
    from abduce.controller.rehearse.sweep import estimate

    cfg = families(tmp_path)
    # measured: random 2 s a step on a grid, 3 s in the box (one campaign each, n = 4); discriminate only in general
    measured = pd.DataFrame(
        [
            {"problem": "x", "policy": "random", "campaign": 0, "n": 4, "cpu_seconds": 8.0, "space": "finite"},
            {"problem": "x", "policy": "random", "campaign": 1, "n": 4, "cpu_seconds": 12.0, "space": "box"},
            {"problem": "x", "policy": "discriminate", "campaign": 0, "n": 2, "cpu_seconds": 1.0, "space": "finite"},
            {"problem": "x", "policy": "grid", "campaign": 0, "n": 5, "cpu_seconds": 5.0, "space": "box"},
        ]
    )
    est = estimate(cfg, measured).set_index(["family", "policy", "space"])
    # so: 5 random campaigns, grid = 201, 0, 201, 0, 201 -> 3 on the grid, 2 in the box, budget 6
    assert est.loc[("so", "random", "finite"), "seconds"] == pytest.approx(3 * 6 * 2.0)
    assert est.loc[("so", "random", "box"), "seconds"] == pytest.approx(2 * 6 * 3.0)
    # discriminate in the box: no box measurement, so its cost in general (0.5 s a step)
    assert est.loc[("so", "discriminate", "box"), "seconds"] == pytest.approx(2 * 6 * 0.5)
    assert est.loc[("so", "grid", "finite"), "seconds"] == pytest.approx(1 * 6 * 1.0)  # grid = 201 on campaign 0
    # peak: 3 random campaigns on the simulator's default grid, budget 5
    assert est.loc[("peak", "random", "finite"), "seconds"] == pytest.approx(3 * 5 * 2.0)
    assert est["campaigns"].sum() == len(cfg.cells())


def test_the_reliability_diagram_is_drawn_even_without_a_case(tmp_path):
    from abduce.controller.rehearse.scoring import plot_reliability

    out_of_set = frame(
        [
            {
                "problem": "f",
                "policy": "a",
                "campaign": 0,
                "seed": 0,
                "n": 1,
                "truth": "none",
                "leader": "linear",
                "p_leader": 0.97,
                "p_true": math.nan,
            }
        ]
    )
    cal = calibration(out_of_set)
    assert list(cal["policy"].unique()) == ["all"] and cal["count"].sum() == 0 and cal["ece"].isna().all()
    plot_reliability(cal, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


RECORDED = """
[sweep]
name = "recorded"
policies = ["discriminate"]
seeds = 1
budget = 5
n_init = 4

[hypothesis_sets]
two = ["second-order", "linear"]

[[problem]]
name = "grid"
source = "recorded:{path}"
truth = "second-order"
"""


def test_a_recorded_problem_is_scored_against_its_whole_grid_in_the_channels_unit(tmp_path):
    import numpy as np

    from abduce.controller.rehearse.sweep import run_cell
    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    sim = Transition1D(law="second-order", grid=41, seed=5)
    values = sim.measure(sim.candidates())
    values[3] = np.nan
    path = tmp_path / "grid.h5"
    RecordedDataset(sim.candidates(), ("x",), {"y": values}, units={"y": "mV"}).save(path)
    (cell,) = load_sweep(write(tmp_path, RECORDED.format(path=path))).cells()
    end = run_cell(cell)[-1]
    assert end["n"] == 5 and end["error_against"] == "recorded grid" and end["error_unit"] == "mV"
    assert 0 < end["rmse"] <= end["max_error"]
    # relative: the RMS over the range of the recorded values (the missed pixel left out)
    assert end["error"] == pytest.approx(end["rmse"] / float(np.nanmax(values) - np.nanmin(values)), rel=1e-9)


def test_the_summary_takes_the_median_reconstruction_and_what_it_was_scored_against():
    rows = [
        {"problem": "p", "hypothesis_set": "h", "policy": "x", "seed": s, "n": 5, "p_true": 0.5, "leader": ""}
        | {"rmse": r, "max_error": m, "error_against": "recorded grid", "error_unit": "mV"}
        for s, (r, m) in enumerate([(0.1, 0.3), (0.2, 0.5), (0.4, 0.4)])
    ]
    s = summarize(pd.DataFrame(rows)).iloc[0]
    assert s["median_rmse"] == pytest.approx(0.2) and s["median_max_error"] == pytest.approx(0.4)
    assert (s["error_against"], s["error_unit"]) == ("recorded grid", "mV")
    old = summarize(pd.DataFrame([{k: v for k, v in r.items() if k not in ("rmse", "error_against")} for r in rows]))
    assert math.isnan(old.iloc[0]["median_rmse"]) and old.iloc[0]["error_against"] == ""
