"""What ``abduce sweep`` and ``abduce replay`` print about the reconstruction."""

import math

import pandas as pd
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.cli.rehearse import SHOWN, reconstruction_lines

runner = CliRunner()


def test_the_sweep_prints_each_scored_reconstruction_with_its_unit_and_what_it_was_scored_against():
    summary = pd.DataFrame(
        [
            {"problem": "scan", "hypothesis_set": "two", "policy": "random"}
            | {
                "median_rmse": 0.0729,
                "median_max_error": 0.194,
                "error_against": "recorded grid",
                "error_unit": "pm/V",
            },
            {"problem": "sim", "hypothesis_set": "two", "policy": "random"}
            | {"median_rmse": 0.0244, "median_max_error": 0.0996, "error_against": "simulator", "error_unit": "1"},
            {"problem": "live", "hypothesis_set": "two", "policy": "random"}
            | {"median_rmse": math.nan, "median_max_error": math.nan, "error_against": "", "error_unit": ""},
        ]
    )
    assert reconstruction_lines(summary) == [
        "scan / two / random: reconstruction vs the recorded grid, median RMSE 0.0729 pm/V, "
        "median max error 0.194 pm/V",
        "sim / two / random: reconstruction vs the simulator, median RMSE 0.0244, median max error 0.0996",
    ]
    assert {"median_rmse", "median_max_error"} <= set(SHOWN)


def test_replay_against_a_recorded_grid_prints_the_rmse_in_the_channels_unit(tmp_path):
    import numpy as np

    from abduce.instruments.drivers.recorded import RecordedDataset
    from abduce.simulators.transition1d import Transition1D

    run = tmp_path / "run"
    small = ["--budget", "5", "--n-init", "4", "--grid", "31", "--hypotheses", "second-order,linear", "--quiet"]
    assert runner.invoke(app, ["run", "--out", str(run), *small]).exit_code == 0
    sim = Transition1D(grid=31, seed=1)
    grid = tmp_path / "scan.npz"
    RecordedDataset(sim.candidates(), ("x",), {"y": sim.measure(sim.candidates())}, units={"y": "nA"}).save(grid)
    result = runner.invoke(app, ["replay", str(run), "--against", f"recorded:{grid}"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "reconstruction against │ recorded grid, 31 points │ recorded grid, 31 points" in text
    rmse = [line for line in result.output.splitlines() if "RMSE (nA)" in line]
    assert len(rmse) == 1 and all(np.isfinite(float(v)) for v in rmse[0].split("│")[2:4])
