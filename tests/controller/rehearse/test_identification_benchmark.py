"""The identification benchmark (deploy/sweeps/identification.toml): the committed config, and a small slice
of it run through the benchmark script on a LocalCluster, checked against oracles computed here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abduce.controller.rehearse.sweep_config import OUT_OF_SET, load_sweep
from abduce.simulators.transition1d import OUT_OF_SET as SHAPES
from abduce.simulators.transition1d import Transition1D
from tests.benchmarks import identification_benchmark as bench

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "sweeps" / "identification.toml"
LAWS = ("second-order", "first-order", "sigmoid", "linear")
CSV = 1e-5  # the csv files keep 6 significant digits


@pytest.fixture(scope="module")
def config():
    return load_sweep(CONFIG)


def test_the_config_has_the_issues_families_and_counts(config):
    fams = {f.name: f for f in config.family}
    assert set(LAWS) <= set(fams) and set(SHAPES) <= set(fams) and "loops-remanence" in fams
    for f in config.family:
        counts = config.counts(f)
        assert counts["discriminate"] >= 40 and counts["random"] >= 40, f.name
        assert min(counts[p] for p in ("epsilon-greedy", "grid", "plain-gp")) >= 20, f.name
        assert set(config.hypothesis_sets[f.hypothesis_set]) == set(LAWS)
    for law in LAWS:
        f = fams[law]
        assert f.truth == law and f.options["law"] == law
        r = f.ranges
        assert set(r["grid"].cycle) == {201, 0}  # on a grid and on the continuous space
        assert tuple(r["amplitude"].log_uniform) == (0.1, 10.0)  # two decades
        assert tuple(r["noise_fraction"].uniform) == (0.02, 0.15)
        if law != "linear":
            assert tuple(r["x_c"].uniform) == (0.05, 0.95)  # the inner 90% of [0, 1]
        if law == "second-order":
            assert tuple(r["beta"].uniform) == (0.125, 0.5)
    for shape in SHAPES:
        assert fams[shape].truth == OUT_OF_SET and fams[shape].options["law"] == shape
    loops = fams["loops-remanence"]
    assert loops.source == "simulated:loops" and loops.reduction == "remanence" and loops.truth == "second-order"
    lo, hi = 0.0, 0.25  # the Loops simulator's wafer
    assert tuple(loops.ranges["x_c"].uniform) == pytest.approx((lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)))


def test_every_drawn_truth_of_the_full_benchmark_builds_its_simulator(config):
    from abduce.instruments.drivers.sources import build_driver

    seen = set()
    for cell in config.cells():
        key = (cell["problem"]["name"], cell["campaign"])
        if key in seen:
            continue  # the same truth under every policy
        seen.add(key)
        build_driver(cell["problem"]["source"], {"seed": cell["seed"], **cell["problem"]["options"]})
    assert len(seen) == sum(max(config.counts(f).values()) for f in config.family)


def test_the_estimate_covers_every_campaign_of_the_full_benchmark(config, capsys):
    assert bench.main(["--dry-run"]) == 0
    est = bench.estimate_table(config, None)
    assert len(config.cells()) == est["campaigns"].sum() == 9 * 140
    assert "1260 campaigns; estimate" in capsys.readouterr().out


@pytest.mark.xfail(
    strict=True,
    reason="a known shortfall: at the costs measured after the evidence's "
    "hyperparameter factor and the fits' screened restarts (MEASURED), the full benchmark takes "
    "~2.5 h on 2 dedicated cores against the issue's 2 h; the counts are the issue's minimum and "
    "shorter budgets would cost identifications (README, 'Across the laws' range')",
)
def test_the_full_benchmark_fits_two_hours_on_two_cores_at_the_recorded_costs(config):
    est = bench.estimate_table(config, None)
    assert est["seconds"].sum() / 2 <= 2 * 3600


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Two families (one in the set, one out of it), 2 campaigns each, discriminate and random, 8 measurements."""
    out = tmp_path_factory.mktemp("identification")
    argv = [
        "--family",
        "second-order",
        "--family",
        "peak",
        "--policy",
        "discriminate",
        "--policy",
        "random",
        "--campaigns",
        "2",
        "--budget",
        "8",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    assert bench.main(argv) == 0
    cfg = load_sweep(CONFIG).only(["second-order", "peak"]).reduced(2, 8, ["discriminate", "random"])
    return out, cfg, pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])


