"""What a campaign took from a past one, for people: read from its journalled recipe, nothing refitted and no torch.

JSON (``abduce inspect RUN --json``, ``"transfer"``; null for a campaign that started cold)::

    TRANSFER = {
      "source": str,              # the past run, as it was named
      "campaign": str, "measurements": int,   # the past campaign's name and how many measurements it had made
      "temper": float,            # tau: past variances divided by it, past probabilities raised to it
      "share": float,             # lambda: the probability that the sample is new (law and parameters declared,
                                  # or with a carry its quantities carried over)
      "drift": float,             # delta: the sd a parameter may move from sample to sample, a fraction of its range
      "carry": float,             # c: of a new sample, the part whose quantities carry over from the last (its law
                                  # drawn anew; a parameter of the same name, unit and axis as a past law's takes
                                  # what the past laws together said of it); 0 in a run journalled before it
      "laws": [{
        "name": str,
        "composed": bool,         # a law the past campaign had added by abduction (it joins this one too)
        "probability": float,     # its probability at the end of the past campaign
        "parameters": {P: {"mean": float, "sd": float,   # the past posterior's, physical units
                           "prior_sd": float,            # sd / sqrt(tau): the transferred normal's, before the
                                                         # drift widens it (delta x the declared range, in
                                                         # quadrature; in log units for a log-normal prior)
                           "unit": str}}
      }],
      "carried": {P: {...}}       # with a carry: each quantity carried over (a parameter the past declared laws had),
                                  # what they together said of it (the mixture of their posteriors weighed by
                                  # p^tau), as "parameters"; {} without a carry
    }
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from abduce.controller.views.labels import Labels
from abduce.controller.views.proposals import unit_of


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class TransferredParameter(_Strict):
    mean: float
    sd: float
    prior_sd: float
    unit: str


class TransferredLaw(_Strict):
    name: str
    composed: bool
    probability: float
    parameters: dict[str, TransferredParameter]


class TransferRow(_Strict):
    """What was transferred (module docstring)."""

    source: str
    campaign: str
    measurements: int
    temper: float
    share: float
    drift: float
    carry: float = 0.0
    laws: list[TransferredLaw]
    carried: dict[str, TransferredParameter] = {}


def transfer_of(spec: Any, labels: Labels) -> TransferRow | None:
    """The transfer a journalled recipe (``spec``: its :class:`~abduce.controller.recipe.spec.RunSpec`) holds,
    with each parameter's unit from the run's labels; None when it started cold."""
    t = spec.transfer
    if t is None:
        return None
    laws = []
    for law in t.laws:
        parameters = {
            name: TransferredParameter(
                mean=mean,
                sd=sd,
                prior_sd=sd / math.sqrt(t.temper),
                unit=unit_of(*law.units[name], labels) if name in law.units else "",
            )
            for name, (mean, sd) in law.parameters.items()
        }
        composed = law.tree is not None
        laws.append(
            TransferredLaw(name=law.name, composed=composed, probability=law.probability, parameters=parameters)
        )
    carried = {}
    if t.carry > 0:
        quantities = t.quantities()
        names = [name for name, _, _ in quantities]
        for (name, unit, axis), (mean, sd) in quantities.items():
            key = name if names.count(name) == 1 else f"{name} ({unit}, axis {axis})"
            carried[key] = TransferredParameter(
                mean=mean, sd=sd, prior_sd=sd / math.sqrt(t.temper), unit=unit_of(unit, axis, labels)
            )
    fields = set(TransferRow.model_fields) - {"laws", "carried"}
    return TransferRow(**t.model_dump(include=fields), laws=laws, carried=carried)


def carried(spec: Any) -> tuple[str, ...]:
    """The composed laws a transfer brought into the campaign (after its declared ones, in the past run's order)."""
    if spec.transfer is None:
        return ()
    return tuple(law.name for law in spec.transfer.laws if law.tree is not None and law.name not in spec.hypotheses)


def transferred_text(law: TransferredLaw, sep: str = ", ") -> str:
    """``"x_c = 0.599 ± 0.0035 (0.005) K, ..."``: each parameter's past mean ± sd and (the prior's sd), unit."""
    return moments_text(law.parameters, sep)


def carried_label(row: TransferRow) -> str:
    """The row heading the quantities a carry takes over (a table's "law" cell)."""
    return f"carried over (carry {row.carry:g})"


def moments_text(parameters: dict[str, TransferredParameter], sep: str = ", ") -> str:
    """``"x_c = 0.599 ± 0.0035 (0.005) K, ..."`` of transferred or carried parameters."""
    return sep.join(
        f"{name} = {p.mean:.4g} ± {p.sd:.2g} ({p.prior_sd:.2g}){' ' + p.unit if p.unit else ''}"
        for name, p in parameters.items()
    )
