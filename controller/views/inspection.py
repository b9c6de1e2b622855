"""``abduce inspect RUN``: how a campaign stands, read from its journal alone.

Everything here is computed from the journal's events -- the config, the
requests, the measurements and the decision records (step records) -- with
no campaign rebuilt and nothing refitted, so a journal of 10^4 measurements
is summarised in a second or two, and this module imports no torch. The
journal is opened read-only (SQLite WAL readers), so a run can be inspected
while a daemon is still writing it.

``inspect_journal(journal, step=N)`` is the campaign as it stood after its
first ``N`` measurements were told (all of them by default) and before it
asked for the next one. Its ``summary`` is what ``Campaign.summary()`` of that
campaign returns, key for key and float for float (tests/controller/
test_inspect.py drives a live campaign and compares after every step):

* ``probability``, ``log_evidence``, ``parameters``: the ``N``-th decision record.
* ``times_chosen``: the distinct requests journalled up to the ``N``-th
  measurement (before the ``N+1``-th request) that named the hypothesis as
  their driver -- the campaign counts asks, and a request whose reading was
  skipped (NaN) was asked too. Without ``step``, a request still in flight
  counts as well: the live campaign has asked for it.
* ``mean_reward``: the mean of the rewards in the decision records of the
  steps the hypothesis drove (``null`` where it never earned one).

What cannot match: a decision record lost to a power cut (decisions ride on
the next fsync; see :mod:`abduce.controller.journal.store`) leaves its step without
probabilities here, where a resumed campaign refits it; the summary then
shows the last decision journalled. Hypotheses named by a dotted path
(``pkg.mod:LAW``) are shown under the name their decision records use, or
under the dotted path before their first fit. Non-finite floats are written
as ``null`` in the JSON.

JSON (``abduce inspect RUN --json``; the pydantic models below, with those of
:mod:`~abduce.controller.views.summary` and :mod:`~abduce.controller.views.proposals`, *are* the
schema, :data:`SCHEMA` is their JSON schema)::

    {
      "schema_version": 7,
      "run": str,                      # the journal file
      "mode": str,                     # in-process | listen | daemon | rehearsal
      "step": int | null,              # the --step asked for (null: all)
      "hypotheses": [str, ...],        # in the campaign's order: declared, composed laws a transfer brought,
                                       # then proposals as they joined
      "axes": [QUANTITY, ...],         # one per coordinate of x, as the instrument declared them
      "explained": QUANTITY,           # what y is: the channel (or reduction) the hypotheses explain
      "summary": {                     # == Campaign.summary() after `measurements` tells
        "leader": str | null,          # null while a hypothesis has never been fitted
        "measurements": int,
        "hypotheses": [{"name": str, "probability": float, "log_evidence": float | null,
                        "log_evidence_se": float | null,   # Monte Carlo standard error of log_evidence
                        "times_chosen": int, "mean_reward": float | null,
                        "parameters": {P: {"mean": float, "sd": float}},
                        "check": CHECK | null}],   # posterior predictive checks, null: not checked
        "unfitted": [str, ...],        # never fitted so far: no probability yet
        "fit_failures": {hypothesis: int},  # refits that failed, per hypothesis (and "none of these")
        "none": {"probability": float, "log_evidence": float, "log_evidence_se": float,
                 "check": CHECK | null} | null
                                       # "none of these"; with the
                                       # hypotheses' probabilities it sums to 1
        "explained": bool | null       # the most probable explanation is a law that passes its checks
      },
      "measurements": [                # every measurement told, in order
        {"step": int, "request_id": str, "x": [float, ...], "y": float,
         "hypothesis": str | null,     # who chose the point (null: initial design, discriminate)
         "reason": str, "reward": float | null, "refit": [str, ...],
         "probabilities": {hypothesis: float},   # after this measurement ({} before the first fit)
         "none": float | null,         # P(none of these) after this measurement
         "leader": str | null,
         "arrays": [str, ...],         # names of the raw array channels kept with it
         "channel": str | null}        # the channel read, over several channels (x is then the point in the
                                       # space, y that channel's reading); null: the one channel explained
      ],
      "stopping": {
        "measurements": int, "budget": int, "stopped": bool,   # stopped: the rule fired
        "policy": str, "acquisition": str | null,
        "in_flight": [str, ...],       # request ids sent and never answered
        "errors": [{"request_id": str | null, "stage": str | null, "reason": str | null,
                    "message": str | null, "skipped": bool}],
        "instrument_state": str | null,  # safe | idle as the operator's commands left it (null: none sent)
        "cost": float | null, "cost_budget": float | null, "cost_unit": str
                                       # over several channels with costs: what the readings cost, and the
                                       # cost to stop at (null without channels, or without a cost budget)
      },
      "proposals": [PROPOSAL, ...],    # composed laws abduction proposed, in order ([] for none, and for
                                       # journals before them): abduce.controller.views.proposals
      "transfer": TRANSFER | null      # what the campaign took from a past one (null: it started cold):
                                       # abduce.controller.views.transfer
    }

    QUANTITY = {"name": str, "unit": str,   # unit "": none declared (or not known here), "1": dimensionless
                "label": str}                # "name (unit)", or the name alone without a unit

    CHECK = {"n": int, "loo_rms": float, "loo_limit": float, "loo_worst": float,
             "residual_sd": float, "residual_quantile": float | null,
             "noise_ratio": float | null, "noise_limit": float | null, "misfit": bool,
             "reasons": [str, ...]}     # abduce.hypotheses.criticism.Criticism
"""

