"""An inspection for people: the terminal tables of ``abduce inspect`` and the cells the report and the
web page share (an estimate with its sd, a hypothesis's checks, a proposal's status)."""

from __future__ import annotations

import math

from abduce.controller.views.inspection import NONE_NAME, TABLE_ROWS, Check, Inspection
from abduce.controller.views.proposals import ProposalRow
from abduce.controller.views.transfer import carried_label, moments_text, transferred_text


def estimate(mean: float, sd: float) -> str:
    """``0.598 ± 0.012``: the mean to the decimal place of the sd's second significant digit."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or sd <= 0:
        return f"{mean:.4g} ± {sd:.2g}"
    digits = 1 - math.floor(math.log10(sd))
    if digits < 0 or digits > 8 or abs(mean) >= 1e6:
        return f"{mean:.4g} ± {sd:.2g}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def check_cell(check: Check | None) -> str:
    """``ok (loo 1.04)`` / ``MISFIT (loo 2.31)`` / ``-``: a hypothesis's checks in a table cell."""
    if check is None:
        return "-"
    return f"{'MISFIT' if check.misfit else 'ok'} (loo {check.loo_rms:.2f}, residual {check.residual_sd:.2f})"


def axes_header(inspection: Inspection) -> str:
    """The header of the point column: its axes' labels (``composition, temperature (K)``), else ``x``."""
    return ", ".join(a.label for a in inspection.axes) or "x"


def with_unit(value: str, unit: str) -> str:
    """``0.30 ± 0.02 K`` (no unit: the value alone; a dimensionless ``"1"`` is not written)."""
    return f"{value} {unit}" if unit and unit != "1" else value


def parameters_text(row: ProposalRow, sep: str = ", ") -> str:
    """``x_c_1 = 0.341 ± 0.033 at.%, ...``: a proposal's parameters, each with its sd and unit."""
    return sep.join(f"{p} = {with_unit(estimate(v.mean, v.sd), v.unit)}" for p, v in row.parameters.items())


def evidence_text(row: ProposalRow) -> str:
    """``41.23 ± 0.08``: its log evidence when proposed, with the Monte Carlo se (``-``: none)."""
    if row.log_evidence is None:
        return "-"
    return f"{row.log_evidence:.2f}" + (f" ± {row.log_evidence_se:.2f}" if row.log_evidence_se is not None else "")


STATUS = {  # a proposal's status, for people
    "added": "added as a contender",
    "suggested": "suggested (abduce accept RUN NAME adds it)",
    "accepted": "accepted by the operator",
}


def proposals_tables(inspection: Inspection) -> list:
    """The composed laws abduction proposed, one small table each ([]: none): its formula, the step it was
    made at, why, what became of it, its evidence and probability then, its probability now, its parameters."""
    from rich.table import Table
    from rich.text import Text

    out = []
    for i, r in enumerate(inspection.proposals, 1):
        table = Table(title=f"proposal {i} of {len(inspection.proposals)}: {r.name}", show_header=False)
        table.add_column("", style="bold", no_wrap=True)
        table.add_column("", overflow="fold")
        for key, value in (
            ("formula", r.formula),
            ("made", f"at step {r.step}, after {r.step + 1} measurements (depth {r.depth}); {STATUS[r.status]}"),
            ("why", r.reason),
            ("then", f"log evidence {evidence_text(r)}, p = {_num(r.probability)} (prior weight {r.weight:.3g})"),
            ("now", "p = " + _num(r.probability_now) if r.probability_now is not None else "not a contender"),
            ("parameters then", parameters_text(r, "\n") or "-"),
        ):
            table.add_row(key, Text(value))  # Text: a formula's brackets are not markup
        out.append(table)
    return out


def transfer_table(inspection: Inspection) -> list:
    """What the campaign took from a past one ([]: it started cold): per law, its probability at the end of
    the past campaign and its parameters' past posterior (mean ± sd), the prior's normal widened to sd / sqrt(tau)."""
    from rich.table import Table
    from rich.text import Text

    t = inspection.transfer
    if t is None:
        return []
    table = Table(
        title=f"transferred from {t.source} ({t.campaign}, {t.measurements} measurements): "
        f"temper {t.temper:g}, declared share {t.share:g}, drift {t.drift:g}, carry {t.carry:g}"
    )
    table.add_column("law")
    table.add_column("p at its end", justify="right")
    table.add_column("parameters: past mean ± sd (sd / √τ)", overflow="fold")
    for law in t.laws:
        text = transferred_text(law, "\n") or "-"
        table.add_row(law.name + (" (composed)" if law.composed else ""), f"{law.probability:.3f}", Text(text))
    if t.carried:
        table.add_row(carried_label(t), "-", Text(moments_text(t.carried, "\n")))
    return [table]


