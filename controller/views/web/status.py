"""The campaigns a view shows, read from their journals (no web here): each one's status, cached by
the journal's sequence number, and its figures as PNG.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from abduce.controller.errors import AbduceError
from abduce.controller.views.inspection import HypothesisSummary, Inspection, MeasurementRow, inspect_run
from abduce.controller.views.proposals import ProposalRow
from abduce.controller.views.transfer import TransferRow

SCHEMA_VERSION = 7  # 2: none, unfitted, fit_failures; 3: explained, hypotheses[].check; 4: axes, y_label;
# 5: proposals; 6: transfer; 7: cost, cost_budget, cost_unit (and last.channel)
FIGURES = ("posteriors", "probabilities", "choices", "acquisition", "spectra", "proposals")
SHOWN = ("posteriors", "probabilities")  # drawn on the page; the others are linked
DPI = 90

_DRAW = threading.RLock()  # matplotlib's font cache and the rebuilds share state: one figure at a time


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class RunStatus(_Strict):
    """Where one campaign stands, as ``GET /api/runs/NAME`` returns it."""

    schema_version: int = SCHEMA_VERSION
    name: str
    run: str  # the journal file
    seq: int | None  # the journal's last event (None: no journal yet, or unreadable)
    updated: float | None  # when that event was written (UTC seconds)
    last_event: str | None  # its kind: "measurement" while the campaign decides on it, "decision" once done...
    state: Literal["waiting", "unreadable", "in-progress", "complete"]
    message: str | None  # why waiting or unreadable
    mode: str | None
    measurements: int
    budget: int | None
    stopped: bool  # the stopping rule fired
    leader: str | None
    probabilities: dict[str, float]
    none: float | None  # the probability of "none of these"
    unfitted: list[str]  # never fitted: no probability, so no leader
    fit_failures: dict[str, int]
    explained: bool | None  # the most probable explanation is a law that passes its checks (None: not checked)
    hypotheses: list[HypothesisSummary]
    in_flight: int
    errors: int
    instrument_state: str | None  # as the operator's commands left the instrument (safe, idle); None: none sent
    last: MeasurementRow | None
    axes: list[str] = []  # each axis as "name (unit)", in the order of last.x
    y_label: str = "y"  # what y is: the explained channel (or reduction), "name (unit)"
    proposals: list[ProposalRow] = []  # the composed laws abduction proposed (abduce.controller.views.proposals)
    transfer: TransferRow | None = None  # what the campaign took from a past one (abduce.controller.views.transfer)
    cost: float | None = None  # over several channels with costs: what the readings cost (None: no costs)
    cost_budget: float | None = None
    cost_unit: str = ""


class RunList(_Strict):
    """``GET /api/runs``."""

    runs: list[RunStatus]


def journal_head(path: Path) -> tuple[int, float, str] | None:
    """``(seq, t, kind)`` of the journal's last event, read-only; None if there is no readable journal (yet).

    One indexed query (``seq`` is the events table's integer primary key, see
    :mod:`abduce.controller.journal.store`), cheap enough to poll.
    """
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT seq, t, kind FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return (int(row[0]), float(row[1]), str(row[2])) if row else None


def _journal_of(run: Path) -> Path:
    """A run directory (existing or not yet) or a journal file -> the journal file."""
    return run if run.is_file() or run.suffix == ".sqlite" else run / "journal.sqlite"


def _names(runs: Sequence[Path]) -> list[str]:
    """A URL-safe, unique name per run: its folder's name (a journal file's folder)."""
    out: list[str] = []
    for run in runs:
        p = _journal_of(Path(run))
        base = p.parent.name if p.name == "journal.sqlite" else p.stem
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "run"
        name, i = base, 2
        while name in out:
            name, i = f"{base}-{i}", i + 1
        out.append(name)
    return out


@dataclass
class _Run:
    name: str
    journal: Path
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards status and inspection
    drawing: threading.Lock = field(default_factory=threading.Lock)  # guards plots
    status: tuple[int | None, RunStatus | None] = (None, None)  # (seq, status) last computed
    inspection: Inspection | None = None
    plots: tuple[int | None, Any, dict[str, bytes]] = (None, None, None)  # (seq, Plots, name -> PNG)


class Campaigns:
    """The campaigns a web view shows: their status and figures, cached by journal sequence number.

    Pure and synchronous (no web framework): the routes of :func:`create_app`
    call it from worker threads.

    Args:
        runs: run directories or journal files (a directory need not hold its journal yet).
    """

    def __init__(self, runs: Sequence[str | Path]) -> None:
        paths = [Path(r) for r in runs]
        self._runs = {name: _Run(name, _journal_of(p)) for name, p in zip(_names(paths), paths)}
        self.closing = threading.Event()  # set when the server stops: event streams end

    @property
    def names(self) -> list[str]:
        return list(self._runs)

    def __contains__(self, name: str) -> bool:
        return name in self._runs

    def heads(self) -> dict[str, int | None]:
        """Every journal's last sequence number (None: none yet)."""
        return {name: (h[0] if (h := journal_head(r.journal)) else None) for name, r in self._runs.items()}

    def status(self, name: str) -> RunStatus:
        """Where campaign ``name`` stands (recomputed only when its journal has grown)."""
        run = self._runs[name]
        head = journal_head(run.journal)
        seq = head[0] if head else None
        with run.lock:
            cached_seq, cached = run.status
            if cached is not None and cached_seq == seq and seq is not None:
                return cached
            status = self._status(run, head)
            run.status = (seq, status)
            return status

    def _status(self, run: _Run, head: tuple[int, float, str] | None) -> RunStatus:
        empty = dict(
            mode=None,
            measurements=0,
            budget=None,
            stopped=False,
            leader=None,
            probabilities={},
            none=None,
            unfitted=[],
            fit_failures={},
            explained=None,
            hypotheses=[],
            in_flight=0,
            errors=0,
            instrument_state=None,
            last=None,
        )
        base = dict(name=run.name, run=str(run.journal))
        if head is None and not run.journal.exists():
            return RunStatus(
                **base,
                seq=None,
                updated=None,
                last_event=None,
                state="waiting",
                message="no journal yet: the campaign has not started",
                **empty,
            )
        try:
            ins = inspect_run(run.journal)
        except AbduceError as exc:
            run.inspection = None
            return RunStatus(
                **base, seq=None, updated=None, last_event=None, state="unreadable", message=str(exc), **empty
            )
        run.inspection = ins
        st, s = ins.stopping, ins.summary
        last = ins.measurements[-1] if ins.measurements else None
        return RunStatus(
            **base,
            seq=head[0] if head else None,
            updated=head[1] if head else None,
            last_event=head[2] if head else None,
            state="complete" if st.stopped or st.measurements >= st.budget else "in-progress",
            message=None,
            mode=ins.mode,
            measurements=st.measurements,
            budget=st.budget,
            stopped=st.stopped,
            leader=s.leader,
            probabilities={h.name: h.probability for h in s.hypotheses},
            hypotheses=s.hypotheses,
            none=s.none.probability if s.none else None,
            unfitted=s.unfitted,
            fit_failures=s.fit_failures,
            explained=s.explained,
            in_flight=len(st.in_flight),
            errors=len(st.errors),
            instrument_state=st.instrument_state,
            last=last,
            axes=[a.label for a in ins.axes],
            y_label=ins.explained.label,
            proposals=ins.proposals,
            transfer=ins.transfer,
            cost=st.cost,
            cost_budget=st.cost_budget,
            cost_unit=st.cost_unit,
        )

    def inspection(self, name: str) -> Inspection | None:
        """The full inspection behind the current status (None: no readable journal)."""
        self.status(name)
        return self._runs[name].inspection

    def figure_png(self, name: str, figure: str) -> tuple[bytes, str | None]:
        """FIGURE of campaign ``name`` as PNG, and why it is not drawn (None: it is).

        A figure the campaign cannot draw (no journal yet, no fit yet, a space
        of three axes, no raw spectra...) comes back as a PNG that says why.
        """
        if figure not in FIGURES:
            raise KeyError(figure)
        run = self._runs[name]
        head = journal_head(run.journal)
        if head is None:
            why = "no journal yet" if not run.journal.exists() else "the journal cannot be read"
            return _note_png(figure, why), why
        from abduce.controller.journal.store import Journal
        from abduce.controller.views.plots import build_plots

        with run.drawing, _DRAW:
            seq, plots, pngs = run.plots
            if seq != head[0] or plots is None:
                try:
                    with Journal.open(run.journal, readonly=True) as journal:
                        plots = build_plots(journal)
                except AbduceError as exc:
                    return _note_png(figure, str(exc)), str(exc)
                pngs = {}
                run.plots = (head[0], plots, pngs)
            if figure not in pngs:
                if figure in plots.figures:
                    pngs[figure] = _png(plots.figures[figure])
                else:
                    none = "the campaign proposed no composed law" if figure == "proposals" else "nothing to draw"
                    why = plots.skipped.get(figure) or none
                    return _note_png(figure, why), why
            return pngs[figure], None


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _note_png(figure: str, why: str) -> bytes:
    import textwrap

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 1.2))
    fig.text(0.02, 0.5, f"{figure}: not drawn\n" + textwrap.fill(why, 90), va="center", fontsize=9, color="0.35")
    with _DRAW:
        return _png(fig)
