"""The run directory: what a campaign leaves behind, line by line.

Layout (all UTF-8 JSON; ``*.jsonl`` files hold one JSON object per line,
appended and flushed as each step happens, so a crash leaves every completed
line readable)::

    DIR/config.json         how the run was set up, and the library versions
    DIR/measurements.jsonl  {"step", "request_id", "x": [..], "y"}  one per measurement
    DIR/decisions.jsonl     one StepRecord per measurement: "hypothesis" (who chose
                            the point), "reason", "refit", "reward", "probabilities",
                            "log_evidence", "integrated_variance", "parameters"
                            ({hypothesis: {param: [mean, sd]}}), "fit_failures", "stopped"
    DIR/summary.json        {"leader", "measurements", "hypotheses": [{"name",
                            "probability", "log_evidence", "times_chosen",
                            "mean_reward", "parameters": {P: {"mean", "sd"}}}]}
    DIR/journal.sqlite      the append-only journal (abduce.controller.journal.store):
                            every request before it is sent, every measurement
                            before it is told, every decision
    DIR/endpoints.json      {"instrument": ..., "control": ...}: the endpoints the
                            controller bound, written once they are bound (port 0
                            in a config or --listen picks free ports; this names them)

A directory that already holds a run is never written into again.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from abduce.controller.core.campaign import Campaign, StepRecord
from abduce.controller.errors import ConfigError

FILES = ("config.json", "measurements.jsonl", "decisions.jsonl", "summary.json", "journal.sqlite")


def library_versions() -> dict[str, str]:
    out = {}
    for pkg in ("abduce", "torch", "gpytorch", "botorch", "numpy", "pyzmq", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


ENDPOINTS = "endpoints.json"


def write_endpoints(path: str | os.PathLike, **endpoints: str) -> None:
    """Name the endpoints a controller bound in ``DIR/endpoints.json`` (atomically: never half a file)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{ENDPOINTS}.tmp"
    tmp.write_text(json.dumps(endpoints) + "\n", encoding="utf-8")
    os.replace(tmp, path / ENDPOINTS)


def read_endpoints(path: str | os.PathLike) -> dict[str, str]:
    """The endpoints a controller bound for the run in ``path``.

    Raises:
        ConfigError: no controller has bound endpoints for that run (yet).
    """
    try:
        return json.loads((Path(path) / ENDPOINTS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{Path(path) / ENDPOINTS} does not exist: no controller has bound its endpoints for this run yet"
        ) from None


class RunDirectory:
    """Writes one campaign's run directory; use as a consumer of step records.

    Raises:
        ConfigError: ``path`` exists and already holds any of the run files.
    """

    @staticmethod
    def check_free(path: str | os.PathLike) -> None:
        """Raise ConfigError if ``path`` already holds a run (before any waiting or measuring)."""
        existing = [f for f in FILES if (Path(path) / f).exists()]
        if existing:
            raise ConfigError(f"{path} already holds a run ({', '.join(existing)}); choose another --out")

    def __init__(self, path: str | os.PathLike, config: dict) -> None:
        self.path = Path(path)
        self.check_free(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        from abduce.controller.journal.store import Journal

        # the journal first: it is what a restart resumes from, so a stop before the other files
        # exist leaves a run that resumes (reopen creates them), never a half-made directory that
        # neither resumes nor starts afresh
        self.journal = Journal.create(self.path / "journal.sqlite", {**config, "versions": library_versions()})
        self._write_json("config.json", {**config, "versions": library_versions()})
        self._measurements = open(self.path / "measurements.jsonl", "a", encoding="utf-8")
        self._decisions = open(self.path / "decisions.jsonl", "a", encoding="utf-8")

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> RunDirectory:
        """An existing run directory, to resume: line files appended, the journal reopened (locked)."""
        from abduce.controller.journal.store import Journal

        self = cls.__new__(cls)
        self.path = Path(path)
        self.journal = Journal.open(self.path / "journal.sqlite")
        if not (self.path / "config.json").exists():  # stopped between the journal and the other files
            self._write_json("config.json", self.journal.config())
        self._measurements = open(self.path / "measurements.jsonl", "a", encoding="utf-8")
        self._decisions = open(self.path / "decisions.jsonl", "a", encoding="utf-8")
        return self

    def _write_json(self, name: str, obj: dict) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / name)

    def __call__(self, record: StepRecord) -> None:
        m = {"step": record.step, "request_id": record.request_id, "x": list(record.x), "y": record.y}
        self._measurements.write(json.dumps(m) + "\n")
        self._measurements.flush()
        self._decisions.write(json.dumps(vars(record)) + "\n")
        self._decisions.flush()

    def finish(self, campaign: Campaign) -> dict:
        """Write ``summary.json`` and close the line files; returns the summary."""
        summary = campaign.summary()
        self._write_json("summary.json", summary)
        self.close()
        return summary

    def close(self) -> None:
        self._measurements.close()
        self._decisions.close()
        self.journal.close()
