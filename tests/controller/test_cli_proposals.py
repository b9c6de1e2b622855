"""Proposals on the command line: ``abduce run --propose/--propose-depth`` and a daemon config's ``propose`` keys
(checked before torch is imported, a typo naming the modes), and ``abduce propose RUN``: one dry round on a run's
data that finds what the run's own round found there, prints a table and writes nothing."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.cli.names import PROPOSE_MODES
from tests.controller.test_cli_names import exits_and_torch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "config" / "simulated.toml"
runner = CliRunner()

# a sample with two transitions (x_c 0.75 and 0.3) weighed against second-order alone: its own round after the
# 10th measurement suggests "second-order + second-order"
TWO_TRANSITIONS = [
    *("--truth", "two-transitions", "--x-c", "0.75", "--beta", "0.3", "--noise", "0.01", "--grid", "101"),
    *("--hypotheses", "second-order", "--n-init", "9", "--budget", "10", "--seed", "1", "--quiet"),
]


def test_the_modes_are_the_campaigns():
    from abduce.controller.core.settings import PROPOSE

    assert PROPOSE_MODES == PROPOSE


def test_run_takes_the_propose_flags_into_its_recipe(tmp_path):
    out = tmp_path / "r"
    small = ["--quiet", "--budget", "4", "--n-init", "3", "--grid", "31", "--hypotheses", "second-order,linear"]
    result = runner.invoke(app, ["run", "--out", str(out), *small, "--propose", "add", "--propose-depth", "2"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["propose"], config["propose_depth"]) == ("add", 2)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--propose", "sugest"], "unknown propose mode 'sugest'; known: add, off, suggest; did you mean 'suggest'?"),
        (["--propose-depth", "4"], "--propose-depth"),
    ],
)
def test_a_wrong_propose_flag_leaves_no_run_directory(tmp_path, args, says):
    result = runner.invoke(app, ["run", "--out", str(tmp_path / "r"), "--quiet", *args])
    assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    assert not (tmp_path / "r").exists()


def test_the_example_daemon_config_suggests_and_a_typo_names_file_line_key_and_the_modes(tmp_path):
    from abduce.controller.recipe.settings import load_settings

    settings = load_settings(EXAMPLE)
    assert (settings.campaign.propose, settings.campaign.propose_depth) == ("suggest", 1)
    text = EXAMPLE.read_text()
    config = tmp_path / "daemon.toml"
    config.write_text(text.replace('propose = "suggest"', 'propose = "sugest"'))
    line = 1 + text.splitlines().index('propose = "suggest"')
    result = runner.invoke(app, ["daemon", str(config)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"{config}:{line}: campaign.propose:" in said and "known: add, off, suggest; did you mean 'suggest'" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.toml"]


def test_the_propose_checks_and_help_import_no_torch(tmp_path):
    daemon = tmp_path / "daemon.toml"
    daemon.write_text(EXAMPLE.read_text().replace('propose = "suggest"', 'propose = "ad"'))
    cases = [
        ["run", "--out", str(tmp_path / "a"), "--propose", "sugest"],
        ["daemon", str(daemon)],
        ["propose", str(tmp_path / "missing")],
        ["accept", "--help"],
        ["propose", "--help"],
    ]
    seen, stderr = exits_and_torch(cases)
    assert seen == [[2, False]] * 3 + [[0, False]] * 2, stderr
    assert not (tmp_path / "a").exists()


def listing(folder: Path) -> list[tuple[str, int, int]]:
    """Every file in ``folder``: name, size and modification time (ns)."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


def test_propose_finds_what_the_runs_own_round_found_prints_a_table_and_writes_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run"
    made = runner.invoke(app, ["run", "--out", str(run), *TWO_TRANSITIONS, "--propose", "suggest"])
    assert made.exit_code == 0, made.output
    live = [p for line in (run / "decisions.jsonl").read_text().splitlines() for p in json.loads(line)["proposals"]]
    assert [(p["name"], p["step"], p["suggested"]) for p in live] == [("second-order + second-order", 9, True)]
    before = listing(run)

    answer = runner.invoke(app, ["propose", str(run), "--json"])
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.output)
    assert (result["n"], result["depth"], result["mode"], result["propose"]) == (10, 1, "in-process", "suggest")
    best = result["proposals"][0]
    # the same round (seeded by the same step, on the same data): the same law, evidence and probability
    assert (best["name"], best["suggested"], best["added"]) == ("second-order + second-order", True, False)
    assert best["log_evidence"] == pytest.approx(live[0]["log_evidence"], abs=1e-6)
    assert best["probability"] == pytest.approx(live[0]["probability"], abs=1e-6)
    assert not any(p["suggested"] for p in result["proposals"][1:])  # the others do not beat second-order
    assert set(best["parameters"]) == {"A_1", "x_c_1", "beta_1", "A_2", "x_c_2", "beta_2"}
    assert result["acceptable"] == ["second-order + second-order"] and result["accepted"] == []

    monkeypatch.setenv("COLUMNS", "200")
    table = runner.invoke(app, ["propose", str(run)])
    assert table.exit_code == 0, table.output
    for word in ("law", "log evidence", "P if added", "prior weight", "second-order + second-order *", "x_c_2 ="):
        assert word in table.output, word
    assert "a round now would propose it" in table.output
    assert "suggested by the run, not accepted: second-order + second-order" in table.output
    assert listing(run) == before  # read-only: not even SQLite's -wal/-shm beside the journal


def test_propose_on_a_run_with_no_fit_yet_says_so(tmp_path):
    run = tmp_path / "run"
    small = ["--quiet", "--budget", "2", "--n-init", "3", "--grid", "31", "--hypotheses", "linear"]
    assert runner.invoke(app, ["run", "--out", str(run), *small]).exit_code == 0
    result = runner.invoke(app, ["propose", str(run)])
    assert result.exit_code == 2 and "no law fitted yet" in result.output, result.output
    accepted = runner.invoke(app, ["accept", str(run), "linear + linear", "--key", str(tmp_path / "none.key")])
    assert accepted.exit_code == 2 and "was run 'in-process', not by a daemon" in accepted.output, accepted.output


def test_run_help_names_the_modes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    said = " ".join(runner.invoke(app, ["run", "--help"]).output.split())
    assert "--propose" in said and "off, add, suggest (off: never; add:" in said and "--propose-depth" in said