def test_the_slice_writes_every_output_with_its_columns(smoke):
    out, _, results = smoke
    for name in (
        "results.csv",
        "summary.csv",
        "calibration.csv",
        "summary.md",
        "identification.png",
        "reliability.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert {
        "problem",
        "hypothesis_set",
        "policy",
        "seed",
        "campaign",
        "truth",
        "n",
        "p_true",
        "leader",
        "p_leader",
        "p_none",
        "leader_misfit",
        "error",
        "seconds",
        "cpu_seconds",
        "coverage",
        "xc_error",
        "xc_sd",
        "wrong_at_09",
        "noise_z",
        "space",
        "truth_x_c",
        "truth_amplitude",
        "truth_noise_fraction",
        "truth_grid",
        "truth_beta",
        "truth_width",
    } <= set(results)
    sizes = results.groupby(["problem", "policy", "campaign"])["n"].agg(list)
    assert len(sizes) == 2 * 2 * 2 and all(v == list(range(1, 9)) for v in sizes)
    summary = pd.read_csv(out / "summary.csv")
    assert {
        "n95",
        "identified_at_budget",
        "wrong_at_09",
        "p_none_median",
        "none_leads",
        "flagged",
        "coverage_mean",
        "coverage_min",
        "coverage_fair_noise",
        "xc_within_2sd",
        "xc_err_over_sd_median",
    } <= set(summary)
    table = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ")]
    assert sum(line.startswith(("| second-order (8) |", "| peak (8) |")) for line in table) == 4


def test_the_slice_pairs_truths_across_policies_and_draws_them_in_range(smoke):
    _, cfg, results = smoke
    last = results.groupby(["problem", "policy", "campaign"]).tail(1).set_index(["problem", "policy", "campaign"])
    for fam in cfg.family:
        for i in range(2):
            a, b = last.loc[(fam.name, "discriminate", i)], last.loc[(fam.name, "random", i)]
            for name, spec in fam.ranges.items():
                assert a[f"truth_{name}"] == b[f"truth_{name}"]
                v = a[f"truth_{name}"]
                if spec.uniform is not None:
                    assert spec.uniform[0] <= v <= spec.uniform[1]
                if spec.log_uniform is not None:
                    assert spec.log_uniform[0] <= v <= spec.log_uniform[1]
            assert a["seed"] == b["seed"]
    so = last.loc["second-order"]
    assert sorted(set(zip(so.index.get_level_values("campaign"), so["space"]))) == [(0, "finite"), (1, "box")]


def test_the_slice_per_step_columns_are_consistent(smoke):
    _, _, results = smoke
    so, peak = results[results["problem"] == "second-order"], results[results["problem"] == "peak"]
    assert (so["truth"] == "second-order").all() and (peak["truth"] == OUT_OF_SET).all()
    assert peak["p_true"].isna().all() and peak["coverage"].isna().all() and peak["xc_error"].isna().all()
    fitted = results[results["leader"].notna()]
    assert len(fitted) and (fitted["p_leader"] + fitted["p_none"] <= 1 + 1e-9).all()
    both = so[so["leader"].notna()]
    assert (both["p_true"] <= both["p_leader"] + 1e-12).all()  # the leader is the most probable law
    lead = both[both["leader"] == "second-order"]
    np.testing.assert_allclose(lead["p_true"], lead["p_leader"], rtol=0, atol=0)
    last = results.groupby(["problem", "policy", "campaign"]).tail(1)
    expected_wrong = (last["p_leader"] >= 0.9) & (last["leader"] != last["truth"])
    np.testing.assert_array_equal(last["wrong_at_09"].to_numpy(), expected_wrong.to_numpy(dtype=float))