from __future__ import annotations

import os
from typing import Any

from abduce.controller.core.verdict import leader
from abduce.controller.errors import ConfigError
from abduce.controller.journal.events import (
    DecisionBody,
    Entry,
    RequestBody,
    instrument_state,
    read,
    refused_points,
    refused_readings,
)
from abduce.controller.journal.store import Journal, journal_path  # noqa: F401  (journal_path: re-exported)
from abduce.controller.recipe.spec import spec_of
from abduce.controller.views.labels import QuantityRow, labels_of
from abduce.controller.views.proposals import ProposalRow, contenders, proposals_of
from abduce.controller.views.summary import (  # noqa: F401  (re-exported: the views import them from here)
    NONE_NAME,
    Check,
    HypothesisSummary,
    NoneOfThese,
    ParameterEstimate,
    Summary,
    _Strict,
    names_of,
    summarise,
)
from abduce.controller.views.transfer import TransferRow, carried, transfer_of

SCHEMA_VERSION = 8  # 2: summary.unfitted, summary.fit_failures, summary.none, measurements[].none;
# 3: summary.hypotheses[].check, summary.none.check, summary.explained; 4: stopping.instrument_state;
# 5: axes, explained (names and units); 6: proposals (and the contenders they added in summary.hypotheses);
# 7: transfer (and the composed laws it brought, in hypotheses); 8: measurements[].channel, stopping.cost*
TABLE_ROWS = 20  # measurements shown in the terminal table (all of them in the JSON)


class MeasurementRow(_Strict):
    step: int
    request_id: str
    x: list[float]
    y: float
    hypothesis: str | None
    reason: str
    reward: float | None
    refit: list[str]
    probabilities: dict[str, float]
    none: float | None  # the probability of "none of these" after this measurement
    leader: str | None
    arrays: list[str]
    channel: str | None = None  # the channel read (a campaign over several channels); None: the only one


class ErrorRow(_Strict):
    request_id: str | None
    stage: str | None
    reason: str | None
    message: str | None
    skipped: bool


class Stopping(_Strict):
    measurements: int
    budget: int
    stopped: bool
    policy: str
    acquisition: str | None
    in_flight: list[str]
    errors: list[ErrorRow]
    instrument_state: str | None = None  # "safe" / "idle" as the operator's commands left it (None: none sent)
    cost: float | None = None  # what the readings cost (a campaign over several channels); None: no costs
    cost_budget: float | None = None
    cost_unit: str = ""


class Inspection(_Strict):
    """The output of ``abduce inspect --json`` (module docstring)."""

    schema_version: int
    run: str
    mode: str
    step: int | None
    hypotheses: list[str]
    axes: list[QuantityRow] = []
    explained: QuantityRow = QuantityRow(name="y", unit="", label="y")
    summary: Summary
    measurements: list[MeasurementRow]
    stopping: Stopping
    proposals: list[ProposalRow] = []
    transfer: TransferRow | None = None


SCHEMA: dict[str, Any] = Inspection.model_json_schema()


def inspect_run(run: str | os.PathLike, step: int | None = None) -> Inspection:
    """Open ``run`` (a run directory or its journal) read-only and inspect it."""
    with Journal.open(journal_path(run), readonly=True) as journal:
        return inspect_journal(journal, step)


