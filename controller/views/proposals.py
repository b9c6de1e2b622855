"""The proposals of a campaign, as its journal records them: the composed laws abduction made, for people.

A proposal round (:mod:`abduce.controller.core.abduction`) records on its step every composed law that beat
each declared one: added to the campaign as a contender (``propose = "add"``), or suggested for an operator
(``"suggest"``), who may accept it (recorded again, on the step after the accept, ``added`` now true). This
module reads those records from the decision events -- nothing refitted -- into one row each, in the order
the campaign made them (:attr:`abduce.controller.core.state.CampaignState.proposals`).

JSON (``abduce inspect RUN --json``, ``"proposals"``; the web status's ``"proposals"`` too)::

    PROPOSAL = {
      "name": str, "formula": str,      # the law (abduce.hypotheses.grammar): m = ... in its parameters
      "depth": int,                     # composition steps from the declared laws
      "step": int,                      # the measurement (from 0) after which it was proposed or accepted
      "reason": str,                    # why the round ran ("none of these" leading, an audit, an accept)
      "status": "added" | "suggested" | "accepted",
      "weight": float,                  # its complexity prior's weight (a declared law weighs 1)
      "screen": float,                  # its screening score (log, complexity prior included)
      "log_evidence": float | null, "log_evidence_se": float | null,   # when proposed (nats)
      "probability": float | null,      # when proposed: P had it joined the campaign's laws then
      "probability_now": float | null,  # its probability after the last measurement (null: not a contender)
      "parameters": {P: {"mean": float, "sd": float, "unit": str}}   # when proposed, physical units
    }

A composed law's parameters are its parts' (renamed ``A_1``, ``A_2``, ... where two parts share a name),
with ``b0, b1, b2`` a polynomial background (the explained value's unit) and ``tc0, tc1, tc2`` a phase
boundary's critical temperature (the unit of its axis). Each parameter's ``unit`` is what its declaration's
relative frame (:mod:`abduce.hypotheses.declaration`: ``"x"``, ``"dx"``, ``"y"``, ``"y/dx"``, ``"y*dx"``)
makes of the instrument's declared units (:mod:`abduce.controller.views.labels`): ``""`` where the axes or
the value have no declared unit, where the parameter is dimensionless, or where the law cannot be built
here (a dotted-path law that no longer imports). A record that carries its parameters' frames
(``"units": {P: [frame unit, axis]}``) is read as it is; otherwise the law is built from its tree, which
needs :mod:`abduce.hypotheses` (torch, a second or two to import): only when a run holds proposals, and
once per distinct law.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from abduce.controller.errors import AbduceError
from abduce.controller.views.labels import Labels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class ProposedParameter(_Strict):
    """A proposal's fitted parameter when proposed: posterior mean and sd, in ``unit``."""

    mean: float
    sd: float
    unit: str


class ProposalRow(_Strict):
    """One proposal (module docstring)."""

    name: str
    formula: str
    depth: int
    step: int
    reason: str
    status: Literal["added", "suggested", "accepted"]
    weight: float
    screen: float | None
    log_evidence: float | None
    log_evidence_se: float | None
    probability: float | None
    probability_now: float | None
    parameters: dict[str, ProposedParameter]


def proposals_of(
    recorded: Iterable[dict[str, Any]], probabilities: dict[str, float], labels: Labels | None = None
) -> list[ProposalRow]:
    """The rows of the proposals ``recorded`` (the decision records' ``proposals``, in journal order), with
    each contender's probability now (``probabilities``: the last record's) and units from ``labels``.

    A row is ``"accepted"`` where an earlier row suggested the law it adds."""
    rows: list[ProposalRow] = []
    suggested: set[str] = set()
    for p in recorded:
        name = str(p["name"])
        if p.get("added"):
            status = "accepted" if name in suggested else "added"
        else:
            status = "suggested"
            suggested.add(name)
        units = _units_of(p, labels) if labels is not None else {}
        rows.append(
            ProposalRow(
                name=name,
                formula=str(p.get("formula", "")),
                depth=int(p.get("depth", 0)),
                step=int(p["step"]),
                reason=str(p.get("reason", "")),
                status=status,
                weight=float(p.get("weight", 1.0)),
                screen=p.get("screen"),
                log_evidence=p.get("log_evidence"),
                log_evidence_se=p.get("log_evidence_se"),
                probability=p.get("probability"),
                probability_now=probabilities.get(name),
                parameters={
                    k: ProposedParameter(mean=v[0], sd=v[1], unit=units.get(k, ""))
                    for k, v in (p.get("parameters") or {}).items()
                },
            )
        )
    return rows


def _units_of(p: dict[str, Any], labels: Labels) -> dict[str, str]:
    """A recorded proposal's parameter units: from its ``"units"`` (``{param: [frame unit, axis]}``) where the
    record carries them, else from its law, built from its tree."""
    kinds = p.get("units")
    if isinstance(kinds, dict):
        return {k: unit_of(str(v[0]), int(v[1]), labels) for k, v in kinds.items()}
    return parameter_units(p.get("tree") or {}, labels)


def contenders(rows: Iterable[ProposalRow]) -> list[str]:
    """The names of the proposals that joined the campaign (added or accepted), in the order they joined."""
    out: dict[str, None] = {}
    for r in rows:
        if r.status != "suggested":
            out.setdefault(r.name, None)
    return list(out)


# --------------------------------------------------------------------------- units


def unit_of(kind: str, axis: int, labels: Labels) -> str:
    """The physical unit of a parameter declared in the relative frame ``kind`` along ``axis``.

    ``"x"``, ``"dx"``: the axis's unit; ``"y"``: the explained value's; ``"y/dx"``: ``y_unit/x_unit``;
    ``"y*dx"``: ``y_unit x_unit``; ``"1"``: none. ``""`` where a unit it needs was not declared."""
    ux = labels.axes[axis].unit if axis < len(labels.axes) else ""
    uy = labels.explained.unit
    if kind in ("x", "dx"):
        return ux
    if kind == "y":
        return uy
    if kind in ("y/dx", "y*dx"):
        if not ux or not uy:
            return ""
        if ux == "1":
            return uy
        if kind == "y/dx":
            return f"{ux}^-1" if uy == "1" else f"{uy}/{ux}"
        return ux if uy == "1" else f"{uy} {ux}"
    return ""


def parameter_units(tree: dict, labels: Labels) -> dict[str, str]:
    """``{parameter: unit}`` of the composed law ``tree`` describes ({} where it cannot be built here)."""
    kinds = _kinds(json.dumps(tree, sort_keys=True))
    return {name: unit_of(kind, axis, labels) for name, (kind, axis) in kinds.items()}


@functools.lru_cache(maxsize=256)
def _kinds(tree: str) -> dict[str, tuple[str, int]]:
    """``{parameter: (relative-frame unit, axis)}`` of the law a tree (as JSON) describes, built with the
    built-in laws (or a dotted path's); {} where it cannot be built."""
    try:
        from abduce.hypotheses.grammar import build
        from abduce.hypotheses.library import resolve_hypothesis

        law = build(json.loads(tree), resolve_hypothesis)
    except (AbduceError, ImportError, KeyError, TypeError, ValueError):
        return {}
    return {p.name: (p.unit, p.axis) for p in law.parameters if p.fixed is None}
