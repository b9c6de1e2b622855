"""``abduce report RUN --out FILE.html``: one self-contained HTML page about a campaign.

Sections (each an ``<section id=...>``): ``stopping`` (where the campaign
stands), ``hypotheses`` (the summary table: probability, log evidence,
fitted parameters ± sd, times chosen, mean reward), ``proposals`` (only where abduction proposed composed
laws: each one's formula, the step it was made at and why, whether it was added, suggested or accepted, its
evidence and probability then, its probability now and its parameters then in the instrument's units;
see :mod:`abduce.controller.views.proposals`), ``transfer`` (only where the campaign took its priors from a
past one: the run, the temper, the declared share, the drift and the carry, and per law its probability at the past
campaign's end and its parameters' past posterior with its sd / sqrt(temper); :mod:`abduce.controller.views.transfer`),
``plots`` (every figure
of :mod:`abduce.controller.views.plots`, inlined as base64 PNG, with a note for
each one skipped), ``measurements`` (every measurement told, its columns
named by the instrument's axes and channel with their units), ``refused``
(every reading the campaign refused -- NaN or inf, with its step, point and
value -- and every instrument error, as ``abduce inspect --json`` lists them
under ``stopping.errors``) and ``config`` (the journal's config event,
pretty-printed JSON). The page loads nothing:
no external scripts, stylesheets, fonts or images, so it can be mailed or
archived as it is. Rendered with jinja2 (autoescaped).
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from jinja2 import Environment

from abduce.controller.journal.events import Entry, MeasurementBody, read
from abduce.controller.journal.store import Journal
from abduce.controller.views.inspection import Check, Inspection, journal_path
from abduce.controller.views.terminal import STATUS, axes_header, check_cell, estimate, evidence_text, parameters_text
from abduce.controller.views.transfer import carried_label, moments_text, transferred_text

SECTIONS = ("stopping", "hypotheses", "plots", "measurements", "refused", "config")

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>abduce report: {{ run }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.leader { font-weight: bold; }
.note { color: #666; }
.warning { color: #8a3b00; font-weight: bold; }
</style>
</head>
<body>
<h1>abduce campaign report</h1>
<p class="note">{{ run }}{% if ins.step is not none %}, as it stood after {{ ins.step }} measurements{% endif %}</p>

<section id="stopping">
<h2>State</h2>
<table>
<tr><th>measurements</th><td>{{ st.measurements }} / {{ st.budget }}</td></tr>
{% if st.cost is not none %}<tr><th>cost</th><td class="cost">{{ "%.4g" | format(st.cost) }}
{%- if st.cost_budget %} / {{ "%.4g" | format(st.cost_budget) }}{% endif %} {{ st.cost_unit }}</td></tr>{% endif %}
<tr><th>stopped</th><td>{{ "yes" if st.stopped else "no" }}</td></tr>
<tr><th>policy</th><td>{{ st.policy }}</td></tr>
<tr><th>acquisition</th><td>{{ st.acquisition or "the policy's default" }}</td></tr>
<tr><th>mode</th><td>{{ ins.mode }}</td></tr>
<tr><th>axes</th><td class="axes">{{ axes_header }}</td></tr>
<tr><th>explains</th><td class="explained">{{ ins.explained.label }}</td></tr>
<tr><th>leader</th><td>{{ ins.summary.leader or "-" }}</td></tr>
<tr><th>requests in flight</th><td>{{ st.in_flight | length }}</td></tr>
<tr><th>errors journalled</th><td>{{ st.errors | length }}</td></tr>
</table>
</section>

<section id="hypotheses">
<h2>Hypotheses</h2>
<table>
<tr><th>hypothesis</th><th>probability</th><th>log evidence</th>
<th>parameters (posterior mean ± sd)</th><th>times chosen</th><th>mean reward</th><th>fit failures</th>
<th>checks</th></tr>
{% for h in hypotheses %}
<tr{% if h.name == ins.summary.leader %} class="leader"{% endif %}><td>{{ h.name }}
{%- if h.name in ins.summary.unfitted %} (never fitted){% endif %}</td>
<td>{{ "%.3f" | format(h.probability) }}</td>
<td>{{ "-" if h.log_evidence is none else "%.2f" | format(h.log_evidence) }}</td>
<td class="text">{{ h.parameters_text or "-" }}</td>
<td>{{ h.times_chosen }}</td>
<td>{{ "-" if h.mean_reward is none else "%.2f" | format(h.mean_reward) }}</td>
<td>{{ ins.summary.fit_failures.get(h.name, 0) }}</td>
<td class="text">{{ check_cell(h.check) }}</td></tr>
{% endfor %}
{% if ins.summary.none %}
<tr class="none-of-these"><td><em>none of these</em></td>
<td>{{ "%.3f" | format(ins.summary.none.probability) }}</td>
<td>{{ "%.2f" | format(ins.summary.none.log_evidence) }}</td>
<td class="text">a flexible GP with no law (the alternative to every hypothesis)</td><td>-</td><td>-</td>
<td>{{ ins.summary.fit_failures.get("none of these", 0) }}</td>
<td class="text">{{ check_cell(ins.summary.none.check) }}</td></tr>
{% endif %}
</table>
{% if ins.summary.none and ins.summary.none.probability > (hypotheses | map(attribute="probability") | max) %}
<p class="warning">No hypothesis explains the data: "none of these" is the most probable explanation.</p>
{% elif ins.summary.explained is false %}
{% set best = hypotheses | sort(attribute="probability", reverse=true) | first %}
<p class="warning">The most probable law, {{ best.name }}, fails its checks: {{ best.check.reasons | join("; ") }}.</p>
{% endif %}
{% if ins.summary.unfitted %}
<p class="warning">Never fitted (no probability, so no leader): {{ ins.summary.unfitted | join(", ") }}.</p>
{% endif %}
</section>

{% if proposals %}
<section id="proposals">
<h2>Proposals</h2>
<p class="note">Composed laws abduction built from the declared ones when none of them explained the data
(or on an audit), in the order they were made{% if "proposals" in figure_names %}; the
<a href="#plot-proposals">proposals figure</a> sets the best of them against the best declared law{% endif %}.</p>
<table>
<tr><th>proposed law</th><th>step</th><th>why</th><th>status</th><th>log evidence then</th><th>p then</th>
<th>p now</th><th>parameters then (posterior mean ± sd)</th></tr>
{% for r in proposals %}
<tr class="proposal proposal-{{ r.status }}"><td class="text"><strong>{{ r.name }}</strong><br>
<code class="formula">{{ r.formula }}</code></td>
<td>{{ r.step }}</td><td class="text">{{ r.reason }}</td><td class="text">{{ status[r.status] }}</td>
<td>{{ r.evidence }}</td>
<td>{{ "-" if r.probability is none else "%.3f" | format(r.probability) }}</td>
<td>{{ "-" if r.probability_now is none else "%.3f" | format(r.probability_now) }}</td>
<td class="text">{{ r.parameters_text or "-" }}</td></tr>
{% endfor %}
</table>
</section>
{% endif %}

{% if ins.transfer %}
{% set t = ins.transfer %}
<section id="transfer">
<h2>Transferred priors</h2>
<p class="note">This campaign's priors came from the end of the campaign {{ t.campaign }} in {{ t.source }}
({{ t.measurements }} measurements). With probability {{ "%g" | format(t.share) }} this sample was taken to be
new: its law from the declared prior{% if t.carry %}; in {{ "%g" | format(t.carry) }} of that case the sample's
quantities carry over (a parameter that the past declared laws had under the same name, unit and axis near
what they together said of it: the mixture of their posteriors below, each law weighed by its probability
raised to the temper), otherwise all of its parameters come from their declared priors{% else %}, and all of
its parameters from their declared priors{% endif %}. Otherwise it is
like the last: its law from the past probabilities raised to {{ "%g" | format(t.temper) }}, and its parameters
near the past posterior's means, each with its sd divided by sqrt({{ "%g" | format(t.temper) }}) and widened by
{{ "%g" | format(t.drift) }} of the parameter's declared range (the drift allowed between samples; in the
logarithm, for a parameter whose declared prior is log-normal).</p>
<table>
<tr><th>law</th><th>p at the end of the past campaign</th><th>parameters: past mean ± sd (sd / √τ)</th></tr>
{% for law in transfer_laws %}
<tr class="transferred"><td class="text"><strong>{{ law.name }}</strong>{{ " (composed)" if law.composed }}</td>
<td>{{ "%.3f" | format(law.probability) }}</td>
<td class="text">{{ law.parameters_text }}</td></tr>
{% endfor %}
{% if carried %}
<tr class="carried"><td class="text"><strong>{{ carried[0] }}</strong></td><td>-</td>
<td class="text">{{ carried[1] }}</td></tr>
{% endif %}
</table>
</section>
{% endif %}

<section id="plots">
<h2>Plots</h2>
{% for name, src in figures %}
<figure id="plot-{{ name }}"><img alt="{{ name }}" src="data:image/png;base64,{{ src }}">
<figcaption>{{ name }}</figcaption></figure>
{% endfor %}
{% for name, why in skipped %}
<p class="note">{{ name }}: not drawn ({{ why }})</p>
{% endfor %}
</section>

<section id="measurements">
<h2>Measurements</h2>
<table>
{% set channels = ins.measurements | selectattr("channel") | list | length > 0 %}
<tr><th>step</th><th>{{ axes_header }}</th>{% if channels %}<th>channel</th><th>reading</th>
{%- else %}<th>{{ ins.explained.label }}</th>{% endif %}
<th>chosen by</th><th>reason</th><th>reward</th><th>leader (p)</th></tr>
{% for m in ins.measurements %}
<tr class="measurement"><td>{{ m.step }}</td><td>{{ m.x | map("round", 6) | join(", ") }}</td>
{% if channels %}<td class="text channel">{{ m.channel }}</td>{% endif %}
<td>{{ "%.5g" | format(m.y) }}</td>
<td class="text">{{ m.hypothesis or "-" }}</td><td class="text">{{ m.reason }}</td>
<td>{{ "-" if m.reward is none else "%.0f" | format(m.reward) }}</td>
<td class="text">{% if m.leader %}{{ m.leader }} ({{ "%.2f" | format(m.probabilities[m.leader]) }})
{%- else %}-{% endif %}</td></tr>
{% endfor %}
</table>
</section>

<section id="refused">
<h2>Refused readings and instrument errors</h2>
{% if refused %}
<table>
<tr><th>step</th><th>{{ axes_header }}</th><th>{{ ins.explained.label }}</th><th>stage</th><th>reason</th>
<th>point skipped</th><th>message</th></tr>
{% for r in refused %}
<tr class="refused"><td>{{ "-" if r.step is none else r.step }}</td>
<td>{{ "-" if r.x is none else r.x | map("round", 6) | join(", ") }}</td>
<td>{{ "-" if r.y is none else r.y }}</td>
<td class="text">{{ r.stage or "-" }}</td><td class="text">{{ r.reason or "-" }}</td>
<td class="text">{{ "yes" if r.skipped else "no" }}</td><td class="text">{{ r.message or "" }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class="note">none: every reading was told to the campaign</p>
{% endif %}
</section>

<section id="config">
<h2>Config</h2>
<pre>{{ config }}</pre>
</section>
</body>
</html>
"""