def inspect_journal(journal: Journal, step: int | None = None, events: list[Entry] | None = None) -> Inspection:
    """The campaign after its first ``step`` measurements (all by default), from the journal's events
    (``events``: all of them, when the caller has read them already).

    Raises:
        ConfigError: ``step`` is negative.
        JournalError: the journal cannot be read.
    """
    if step is not None and step < 0:
        raise ConfigError(f"--step must be >= 0, got {step}")
    config = journal.config()
    setup = spec_of(config)
    events = _cut(list(read(journal)) if events is None else events, step)
    errors = [e for e in events if e.kind == "error"]
    refused, skipped = refused_readings(errors)
    refused_at = refused_points(errors)[0]  # (request id, point): a batch's points apart
    requests: dict[str, RequestBody] = {}
    decisions: dict[tuple[str, int], DecisionBody] = {}
    told: list[Entry] = []
    for e in events:
        if e.kind == "request":
            requests.setdefault(e.request_id, e.body)
        elif e.kind == "decision":
            decisions[(e.request_id, e.body.index)] = e.body
        elif e.kind == "measurement" and (e.request_id, e.body.index) not in refused_at:
            told.append(e)
    d = len(told[0].body.x) - bool(setup.cheap_channels) if told else 1  # over channels: the last is the channel
    labels = labels_of(config, d)
    channels = (labels.explained.name, *setup.cheap_channels) if setup.cheap_channels else None
    rows = [_row(i, m, requests.get(m.request_id), decisions.get(_at(m)), channels) for i, m in enumerate(told)]
    records = [decisions[_at(m)] for m in told if _at(m) in decisions]
    last = records[-1] if records else None
    proposals = proposals_of((p for r in records for p in r.proposals), last.probabilities if last else {}, labels)
    added = contenders(proposals)  # the campaign's contenders after its declared laws, in the order they joined
    brought = carried(setup)  # composed laws a transfer brought, after the declared ones
    names = (*names_of(setup.hypotheses, records, (*brought, *added)), *brought, *added)
    summary = summarise(names, last, len(told), requests.values(), records)
    settled = {m.request_id for m in told} | skipped  # as replay: a refused reading leaves its request in flight
    return Inspection(
        schema_version=SCHEMA_VERSION,
        run=str(journal.path),
        mode=setup.mode,
        step=step,
        hypotheses=list(names),
        axes=[QuantityRow.of(a) for a in labels.axes],
        explained=QuantityRow.of(labels.explained),
        summary=summary,
        measurements=rows,
        stopping=Stopping(
            measurements=len(told),
            budget=setup.budget,
            stopped=records[-1].stopped if records else False,
            policy=setup.policy,
            acquisition=setup.acquisition,
            in_flight=[rid for rid in requests if rid not in settled],
            errors=[
                ErrorRow(
                    request_id=e.request_id,
                    stage=e.body.stage,
                    reason=e.body.reason,
                    message=e.body.message,
                    skipped=e.body.skipped,
                )
                for e in errors
            ],
            instrument_state=instrument_state(events),
            **_costs(setup, rows, channels),
        ),
        proposals=proposals,
        transfer=transfer_of(setup, labels),
    )


# --------------------------------------------------------------------------- internals


def _cut(events: list[Entry], step: int | None) -> list[Entry]:
    """The events up to the ``step``-th told measurement and what it caused, before the next request."""
    if step is None:
        return events
    refused = refused_points(events)[0]
    told, end = 0, None
    for i, e in enumerate(events):
        if told >= step and e.kind == "request":
            end = i
            break
        if e.kind == "measurement" and _at(e) not in refused:
            if told == step:
                end = i
                break
            told += 1
    if told < step:
        raise ConfigError(f"--step {step}: the journal holds only {told} measurements")
    return events if end is None else events[:end]


def _at(e: Entry) -> tuple[str, int]:
    """A measurement's or decision's point: its request and its index in it (a batch)."""
    return e.request_id, e.body.index


def _costs(setup, rows: list[MeasurementRow], channels: tuple[str, ...] | None) -> dict[str, Any]:
    """Stopping's cost fields: what the readings cost and the budget (a campaign over channels with costs)."""
    if channels is None:
        return {}
    cost = dict(zip(channels, (setup.cost, *setup.cheap_channels.values())))
    return {
        "cost": sum(cost[r.channel] for r in rows if r.channel is not None),
        "cost_budget": setup.cost_budget,
        "cost_unit": setup.cost_unit,
    }


def _row(
    i: int, m: Entry, request: RequestBody | None, decision: DecisionBody | None, channels: tuple[str, ...] | None
) -> MeasurementRow:
    """One measurement's row: who asked for it and why (its request, else its decision), what it decided;
    over several channels (``channels``, the explained one first) its point without the channel coordinate,
    and the channel read."""
    asked = request or decision
    probs = decision.probabilities if decision else {}
    x, channel = list(m.body.x), None
    if channels is not None:
        x, channel = x[:-1], channels[int(round(x[-1]))]
    return MeasurementRow(
        step=decision.step if decision else (asked.step + m.body.index if asked else i),  # a batch's points apart
        request_id=m.request_id,
        channel=channel,
        x=x,
        y=m.body.y,
        hypothesis=asked.hypothesis if asked else None,
        reason=asked.reason if asked else "",
        reward=decision.reward if decision else None,
        refit=list(decision.refit) if decision else [],
        probabilities=probs,
        none=(decision.none or {}).get("probability") if decision else None,
        leader=leader(probs, decision.log_evidence if decision else None, decision.unfitted if decision else ()),
        arrays=list(m.body.arrays or {}),
    )