def test_a_campaign_of_the_slice_rerun_here_gives_its_coverage_and_x_c_error(smoke):
    """Oracle: the same campaign rebuilt in this process; coverage and x_c error from its posterior and the
    simulator's own truth, computed here."""
    from abduce.controller.rehearse.rehearsal import Rehearsal

    _, cfg, results = smoke
    for campaign_index in (0, 1):  # on the grid, and on the continuous space
        cell = next(
            c
            for c in cfg.cells()
            if c["problem"]["name"] == "second-order" and c["policy"] == "random" and c["campaign"] == campaign_index
        )
        options = cell["problem"]["options"]
        probs = []
        campaign = Rehearsal(
            source="simulated:transition-1d",
            options=options,
            hypotheses=tuple(cell["hypotheses"]),
            policy="random",
            budget=8,
            seed=cell["seed"],
            n_init=cell["n_init"],
        ).run([lambda r: probs.append(r.probabilities.get("second-order", math.nan))])
        rows = results[
            (results["problem"] == "second-order")
            & (results["policy"] == "random")
            & (results["campaign"] == campaign_index)
        ]
        np.testing.assert_allclose(rows["p_true"].to_numpy(), probs, rtol=CSV, atol=1e-300)
        mean, sd = campaign.posterior("second-order")
        truth = Transition1D(**{k: v for k, v in options.items()}).truth(campaign.points())
        inside = np.abs(mean - truth) <= 1.959963984540054 * sd
        end = rows.iloc[-1]
        assert end["coverage"] == pytest.approx(inside.mean(), rel=CSV)
        xc = next(h for h in campaign.summary()["hypotheses"] if h["name"] == "second-order")["parameters"]["x_c"]
        assert end["xc_error"] == pytest.approx(xc["mean"] - options["x_c"], rel=CSV, abs=CSV * options["x_c"])
        assert end["xc_sd"] == pytest.approx(xc["sd"], rel=CSV)
        x, y = campaign.data
        sim = Transition1D(**{k: v for k, v in options.items()})
        z = np.sum(np.asarray(y) - sim.truth(np.asarray(x))) / (sim.noise * math.sqrt(len(y)))
        assert end["noise_z"] == pytest.approx(z, rel=CSV, abs=CSV)


def test_the_slice_summary_and_calibration_follow_from_its_results(smoke):
    out, _, results = smoke
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""]).set_index(["problem", "policy"])
    texts = ["error_against", "error_unit"]  # "" where nothing was scored in a unit, which the csv reads back as NaN
    summary[texts] = summary[texts].fillna("")
    calib = pd.read_csv(out / "calibration.csv")
    last = results.groupby(["problem", "policy", "campaign"]).tail(1)
    for (problem, policy), g in last.groupby(["problem", "policy"]):
        s = summary.loc[(problem, policy)]
        assert s["seeds"] == 2
        assert s["wrong_at_09"] == pytest.approx(g["wrong_at_09"].mean())
        assert s["p_none_median"] == pytest.approx(g["p_none"].median(), rel=CSV, abs=1e-300)
        if problem == "peak":
            assert math.isnan(s["identified_at_budget"]) and math.isnan(s["coverage_mean"])
            assert s["none_leads"] == pytest.approx((g["p_none"] > g["p_leader"]).mean())
        else:
            assert s["identified_at_budget"] == pytest.approx((g["p_true"] >= 0.95).mean())
            assert s["coverage_min"] == pytest.approx(g["coverage"].min(), rel=CSV)
            ratio = (g["xc_error"].abs() / g["xc_sd"]).dropna()
            assert s["xc_within_2sd"] == pytest.approx((ratio <= 2).mean())
    from abduce.controller.rehearse.scoring import summarize

    again = summarize(results).set_index(["problem", "policy"])  # from the csv, as a reader would
    pd.testing.assert_frame_equal(
        again[summary.columns].drop(columns=["median_seconds", "median_cpu_seconds"]),
        summary.drop(columns=["median_seconds", "median_cpu_seconds"]),
        check_dtype=False,
        rtol=CSV,
    )
    cases = results[(results["truth"] == "second-order") & results["leader"].notna() & (results["p_leader"] >= 0.5)]
    pooled = calib[calib["policy"] == "all"]
    assert pooled["count"].sum() == len(cases) == pooled["cases"].iloc[0]
    right = cases[cases["p_leader"] > 0.99]
    assert pooled.set_index("bin").loc[">0.99", "count"] == len(right)
    if len(right):
        assert pooled.set_index("bin").loc[">0.99", "accuracy"] == pytest.approx(
            (right["leader"] == "second-order").mean()
        )
