"""``abduce inspect``: a campaign's state from its journal alone, equal to what the campaign reports.

The recorded runs here are shared with test_plots.py and test_report.py
(built once per process, in a temporary folder).
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.errors import ConfigError
from abduce.controller.journal.store import Journal
from abduce.controller.views.inspection import SCHEMA, Inspection, inspect_journal, inspect_run
from abduce.controller.views.terminal import estimate, render

runner = CliRunner()
RUN = dict(hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=10, grid=101, n_init=4, seed=3)


def _scratch(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def recorded(nan_at: int | None = None) -> tuple[Path, dict[int, dict]]:
    """A seeded epsilon-greedy run directory and the live campaign's ``summary()`` after each tell.

    The summary is taken by a consumer, which runs after ``tell`` N and before
    ``ask`` N+1: the campaign as it stands after exactly N measurements.
    ``nan_at``: the instrument reads NaN the first time step ``nan_at`` is
    asked for (the point is skipped and asked for anew).
    """
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.simulated import SimulatedRun

    opts = SimulatedRun(**RUN)
    out = _scratch("abduce-inspect-") / "run"
    rundir = RunDirectory(out, {"mode": "in-process", **opts.model_dump(mode="json")})
    campaign, sim = opts.build()
    live = {0: campaign.summary()}
    failed: set[int] = set()

    def instrument(request):
        if request.step == nan_at and nan_at not in failed:
            failed.add(nan_at)
            return Measurement(request.request_id, request.x, math.nan)
        return Measurement(request.request_id, request.x, float(sim.measure(np.array([request.x]))[0]))

    def capture(record):
        live[campaign.n] = campaign.summary()

    try:
        run_campaign(campaign, instrument, [rundir, capture], journal=rundir.journal)
    except BaseException:
        rundir.close()
        raise
    rundir.finish(campaign)
    return out, live


@functools.cache
def recorded_loops() -> Path:
    """A spectroscopic run (hysteresis loops reduced to their area), journalled so it can be rebuilt."""
    from abduce.controller.journal.rundir import RunDirectory
    from abduce.controller.rehearse.rehearsal import Rehearsal

    r = Rehearsal(
        "simulated:loops",
        ("second-order", "linear"),
        {"grid": 41, "m": 32},
        policy="discriminate",
        budget=6,
        seed=1,
        n_init=4,
        reduction="loop-area",
    )
    out = _scratch("abduce-loops-") / "run"
    config = {"mode": "rehearsal", **r.model_dump(mode="json")}
    rundir = RunDirectory(out, config)
    try:
        r.run([rundir], journal=rundir.journal)
    finally:
        rundir.close()
    return out


def synthetic_journal(path: Path, n: int, names=("second-order", "linear"), budget: int | None = None) -> Path:
    """A journal of ``n`` request/measurement/decision triples written the way the loop writes them
    (ids and values made up: it cannot be rebuilt into a campaign)."""
    config = {
        "mode": "in-process",
        "simulator": "transition-1d",
        "truth": "second-order",
        "hypotheses": list(names),
        "policy": "epsilon-greedy",
        "acquisition": None,
        "budget": budget or n,
        "seed": 0,
        "grid": 101,
        "n_init": 4,
        "epsilon": 0.1,
    }
    rng = np.random.default_rng(0)
    with Journal.create(path, config) as j:
        for step in range(n):
            rid = f"req-{step}"
            driver = None if step < 4 else names[step % len(names)]
            reason = "initial-design" if step < 4 else "exploit"
            x = [float(rng.random())]
            j.append(
                "request",
                {"request_id": rid, "step": step, "x": x, "hypothesis": driver, "reason": reason},
                request_id=rid,
                durability="next",
            )
            y = float(rng.normal())
            j.append("measurement", {"x": x, "y": y}, request_id=rid, durability="next")
            fitted = step >= 3
            p = float(rng.random())
            probs = dict(zip(names, (p, 1 - p))) if fitted else {}
            j.append(
                "decision",
                {
                    "step": step,
                    "request_id": rid,
                    "x": x,
                    "y": y,
                    "hypothesis": driver,
                    "reason": reason,
                    "refit": list(names) if fitted else [],
                    "reward": float(step % 3 == 0) if driver else None,
                    "probabilities": probs,
                    "log_evidence": {k: math.log(v) for k, v in probs.items()},
                    "integrated_variance": dict.fromkeys(probs, 0.01),
                    "parameters": {k: {"x_c": [0.6, 0.01], "A": [1.0, 0.1]} for k in probs},
                    "fit_failures": {},
                    "stopped": step == n - 1,
                    "fits": {},
                },
                request_id=rid,
                durability="next",
            )
    return path


# --------------------------------------------------------------------------- equal to the campaign


def test_inspect_after_n_steps_equals_the_live_campaigns_summary():
    out, live = recorded()
    assert sorted(live) == list(range(RUN["budget"] + 1))
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        for n, summary in live.items():
            ins = inspect_journal(journal, step=n)
            assert ins.summary.model_dump() == summary, n
            assert ins.stopping.measurements == len(ins.measurements) == n
    # and the whole journal is the finished campaign (summary.json is its summary())
    assert inspect_run(out).summary.model_dump() == json.loads((out / "summary.json").read_text())


def test_inspect_json_on_the_command_line_is_the_campaigns_summary():
    out, live = recorded()
    for n in (0, 4, 7):
        result = runner.invoke(app, ["inspect", str(out), "--step", str(n), "--json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["summary"] == live[n]
        Inspection.model_validate(doc)  # the schema, strict: no missing and no extra fields


def test_a_fresh_campaign_driven_for_n_steps_reports_the_same():
    """Independent of the run that wrote the journal: a new campaign, asked and told N times, refitting."""
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.rehearse.simulated import SimulatedRun

    out, _ = recorded()
    campaign, sim = SimulatedRun(**RUN).build()
    for _ in range(6):
        r = campaign.ask()
        campaign.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    assert inspect_run(out, step=6).summary.model_dump() == campaign.summary()


def test_the_rebuilt_campaign_reports_the_same():
    from abduce.controller.journal.rebuild import rebuild

    out, _ = recorded()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        for n in (3, 5, 8):
            _, campaign = rebuild(journal, upto=n)
            assert inspect_journal(journal, step=n).summary.model_dump() == campaign.summary()


def test_a_skipped_reading_counts_as_an_ask_as_in_the_campaign():
    out, live = recorded(nan_at=5)
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        assert [e.body.get("skipped") for e in journal.events("error")] == [True]
        for n in (5, 6, 10):
            ins = inspect_journal(journal, step=n)
            assert ins.summary.model_dump() == live[n], n
        full = inspect_journal(journal)
    assert [m.step for m in full.measurements] == list(range(10))
    assert full.stopping.errors[0].skipped and full.stopping.errors[0].reason == "non-finite"
    assert full.stopping.in_flight == []


# --------------------------------------------------------------------------- the schema


def test_the_schema_constant_is_the_models_and_the_docstring_names_every_field():
    import abduce.controller.views.inspection as module
    import abduce.controller.views.proposals as proposals
    import abduce.controller.views.transfer as transfer

    doc = module.__doc__ + proposals.__doc__ + transfer.__doc__  # the inspection's JSON, its PROPOSAL and TRANSFER
    assert SCHEMA == Inspection.model_json_schema()
    assert SCHEMA["additionalProperties"] is False
    for model in SCHEMA["$defs"].values():
        assert model.get("additionalProperties") is False
        for field in model["properties"]:
            assert f'"{field}"' in doc, field
    for field in SCHEMA["properties"]:
        assert f'"{field}"' in module.__doc__, field


def test_output_validates_and_rejects_what_the_schema_does_not_allow():
    out, _ = recorded()
    doc = json.loads(inspect_run(out).model_dump_json())
    Inspection.model_validate(doc)
    doc["summary"]["hypotheses"][0]["unknown"] = 1
    with pytest.raises(ValueError):
        Inspection.model_validate(doc)


def test_measurements_and_stopping_state():
    out, _ = recorded()
    ins = inspect_run(out)
    lines = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    assert [(m.request_id, m.x, m.y) for m in ins.measurements] == [(r["request_id"], r["x"], r["y"]) for r in lines]
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert [m.probabilities for m in ins.measurements] == [d["probabilities"] for d in decisions]
    assert [m.reason for m in ins.measurements][:4] == ["initial-design"] * 4
    st = ins.stopping
    assert (st.measurements, st.budget, st.stopped, st.policy) == (10, 10, True, "epsilon-greedy")
    assert inspect_run(out, step=6).stopping.stopped is False
    assert ins.hypotheses == ["second-order", "linear"] and ins.mode == "in-process"


def test_a_step_beyond_the_journal_is_a_clear_error(tmp_path):
    out, _ = recorded()
    with pytest.raises(ConfigError, match="only 10 measurements"):
        inspect_run(out, step=11)
    result = runner.invoke(app, ["inspect", str(out), "--step", "11"])
    assert result.exit_code == 2 and "only 10" in result.output
    result = runner.invoke(app, ["inspect", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_terminal_tables_show_parameters_with_uncertainties():
    out, _ = recorded()
    result = runner.invoke(app, ["inspect", str(out / "journal.sqlite")], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    assert "second-order" in result.output and "x_c = 0." in result.output and "±" in result.output
    assert "10 / 10 measurements, stopped; policy epsilon-greedy" in result.output
    assert estimate(0.598123, 0.0123) == "0.598 ± 0.012"
    assert estimate(123.4, 5.0) == "123.4 ± 5.0"


def test_the_table_shows_the_last_rows_and_the_json_all(tmp_path):
    ins = inspect_run(synthetic_journal(tmp_path / "j.sqlite", 30))
    _, table, _ = render(ins)
    assert table.row_count == 20 and len(ins.measurements) == 30


# --------------------------------------------------------------------------- reading safely


def test_every_journal_mode_is_read_for_inspection():
    from abduce.controller.recipe.spec import spec_of

    out, _ = recorded()
    with Journal.open(out / "journal.sqlite", readonly=True) as j:
        spec = spec_of(j.config())
    assert (spec.mode, spec.hypotheses, spec.policy, spec.budget) == (
        "in-process",
        ("second-order", "linear"),
        "epsilon-greedy",
        10,
    )
    common = {
        "hypotheses": ["linear"],
        "policy": "discriminate",
        "acquisition": "ucb",
        "budget": 7,
        "seed": 1,
        "n_init": 3,
        "epsilon": 0.1,
    }
    configs = [
        {"mode": "listen", **common},
        {"mode": "daemon", "campaign": common},
        {"mode": "rehearsal", "source": "simulated:transition-1d", **common},
    ]
    for config in configs:
        spec = spec_of(config)
        assert (spec.mode, spec.hypotheses, spec.policy, spec.acquisition, spec.budget) == (
            config["mode"],
            ("linear",),
            "discriminate",
            "ucb",
            7,
        )
    with pytest.raises(ConfigError, match="mode"):
        spec_of({"mode": "other"})


def test_inspect_imports_no_torch():
    code = "import sys, abduce.controller.views.inspection; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_inspection_reads_a_journal_being_written_and_never_writes(tmp_path):
    path = synthetic_journal(tmp_path / "journal.sqlite", 6, budget=20)
    with Journal.open(path) as writer:  # a daemon holding the journal open, still appending
        writer.append(
            "request",
            {"request_id": "late", "step": 6, "x": [0.5], "hypothesis": "linear", "reason": "exploit"},
            request_id="late",
        )
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith("-shm")}
        ins = inspect_run(path)
        assert ins.stopping.in_flight == ["late"] and ins.stopping.measurements == 6
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith("-shm")} == files
        writer.append("measurement", {"x": [0.5], "y": 0.1}, request_id="late")
        assert inspect_run(path).stopping.measurements == 7  # a decision not yet written: no probabilities
        assert inspect_run(path).measurements[-1].probabilities == {}
    assert inspect_run(path, step=6).summary.model_dump()["hypotheses"][1]["times_chosen"] == 1


def test_times_chosen_counts_requests_up_to_the_step(tmp_path):
    ins = inspect_run(synthetic_journal(tmp_path / "j.sqlite", 10))
    chosen = {h.name: h.times_chosen for h in ins.summary.hypotheses}
    # steps 4..9 alternate: linear at odd steps, second-order at even ones
    assert chosen == {"second-order": 3, "linear": 3}
    assert {h.name: h.times_chosen for h in inspect_run(tmp_path / "j.sqlite", step=5).summary.hypotheses} == {
        "second-order": 1,
        "linear": 0,
    }


# --------------------------------------------------------------------------- speed


@functools.cache
def big_journal() -> tuple[Path, float]:
    """A synthetic journal of 10^4 measurements (shared with test_report.py) and the seconds it took to write."""
    path = _scratch("abduce-big-") / "journal.sqlite"
    t = time.perf_counter()
    synthetic_journal(path, 10_000)
    return path, time.perf_counter() - t


def test_inspect_reads_ten_thousand_measurements():
    path, built_s = big_journal()
    t = time.perf_counter()
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    json_s = time.perf_counter() - t
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["measurements"]) == 10_000 and doc["summary"]["measurements"] == 10_000
    t = time.perf_counter()
    mid = inspect_run(path, step=5_000)
    step_s = time.perf_counter() - t
    assert mid.summary.measurements == 5_000
    print(
        f"\n10^4 journal: built {built_s:.1f} s, inspect --json {json_s:.2f} s, --step 5000 {step_s:.2f} s"
    )  # timed in tests/benchmarks/large_journal.py
