"""Names on the command line: the built-in lists equal the registries, a misspelt name fails before torch is
imported and before anything is written (naming the close matches), and ``--help`` lists the choices."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.cli.names import IN_PROCESS_SIMULATORS, SERVED_SIMULATORS
from abduce.controller.errors import UnknownNameError
from abduce.controller.journal.store import Journal
from abduce.controller.registry import BUILT_IN, check_name

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def registries() -> dict[str, list[str]]:
    from abduce.controller.decide.acquisition import ACQUISITIONS
    from abduce.controller.decide.policies import POLICIES
    from abduce.controller.intake.reduction import REDUCTIONS
    from abduce.controller.views.plots import FORMATS
    from abduce.hypotheses.library import BUILTIN
    from abduce.simulators.registry import SIMULATORS
    from abduce.simulators.transition1d import LAWS

    return {
        "hypothesis": list(BUILTIN),
        "policy": POLICIES.names(),
        "acquisition": ACQUISITIONS.names(),
        "reduction": REDUCTIONS.names(),
        "simulator": SIMULATORS.names(),
        "truth": list(LAWS),
        "plot format": list(FORMATS),
    }


def test_the_torch_free_lists_of_built_in_names_are_the_registries():
    real = registries()
    assert set(real) == set(BUILT_IN)
    for kind, names in real.items():
        assert sorted(BUILT_IN[kind]) == sorted(names), kind


def test_abduce_run_builds_its_in_process_simulators_and_only_those():
    from abduce.controller.rehearse.simulated import SimulatedRun

    assert set(IN_PROCESS_SIMULATORS) | set(SERVED_SIMULATORS) == set(BUILT_IN["simulator"])
    for name in IN_PROCESS_SIMULATORS:
        SimulatedRun(simulator=name, hypotheses=("linear",), budget=2, grid=11).build()
    for name in SERVED_SIMULATORS:  # they take no law as `truth`: the check says how to run them instead
        with pytest.raises(TypeError, match="truth"):
            SimulatedRun(simulator=name, hypotheses=("linear",), budget=2).build()


def test_an_unknown_name_lists_the_known_ones_and_the_closest():
    with pytest.raises(UnknownNameError, match=r"known: .*did you mean 'second-order' or 'first-order'\?$") as err:
        check_name("truth", "secnd-order")
    assert err.value.close == ["second-order", "first-order"]
    with pytest.raises(UnknownNameError, match=r"known: [^?]*$"):  # nothing close: no guess
        check_name("policy", "thompson")
    assert check_name("hypothesis", "my_lab.laws:Arrhenius", dotted=True) == "my_lab.laws:Arrhenius"
    with pytest.raises(UnknownNameError, match="package.module:name"):
        check_name("hypothesis", "arrhenius", dotted=True)


MISSPELT_RUN = [
    (["--policy", "discrimnate"], "discriminate"),
    (["--hypotheses", "second-order,linar"], "linear"),
    (["--simulator", "transiton-1d"], "transition-1d"),
    (["--truth", "secnd-order"], "second-order"),
    (["--acquisition", "nipvv"], "nipv"),
    (["--reduction", "lop-area"], "loop-area"),
]


@pytest.mark.parametrize(("args", "close"), MISSPELT_RUN, ids=[a[0] for a, _ in MISSPELT_RUN])
def test_a_misspelt_name_leaves_no_run_directory_and_names_the_close_match(tmp_path, args, close):
    out = tmp_path / "runs" / "r"
    result = runner.invoke(app, ["run", "--out", str(out), "--quiet", *args])
    assert result.exit_code == 2, result.output
    assert f"did you mean '{close}'" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_corrected_command_runs_in_the_same_run_directory(tmp_path):
    out = tmp_path / "r"
    small = ["--quiet", "--budget", "4", "--n-init", "3", "--grid", "31", "--hypotheses", "second-order,linear"]
    assert runner.invoke(app, ["run", "--out", str(out), *small, "--truth", "secnd-order"]).exit_code == 2
    result = runner.invoke(app, ["run", "--out", str(out), *small, "--truth", "second-order"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["truth"] == "second-order"


def test_a_served_simulator_is_refused_by_run_with_the_way_to_run_it(tmp_path):
    result = runner.invoke(app, ["run", "--out", str(tmp_path / "r"), "--simulator", "loops"])
    assert result.exit_code == 2
    assert "abduce instrument serve --driver simulated:loops" in result.output and "--listen" in result.output
    assert not (tmp_path / "r").exists()


def test_a_user_hypothesis_by_dotted_path_still_runs_and_one_that_does_not_import_writes_nothing(tmp_path):
    bad = runner.invoke(app, ["run", "--out", str(tmp_path / "bad"), "--hypotheses", "no_such_lab.laws:Law"])
    assert bad.exit_code == 2 and "does not import" in bad.output
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "ok"
    good = runner.invoke(
        app,
        [
            *("run", "--out", str(out), "--quiet", "--budget", "4", "--n-init", "3", "--grid", "31"),
            *("--hypotheses", "abduce.hypotheses.library:SECOND_ORDER,linear"),
        ],
    )
    assert good.exit_code == 0, good.output
    assert json.loads((out / "summary.json").read_text())["measurements"] == 4


def test_an_option_the_simulator_refuses_leaves_no_run_directory(tmp_path):
    result = runner.invoke(app, ["run", "--out", str(tmp_path / "r"), "--quiet", "--noise", "-1"])
    assert result.exit_code == 2 and "noise must be >= 0" in result.output
    assert not (tmp_path / "r").exists()


@pytest.fixture
def journal_only(tmp_path):
    """A run directory holding just a journal (what replay reads first)."""
    run = tmp_path / "run"
    run.mkdir()
    Journal.create(run / "journal.sqlite", {"mode": "in-process", "hypotheses": ["linear"]}).close()
    return run


@pytest.mark.parametrize(
    ("args", "close"),
    [
        (["--policy", "rnadom"], "random"),
        (["--hypotheses", "sigmoyd"], "sigmoid"),
        (["--against", "simulated:loop"], "loops"),
        (["--truth", "lineer"], "linear"),
    ],
)
def test_replay_checks_its_names_before_reading_or_writing_anything(journal_only, tmp_path, args, close):
    result = runner.invoke(app, ["replay", str(journal_only), "--out", str(tmp_path / "whatif"), *args])
    assert result.exit_code == 2 and f"did you mean '{close}'" in result.output, result.output
    assert not (tmp_path / "whatif").exists()


SWEEP = """
[sweep]
name = "tiny"
policies = ["{policy}"]
seeds = 1
budget = 4

