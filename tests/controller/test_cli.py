import json
import re
from pathlib import Path

from typer.testing import CliRunner

from abduce.controller.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_run_writes_the_documented_run_directory(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "--out",
            str(out),
            "--budget",
            "7",
            "--seed",
            "1",
            "--grid",
            "101",
            "--quiet",
            "--hypotheses",
            "second-order,linear",
            "--policy",
            "discriminate",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "probability" in result.output and "second-order" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measurements"] == 7 and summary["leader"] in {"second-order", "linear"}
    for h in summary["hypotheses"]:
        assert set(h) >= {"name", "probability", "times_chosen", "parameters"}
        for p in h["parameters"].values():
            assert set(p) == {"mean", "sd"}
    lines = (out / "measurements.jsonl").read_text().splitlines()
    assert len(lines) == 7 and set(json.loads(lines[0])) == {"step", "request_id", "x", "y"}
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 7 and decisions[-1]["probabilities"]
    config = json.loads((out / "config.json").read_text())
    assert config["policy"] == "discriminate" and "torch" in config["versions"]
    from abduce.controller.journal.store import Journal

    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        assert [e.request_id for e in journal.events("measurement")] == [json.loads(l)["request_id"] for l in lines]
        assert journal.config()["seed"] == 1


def test_run_refuses_a_directory_that_holds_a_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    result = runner.invoke(app, ["run", "--out", str(out), "--budget", "3", "--quiet"])
    assert result.exit_code == 2
    assert (out / "summary.json").read_text() == "{}"


def test_unknown_names_are_clear_errors(tmp_path):
    for args, word in [
        (["--hypotheses", "second-ordr"], "second-ordr"),
        (["--policy", "greedy"], "greedy"),
        (["--truth", "third"], "third"),
        (["--simulator", "nope"], "nope"),
    ]:
        result = runner.invoke(app, ["run", "--out", str(tmp_path / word), "--quiet", *args])
        assert result.exit_code == 2 and word in result.output, result.output


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert match, "README lacks the marked test command"
    assert match.group(1).strip() in ci