def png_base64(fig, dpi: int = 100) -> str:
    """A matplotlib figure as base64-encoded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def refused_rows(inspection: Inspection, events: list[Entry]) -> list[dict]:
    """Every error the inspection lists (``stopping.errors``), with the step, point and value of the
    reading it refused where the journal holds them (``y`` as text: ``nan``, ``inf``).

    A refused reading is the measurement of the same request and point (``(request_id, index)``: a batch's
    points apart) journalled last before its error; its step is the request's first step plus the index.
    The inspection lists the journal's errors in order, so its ``i``-th is the journal's ``i``-th error."""
    steps = {e.request_id: e.body.step for e in events if e.kind == "request"}
    last: dict[tuple[str | None, int], MeasurementBody] = {}  # (request id, point) -> its latest measurement
    errors = []  # (error body, the reading it refused or None), in journal order
    for e in events:
        if e.kind == "measurement":
            last[(e.request_id, e.body.index)] = e.body
        elif e.kind == "error":
            errors.append((e.body, last.get((e.request_id, e.body.index)) if e.body.stage == "tell" else None))
    rows = []
    for i, err in enumerate(inspection.stopping.errors):
        body, m = errors[i] if i < len(errors) else (None, None)  # no events given: the errors alone
        index = body.index if body is not None and err.stage == "tell" else 0
        step = steps.get(err.request_id)
        rows.append(
            {
                **err.model_dump(),
                "step": None if step is None else step + index,
                "x": None if m is None else list(m.x),
                "y": None if m is None else repr(float(m.y)),
            }
        )
    return rows


def render_report(
    inspection: Inspection, config: dict, figures: dict, skipped: dict[str, str], events: list[Entry] = ()
) -> str:
    """The HTML page from an inspection, the journal's config, figures (name -> Figure) and the journal's
    events (for the refused readings' points and values)."""
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    hypotheses = [
        {
            **h.model_dump(),
            "parameters_text": ", ".join(f"{p} = {estimate(v.mean, v.sd)}" for p, v in h.parameters.items()),
        }
        for h in sorted(inspection.summary.hypotheses, key=lambda h: -h.probability)
    ]
    return env.from_string(_TEMPLATE).render(
        run=inspection.run,
        ins=inspection,
        st=inspection.stopping,
        hypotheses=hypotheses,
        check_cell=lambda c: check_cell(Check(**c) if isinstance(c, dict) else c),
        figures=[(name, png_base64(fig)) for name, fig in figures.items()],
        figure_names=list(figures),
        proposals=[
            {**r.model_dump(), "evidence": evidence_text(r), "parameters_text": parameters_text(r)}
            for r in inspection.proposals
        ],
        status=STATUS,
        transfer_laws=[
            {**law.model_dump(), "parameters_text": transferred_text(law)}
            for law in (inspection.transfer.laws if inspection.transfer else [])
        ],
        carried=(carried_label(inspection.transfer), moments_text(inspection.transfer.carried))
        if inspection.transfer and inspection.transfer.carried
        else None,
        skipped=list(skipped.items()),
        axes_header=axes_header(inspection),
        refused=refused_rows(inspection, list(events)),
        config=json.dumps(config, indent=2, sort_keys=True, default=str),
    )


def write_report(run: str | os.PathLike, out: str | os.PathLike, step: int | None = None) -> Path:
    """Write the report of ``run`` (a run directory or its journal) to the HTML file ``out``."""
    from abduce.controller.views.plots import build_plots

    with Journal.open(journal_path(run), readonly=True) as journal:
        events = list(read(journal))
        plots = build_plots(journal, step, events=events)
    html = render_report(plots.inspection, plots.config, plots.figures, plots.skipped, events)  # type: ignore[arg-type]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
