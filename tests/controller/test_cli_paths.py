"""Paths on the command line: a missing run, a folder without a journal, a file where a folder is expected
(and a folder where a file is) each get their own message, before anything is read or written."""

import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.journal.store import Journal

runner = CliRunner()

READERS = {
    "inspect": [],
    "report": ["--out", "{tmp}/page.html"],
    "export": ["--out", "{tmp}/run.nc"],
    "plot": ["--out", "{tmp}/figures"],
    "replay": [],
}


def invoke(command, run, tmp_path, extra=()):
    args = [a.format(tmp=tmp_path) for a in READERS.get(command, [])]
    result = runner.invoke(app, [command, str(run), *args, *extra])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def runs(tmp_path):
    """``runs/`` holding one run directory (just its journal) and a folder without one."""
    base = tmp_path / "runs"
    (base / "demo").mkdir(parents=True)
    Journal.create(base / "demo" / "journal.sqlite", {"mode": "in-process", "hypotheses": ["linear"]}).close()
    (base / "empty").mkdir()
    return base


@pytest.mark.parametrize("command", list(READERS))
def test_a_missing_run_says_it_does_not_exist(tmp_path, command):
    code, out = invoke(command, tmp_path / "runs" / "nope", tmp_path)
    assert code == 2
    assert f"{tmp_path / 'runs' / 'nope'} does not exist (nor does its folder {tmp_path / 'runs'})" in out
    assert "is not a file" not in out
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("command", list(READERS))
def test_a_folder_without_a_journal_says_so_and_names_the_runs_inside(tmp_path, runs, command):
    code, out = invoke(command, runs, tmp_path)
    assert code == 2
    assert f"{runs} is a directory without a journal (journal.sqlite): not a run directory" in out
    assert "it holds the run directories demo" in out
    code, out = invoke(command, runs / "empty", tmp_path)
    assert code == 2 and "without a journal" in out and "holds" not in out


def test_a_file_that_is_not_a_journal_says_so(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a journal")
    code, out = invoke("inspect", notes, tmp_path)
    assert code == 2 and "is not an abduce journal" in out


def test_an_out_that_is_a_file_or_a_folder_where_the_other_is_expected(tmp_path, runs):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for command, what in [("plot", "for the figures")]:
        result = runner.invoke(app, [command, str(runs / "demo"), "--out", str(a_file)])
        assert result.exit_code == 2 and f"{a_file} is a file; --out names a folder ({what})" in result.output
    result = runner.invoke(app, ["run", "--out", str(a_file), "--quiet"])
    assert result.exit_code == 2 and "is a file; --out names a folder (the run directory to create)" in result.output
    for command in ("report", "export"):
        result = runner.invoke(app, [command, str(runs / "demo"), "--out", str(tmp_path)])
        assert result.exit_code == 2 and f"{tmp_path} is a folder; --out names the file to write" in result.output


def test_serve_names_each_missing_run_and_waits_for_a_folder_without_a_journal_yet(tmp_path, runs):
    result = runner.invoke(app, ["serve", str(runs / "empty"), str(tmp_path / "gone"), "--port", "0"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'gone'} does not exist" in " ".join(result.output.split())