[hypothesis_sets]
two = ["second-order", "{hypothesis}"]

[[problem]]
name = "so"
source = "simulated:{simulator}"
truth = "second-order"
"""


@pytest.mark.parametrize(
    ("field", "wrong", "close"),
    [("policy", "grdi", "grid"), ("hypothesis", "lineaar", "linear"), ("simulator", "transition-2d", "transition-1d")],
)
def test_a_sweep_config_with_a_misspelt_name_fails_before_its_results_folder_exists(tmp_path, field, wrong, close):
    names = {"policy": "grid", "hypothesis": "linear", "simulator": "transition-1d", field: wrong}
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.format(**names))
    result = runner.invoke(app, ["sweep", str(config), "--out", str(tmp_path / "results")])
    assert result.exit_code == 2 and f"did you mean '{close}'" in result.output, result.output
    assert not (tmp_path / "results").exists()


def test_a_daemon_config_with_a_misspelt_name_names_file_line_and_key_and_starts_nothing(tmp_path):
    text = (ROOT / "deploy" / "config" / "simulated.toml").read_text()
    assert 'policy = "discriminate"' in text
    config = tmp_path / "daemon.toml"
    config.write_text(text.replace('policy = "discriminate"', 'policy = "discrimnate"'))
    line = 1 + text.splitlines().index('policy = "discriminate"')
    result = runner.invoke(app, ["daemon", str(config)])
    assert result.exit_code == 2
    assert f"{config}:{line}: campaign.policy:" in result.output and "did you mean 'discriminate'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.toml"]


def test_a_sweep_configs_misspelt_name_names_its_line(tmp_path):
    from abduce.controller.errors import ConfigError
    from abduce.controller.rehearse.sweep_config import load_sweep

    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(policy="grdi", hypothesis="linear", simulator="transition-1d"))
    with pytest.raises(ConfigError, match=rf"{path}:4: sweep.policies: .*did you mean 'grid'"):
        load_sweep(path)


CHECK_TORCH = """
import json, sys
from abduce.controller.cli import app

seen = []
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="abduce")
    except SystemExit as exc:
        seen.append([exc.code, "torch" in sys.modules])
print(json.dumps(seen))
"""


def exits_and_torch(cases: list[list[str]]) -> tuple[list[list], str]:
    """Each command run in one fresh process: ``[[exit code, torch imported by then], ...]``, and stderr."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK_TORCH, json.dumps(cases)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_checks_and_help_import_no_torch(tmp_path, journal_only):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.format(policy="discrimnate", hypothesis="linear", simulator="transition-1d"))
    daemon = tmp_path / "daemon.toml"
    daemon.write_text((ROOT / "deploy" / "config" / "simulated.toml").read_text().replace("linear", "linaer"))
    cases = [
        ["run", "--out", str(tmp_path / "a"), "--policy", "discrimnate"],
        ["run", "--out", str(tmp_path / "a"), "--truth", "secnd-order"],
        ["replay", str(journal_only), "--hypotheses", "linar"],
        ["sweep", str(config)],
        ["plot", str(journal_only), "--out", str(tmp_path / "p"), "--format", "pgn"],
        ["inspect", str(tmp_path / "missing")],
        ["daemon", str(daemon)],
        ["--help"],
        ["run", "--help"],
        ["replay", "--help"],
    ]
    seen, stderr = exits_and_torch(cases)
    assert seen == [[2, False]] * 7 + [[0, False]] * 3, stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "p").exists()


def test_help_lists_the_choices(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    run = " ".join(runner.invoke(app, ["run", "--help"]).output.split())
    for kind in ("acquisition", "hypothesis", "truth", "reduction"):
        assert ", ".join(BUILT_IN[kind]) in run, kind
    assert "discriminate, epsilon-greedy (the paper's), random, grid, plain-gp" in run
    assert "transition-1d" in run and ", ".join(SERVED_SIMULATORS) in run
    plot = " ".join(runner.invoke(app, ["plot", "--help"]).output.split())
    assert "png, svg" in plot
    replay = " ".join(runner.invoke(app, ["replay", "--help"]).output.split())
    assert ", ".join(BUILT_IN["simulator"]) in replay and ", ".join(BUILT_IN["policy"]) in replay
    serve = " ".join(runner.invoke(app, ["instrument", "serve", "--help"]).output.split())
    assert ", ".join(BUILT_IN["simulator"]) in serve and ", ".join(BUILT_IN["truth"]) in serve