def render(inspection: Inspection, rows: int = TABLE_ROWS) -> list:
    """Rich renderables for the terminal: the hypotheses, the proposals (if any), the last ``rows``
    measurements, the stopping state."""
    from rich.table import Table

    s, st = inspection.summary, inspection.stopping
    at = f" after {inspection.step} measurements" if inspection.step is not None else ""
    hyps = Table(title=f"{inspection.run}{at}: leader {s.leader or '-'}")
    hyps.add_column("hypothesis", no_wrap=True)
    hyps.add_column("probability", justify="right")
    hyps.add_column("log evidence (± MC se)", justify="right")
    hyps.add_column("parameters (mean ± sd)", no_wrap=True)
    hyps.add_column("chosen", justify="right")
    hyps.add_column("mean reward", justify="right")
    hyps.add_column("fit failures", justify="right")
    hyps.add_column("checks", no_wrap=True)
    for h in sorted(s.hypotheses, key=lambda h: -h.probability):
        params = "\n".join(f"{p} = {estimate(v.mean, v.sd)}" for p, v in h.parameters.items())
        ev = _num(h.log_evidence, ".2f") + (f" ± {h.log_evidence_se:.2f}" if h.log_evidence_se is not None else "")
        name = h.name + (" (never fitted)" if h.name in s.unfitted else "")
        hyps.add_row(
            name,
            f"{h.probability:.3f}",
            ev,
            params or "-",
            str(h.times_chosen),
            _num(h.mean_reward, ".2f"),
            str(s.fit_failures.get(h.name, 0)),
            check_cell(h.check),
        )
    if s.none is not None:
        hyps.add_row(
            "none of these",
            f"{s.none.probability:.3f}",
            f"{s.none.log_evidence:.2f} ± {s.none.log_evidence_se:.2f}",
            "a flexible GP, no law",
            "-",
            "-",
            str(s.fit_failures.get(NONE_NAME, 0)),
            check_cell(s.none.check),
        )
    shown = inspection.measurements[-rows:] if rows else []
    meas = Table(title=f"measurements ({len(shown)} of {len(inspection.measurements)} shown)")
    meas.add_column("step", justify="right")
    meas.add_column(axes_header(inspection), justify="right")  # the axes and the value, named with units
    channels = any(m.channel is not None for m in inspection.measurements)
    if channels:  # over several channels: which one each reading is (its value in that channel's unit)
        meas.add_column("channel", no_wrap=True)
    meas.add_column("reading" if channels else inspection.explained.label, justify="right")
    for col in ("chosen by", "reason", "reward", "leader (p)"):
        meas.add_column(col, no_wrap=True)
    for m in shown:
        lead = f"{m.leader} ({m.probabilities[m.leader]:.2f})" if m.leader else "-"
        meas.add_row(
            str(m.step),
            ", ".join(f"{v:.4g}" for v in m.x),
            *([m.channel or "-"] if channels else []),
            f"{m.y:.4g}",
            m.hypothesis or "-",
            m.reason,
            _num(m.reward, ".0f"),
            lead,
        )
    if s.none is not None and s.none.probability > max((h.probability for h in s.hypotheses), default=0.0):
        hyps.caption = "no hypothesis explains the data: none of these is the most probable explanation"
    elif s.explained is False:
        best = max(s.hypotheses, key=lambda h: h.probability)
        hyps.caption = f"the most probable law, {best.name}, fails its checks: " + "; ".join(best.check.reasons)
    state = "stopped" if st.stopped else ("in progress" if st.measurements < st.budget else "at budget")
    line = (
        f"{st.measurements} / {st.budget} measurements, {state}; policy {st.policy}"
        f"{', acquisition ' + st.acquisition if st.acquisition else ''}"
    )
    if st.cost is not None:
        unit = f" {st.cost_unit}" if st.cost_unit else ""
        line += f"; cost {st.cost:.4g}{unit}" + (f" of {st.cost_budget:.4g}{unit}" if st.cost_budget else "")
    if st.in_flight:
        line += f"; {len(st.in_flight)} request(s) in flight"
    if st.errors:
        line += f"; {len(st.errors)} error(s) journalled"
    return [*transfer_table(inspection), hyps, *proposals_tables(inspection), meas, line]
