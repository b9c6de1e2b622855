"""The GPax head-to-head benchmark's helpers (no gpax needed), and one tiny run end to end (needs gpax, slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.benchmarks import gpax_head_to_head as h2h


def test_winner_is_highest_average_reward_then_most_chosen_then_first():
    record = np.array([[3, 0.2], [2, 0.5], [5, 0.5], [0, 0.0]])
    assert h2h.gpax_winner(record) == 2  # 0.5 twice: the more chosen
    assert h2h.gpax_winner(np.array([[1, 0.5], [1, 0.5]])) == 0
    assert h2h.gpax_winner(np.array([[2, -1.0], [0, 0.0]])) == 1  # never rewarded beats a losing record


def test_reward_is_plus_one_when_median_variance_fell_else_minus_one():
    assert h2h.gpax_reward(None, 1.0) is None
    assert h2h.gpax_reward(2.0, 1.0) == 1.0
    assert h2h.gpax_reward(1.0, 1.0) == -1.0
    assert h2h.gpax_reward(1.0, 2.0) == -1.0
    assert h2h.gpax_reward(float("nan"), 1.0) is None


def test_relative_rmse_is_the_reconstruction_scores_formula():
    from abduce.controller.rehearse.reconstruction import Truth, score

    truth = np.linspace(0.0, 2.0, 11)
    mean = truth + np.sin(np.arange(11))

    class Stub:
        def posterior_mean(self):
            return mean

        def leader(self):
            return None

    relative = score(Stub(), Truth(truth, "simulator", ""))["relative"]
    assert h2h.relative_rmse(mean, truth) == pytest.approx(relative)
    assert math.isnan(h2h.relative_rmse(None, truth))


def _row(method, seed, identified, steps, total, err):
    return {
        "method": method,
        "seed": seed,
        "identified": identified,
        "step_times": steps,
        "total_s": total,
        "recon_error": err,
    }


def test_summary_and_ratios():
    rows = [
        _row("abduce discriminate", 0, True, [0.1, 0.2, 0.3], 2.0, 0.05),
        _row("abduce discriminate", 1, False, [0.2], 3.0, float("nan")),
        _row(h2h.GPAX, 0, False, [10.0, 12.0], 30.0, 0.2),
        _row(h2h.GPAX, 1, True, [14.0], 40.0, 0.1),
    ]
    summary = h2h.summarise(rows)
    assert [s["method"] for s in summary] == ["abduce discriminate", h2h.GPAX]
    ab, gp = summary
    assert (ab["seeds"], ab["identified"], ab["identified_frac"]) == (2, 1, 0.5)
    assert ab["median_step_s"] == pytest.approx(0.2)  # over all steps of all seeds
    assert ab["median_total_s"] == pytest.approx(2.5)
    assert ab["median_recon_error"] == pytest.approx(0.05)  # NaN left out
    assert gp["median_step_s"] == pytest.approx(12.0)
    (r,) = h2h.ratios(summary)
    assert r["method"] == "abduce discriminate"
    assert r["step_ratio"] == pytest.approx(60.0)
    assert r["identified"] == "1/2 vs 1/2"
    table = h2h.format_table(summary)
    assert "60.0" in table and h2h.GPAX in table
    assert h2h.ratios(summary[:1]) == []


def test_main_without_gpax_says_how_to_install(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "gpax", None)  # import gpax -> ImportError
    assert h2h.main(["--seeds", "1"]) == 2
    assert "pip install -e '.[peers]'" in capsys.readouterr().err


def test_jax_means_match_abduces_hypotheses():
    pytest.importorskip("numpyro")
    import torch

    from abduce.hypotheses.library import BUILTIN

    x = np.linspace(0.0, 1.0, 41)[:, None]
    params = {
        "second-order": {"A": 1.3, "x_c": 0.6, "beta": 0.4},
        "first-order": {"A": 0.9, "x_c": 0.45},
        "linear": {"y_lo": 0.8, "y_hi": -0.2},
        "sigmoid": {"A": 1.1, "x_c": 0.5, "w": 0.07},
    }
    fixed = {"delta": None, "x0": 0.0, "span": 1.0}
    for name, (mean_fn, _) in h2h._gpax_hypotheses().items():
        p = dict(params[name])
        for q in BUILTIN[name].parameters:  # fixed ones as declared (space [0, 1], s = 1: relative = physical)
            if q.fixed is not None:
                p.setdefault(q.name, q.fixed if fixed.get(q.name) is None else fixed[q.name])
        ours = np.asarray(mean_fn(x, params[name]))
        theirs = (
            BUILTIN[name]
            .mean(
                torch.as_tensor(x, dtype=torch.float64), {k: torch.tensor(v, dtype=torch.float64) for k, v in p.items()}
            )
            .numpy()
        )
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_one_tiny_run_end_to_end(tmp_path):
    pytest.importorskip("gpax")
    assert (
        h2h.main(
            [
                "--seeds",
                "1",
                "--budget",
                "7",
                "--warmup",
                "20",
                "--samples",
                "20",
                "--grid",
                "41",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    results = (tmp_path / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 3  # header + three methods
    summary = (tmp_path / "summary.csv").read_text()
    assert h2h.GPAX in summary and "abduce discriminate" in summary
    assert "GPax step / step" in (tmp_path / "table.txt").read_text()
