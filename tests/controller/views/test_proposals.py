"""Issue 17, item 3: the proposals abduction made, shown to the scientist (inspect, report, web page, figure).

The runs here are real campaigns journalled by the normal machinery: a two-transition sample (not in the
declared set) rehearsed against the transition-1d simulator with its axis and value in kelvin and emu, once
adding proposals (``propose = "add"``) and once only suggesting them, an operator accepting the suggestion.
Each is compared with what the live campaign itself recorded (``Campaign.proposals``, ``summary()``).
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.core.quantity import Quantity
from abduce.controller.journal.events import read
from abduce.controller.journal.rebuild import snapshot
from abduce.controller.journal.store import Journal
from abduce.controller.views import web
from abduce.controller.views.figures import NothingToPlot
from abduce.controller.views.inspection import SCHEMA_VERSION, inspect_journal, inspect_run
from abduce.controller.views.labels import Labels
from abduce.controller.views.plots import build_plots
from abduce.controller.views.proposal_plot import proposals_figure
from abduce.controller.views.proposals import parameter_units, proposals_of, unit_of
from abduce.controller.views.report import write_report
from abduce.controller.views.terminal import render
from tests.controller.views.test_inspect import _scratch, recorded

runner = CliRunner()
LAWS = ("second-order", "first-order", "linear", "sigmoid")
TWO_TRANSITIONS = {  # x_c = 0.3 and 0.75: no declared law explains it; "second-order + second-order" does
    "truth": "two-transitions",
    "x_c": 0.75,
    "x_c2": 0.3,
    "beta": 0.3,
    "grid": 101,
    "noise_fraction": 0.05,
    "axis_names": ["T"],
    "axis_units": ["K"],
    "unit": "emu",
}
SEED = 1  # this seed's campaign proposes after its 15th measurement (a proposal round at n = 15)
COST, ADMIT = 0.1, 1.0  # the stricter abduction (admitted once leading): that round suggests two laws (both rows)


@functools.cache
def proposing(mode: str = "add", budget: int = 16):
    """A journalled rehearsal with abduction on: ``(run directory, the live campaign's summary() after each
    tell, the campaign at the end)``. ``mode`` ``"suggest"``: an operator accepts the first suggestion of a
    round as soon as it is made (``Campaign.accept``, recorded with the next step)."""
    from abduce.controller.rehearse.rehearsal import Rehearsal

    r = Rehearsal(
        "simulated:transition-1d",
        LAWS,
        TWO_TRANSITIONS,
        policy="discriminate",
        budget=budget,
        seed=SEED,
        propose=mode,
        composition_cost=COST,
        propose_admit=ADMIT,
    )
    out = _scratch("abduce-proposals-") / "run"
    campaign, instrument = built = r.build()
    live = {0: campaign.summary()}

    def capture(record):
        live[campaign.n] = campaign.summary()
        suggested = [p["name"] for p in record.proposals if p.get("suggested")]
        if suggested:
            campaign.accept(suggested[0])

    r.run_into(out, [capture], built=built)
    return out, live, campaign


# --------------------------------------------------------------------------- inspect


def test_inspect_lists_each_proposal_as_the_campaign_recorded_it():
    out, live, campaign = proposing()
    made = campaign.proposals
    assert made and all(p["added"] for p in made), "this seed's campaign must add a proposal"
    ins = inspect_run(out)
    assert ins.schema_version == SCHEMA_VERSION == 8
    assert [(p.name, p.step, p.formula, p.depth) for p in ins.proposals] == [
        (p["name"], p["step"], p["formula"], p["depth"]) for p in made
    ]
    probabilities = campaign.probabilities()
    for row, p in zip(ins.proposals, made):
        assert row.status == "added" and row.reason == p["reason"]
        assert (row.log_evidence, row.log_evidence_se, row.probability) == (
            p["log_evidence"],
            p["log_evidence_se"],
            p["probability"],
        )
        assert row.probability_now == probabilities[row.name]  # a contender now: its probability after the last step
        assert {k: [v.mean, v.sd] for k, v in row.parameters.items()} == p["parameters"]
    # units from the declarations: A amplitudes in the value's unit, x_c in the axis's, beta dimensionless
    units = {k: v.unit for k, v in ins.proposals[0].parameters.items()}
    assert units == {"A_1": "emu", "x_c_1": "K", "beta_1": "", "A_2": "emu", "x_c_2": "K", "beta_2": ""}
    # the contenders proposals added are hypotheses of the summary, as in the campaign's own
    assert [h.name for h in ins.summary.hypotheses] == list(campaign.hypothesis_names)
    assert ins.summary.model_dump() == live[campaign.n]


def test_a_proposal_appears_at_the_step_it_was_made_and_the_summary_matches_every_step():
    out, live, campaign = proposing()
    step = campaign.proposals[0]["step"]
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        assert inspect_journal(journal, step=step, events=events).proposals == []  # before its measurement was told
        after = inspect_journal(journal, step=step + 1, events=events)
        assert [p.name for p in after.proposals] == [p["name"] for p in campaign.proposals if p["step"] == step]
        for n, summary in live.items():
            assert inspect_journal(journal, step=n, events=events).summary.model_dump() == summary, n


def test_a_suggestion_and_its_acceptance_are_two_rows_and_only_the_accepted_law_is_a_contender():
    out, _, campaign = proposing("suggest", budget=17)
    made = campaign.proposals
    suggested = [p for p in made if p["suggested"]]
    assert len(suggested) >= 2 and made[len(suggested)]["added"], made  # the round's suggestions, then the accept
    ins = inspect_run(out)
    assert [p.status for p in ins.proposals] == ["suggested"] * len(suggested) + ["accepted"]
    first, accepted = ins.proposals[0], ins.proposals[-1]
    assert accepted.name == first.name and accepted.reason == "accepted by the operator"
    assert accepted.probability_now == campaign.probabilities()[accepted.name]
    assert first.probability_now == accepted.probability_now  # the same law, a contender now
    waiting = ins.proposals[1 : len(suggested)]
    assert all(p.name not in campaign.hypothesis_names and p.probability_now is None for p in waiting)
    text = _terminal(ins)
    assert "suggested (abduce accept RUN NAME adds it)" in text and "accepted by the operator" in text
    assert "not a contender" in text


def _terminal(ins, width: int = 110) -> str:
    console = Console(record=True, width=width)
    for part in render(ins):
        console.print(part)
    return console.export_text()


def test_the_terminal_shows_each_proposal_with_formula_step_reason_evidence_and_units():
    out, _, campaign = proposing()
    ins = inspect_run(out)
    text = _terminal(ins)
    n = len(ins.proposals)
    p = ins.proposals[0]
    assert f"proposal 1 of {n}: {p.name}" in text
    assert f"at step {p.step}, after {p.step + 1} measurements" in text and "added as a contender" in text
    assert p.reason in text and f"log evidence {p.log_evidence:.2f} ± {p.log_evidence_se:.2f}" in text
    assert f"p = {p.probability_now:.3f}" in text
    x_c = p.parameters["x_c_1"]
    assert re.search(rf"x_c_1 = {x_c.mean:.{_digits(x_c.sd)}f} ± {x_c.sd:.{_digits(x_c.sd)}f} K", text)
    assert "[A_1" in text  # the formula's brackets are text, not rich markup
    # a run without proposals shows no such table
    assert "proposal 1 of" not in _terminal(inspect_run(recorded()[0]))
    result = runner.invoke(app, ["inspect", str(out), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["proposals"][0]["name"] == p.name


def _digits(sd: float) -> int:
    import math

    return 1 - math.floor(math.log10(sd))


# --------------------------------------------------------------------------- units


def test_a_parameters_unit_follows_its_declared_frame():
    labels = Labels((Quantity("composition", "1"), Quantity("temperature", "K")), Quantity("m", "emu"))
    assert [unit_of(k, 1, labels) for k in ("x", "dx", "y", "y/dx", "y*dx", "1")] == [
        "K",
        "K",
        "emu",
        "emu/K",
        "emu K",
        "",
    ]
    assert unit_of("y/dx", 0, labels) == "emu" and unit_of("x", 0, labels) == "1"
    undeclared = Labels((Quantity("x"),), Quantity("y"))
    assert {unit_of(k, 0, undeclared) for k in ("x", "y", "y/dx", "y*dx")} == {""}
    background = parameter_units({"background": {"law": "sigmoid"}, "degree": 2}, labels)
    assert {k: background[k] for k in ("b0", "b1", "b2", "A", "x_c")} == {
        "b0": "emu",
        "b1": "emu",
        "b2": "emu",
        "A": "emu",
        "x_c": "1",  # sigmoid's critical point lies on axis 0 (composition)
    }
    boundary = parameter_units({"boundary": {"law": "second-order"}, "axis": 1, "of": 0, "degree": 2}, labels)
    assert {k: boundary[k] for k in ("tc0", "tc1", "tc2", "A", "beta")} == {
        "tc0": "K",
        "tc1": "K",
        "tc2": "K",
        "A": "emu",
        "beta": "",
    }
    assert parameter_units({"law": "no-such-law"}, labels) == {}  # not buildable here: no units, still shown


def test_rows_from_records_written_before_units_or_status_fields():
    rows = proposals_of(
        [
            {"name": "a + b", "step": 3, "added": False, "suggested": True, "parameters": {"A_1": [1.0, 0.1]}},
            {"name": "a + b", "step": 4, "added": True, "suggested": False, "parameters": {}},
        ],
        {"a + b": 0.7},
    )
    assert [r.status for r in rows] == ["suggested", "accepted"]
    assert rows[0].parameters["A_1"].unit == "" and rows[0].formula == "" and rows[0].screen is None
    labels = Labels((Quantity("T", "K"),), Quantity("m", "emu"))
    framed = {"name": "a + b", "step": 3, "added": True, "parameters": {"A_1": [1.0, 0.1], "x_c_1": [0.3, 0.01]}}
    framed["units"] = {"A_1": ["y", 0], "x_c_1": ["x", 0]}  # a record that carries its parameters' frames
    framed["tree"] = {"law": "no-such-law"}  # so they cannot come from building it
    row = proposals_of([framed], {}, labels)[0]
    assert {k: v.unit for k, v in row.parameters.items()} == {"A_1": "emu", "x_c_1": "K"}


# --------------------------------------------------------------------------- report, figure, web


def test_the_report_has_a_proposals_section_and_figure_and_none_without_proposals(tmp_path):
    out, _, campaign = proposing()
    html = write_report(out, tmp_path / "report.html").read_text(encoding="utf-8")
    section = html.split('<section id="proposals">')[1].split("</section>")[0]
    assert section.count('<tr class="proposal proposal-added">') == len(campaign.proposals)
    p = campaign.proposals[0]
    assert f"<strong>{p['name']}</strong>" in section and f"{p['log_evidence']:.2f}" in section
    assert "x_c_1 = " in section and " K," in section and 'href="#plot-proposals"' in section
    assert re.search(r'<figure id="plot-proposals"><img alt="proposals" src="data:image/png;base64,', html)
    plain = write_report(recorded()[0], tmp_path / "plain.html").read_text(encoding="utf-8")
    assert '<section id="proposals">' not in plain and "plot-proposals" not in plain


def test_the_figure_sets_the_best_proposal_against_the_best_declared_law_with_their_residuals():
    out, _, _ = proposing()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        events = list(read(journal))
        plots = build_plots(journal, events=events)
        _, campaign = snapshot(journal, events=events)
    fig = plots.figures["proposals"]
    top, bottom = fig.axes
    probs = campaign.probabilities()
    added = [p.name for p in plots.inspection.proposals]
    best = max(added, key=probs.get)
    declared = max((n for n in campaign.hypothesis_names if n not in added), key=probs.get)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert any(t.startswith(f"{best} (proposed, p = {probs[best]:.3f})") for t in legend)
    assert any(t.startswith(f"{declared} (declared, p = {probs[declared]:.3f})") for t in legend)
    assert top.get_xlabel() == "" and bottom.get_xlabel() == "T (K)" and top.get_ylabel() == "y (emu)"
    # the posterior mean drawn is the campaign's, over its points in order
    pts = campaign.points()[:, 0]
    order = np.argsort(pts)
    mean = campaign.posterior(best)[0]
    drawn = next(line for line in top.get_lines() if line.get_label().startswith(best) and line.get_linestyle() == "-")
    np.testing.assert_allclose(drawn.get_ydata(), mean[order])
    # residuals: y minus the law alone, m(x; theta) at the recorded posterior means, evaluated here from the
    # composed law's formula: two terms A_i ((x_c_i - x) / span)^beta_i below x_c_i, 0 above (span 1 here).
    # The library rounds each kink over beta * 1e-3 of the span: points that close to an x_c are left out.
    assert best == "second-order + second-order"  # this seed's campaign
    xs, ys = campaign.data
    x, y = np.array(xs)[:, 0], np.array(ys)
    theta = {k: v[0] for k, v in campaign.history[-1].parameters[best].items()}
    law = sum(theta[f"A_{i}"] * np.clip(theta[f"x_c_{i}"] - x, 0, None) ** theta[f"beta_{i}"] for i in (1, 2))
    away = (np.abs(x - theta["x_c_1"]) > 5e-3) & (np.abs(x - theta["x_c_2"]) > 5e-3)
    assert away.sum() >= len(x) - 2
    dots = next(line for line in bottom.get_lines() if line.get_label().startswith(f"{best} (proposed"))
    np.testing.assert_allclose(dots.get_ydata()[away], (y - law)[away], atol=1e-6)
    rms = np.sqrt(np.mean(np.asarray(dots.get_ydata()) ** 2))
    assert f"rms {rms:.3g} (the law alone)" in dots.get_label()
    # the declared law misses the second transition: its residuals are larger (independent of the rms label)
    others = next(line for line in bottom.get_lines() if line.get_label().startswith(f"{declared} (declared"))
    assert np.sqrt(np.mean(np.asarray(others.get_ydata()) ** 2)) > rms
    assert "proposals" not in build_plots_of(recorded()[0]).figures


def build_plots_of(run):
    with Journal.open(run / "journal.sqlite", readonly=True) as journal:
        plots = build_plots(journal)
    assert "proposals" not in plots.skipped  # a campaign that proposed nothing has no such figure, nor a note
    return plots


def test_the_figure_says_why_when_no_proposal_joined_the_campaign():
    out, _, campaign = proposing()
    ins = inspect_run(out)
    waiting = [p.model_copy(update={"status": "suggested"}) for p in ins.proposals]
    suggested_only = ins.model_copy(update={"proposals": waiting})
    with pytest.raises(NothingToPlot, match="only suggested"):
        proposals_figure(campaign, suggested_only)
    with pytest.raises(NothingToPlot, match="proposed no composed law"):
        proposals_figure(campaign, ins.model_copy(update={"proposals": []}))


def test_the_web_status_and_page_list_the_proposals(tmp_path):
    from starlette.testclient import TestClient

    out, _, campaign = proposing()
    plain = recorded()[0]
    campaigns = web.Campaigns([out, plain])
    c = TestClient(web.create_app(campaigns), base_url="http://127.0.0.1")
    status = c.get("/api/runs/run").json()
    assert status["schema_version"] == web.SCHEMA_VERSION == 7
    assert [p["name"] for p in status["proposals"]] == [p["name"] for p in campaign.proposals]
    assert status["proposals"] == json.loads(inspect_run(out).model_dump_json())["proposals"]
    card = c.get("/runs/run/card").text
    assert card.count('<tr class="proposal proposal-added">') == len(campaign.proposals)
    assert 'src="runs/run/plots/proposals.png?seq=' in card and "x_c_1 = " in card
    drawn = c.get("/runs/run/plots/proposals.png")
    assert drawn.content.startswith(b"\x89PNG") and "x-abduce-not-drawn" not in drawn.headers
    other = campaigns.names[1]
    assert c.get(f"/api/runs/{other}").json()["proposals"] == []
    assert 'class="proposals"' not in c.get(f"/runs/{other}/card").text
    note = c.get(f"/runs/{other}/plots/proposals.png").headers["x-abduce-not-drawn"]
    assert note == "the campaign proposed no composed law"


# --------------------------------------------------------------------------- a 2-D campaign


@functools.cache
def proposing_2d():
    """A phase-diagram rehearsal (composition x temperature in K, a quadratic T_c(x)) with the three 2-D
    boundary laws; its proposal round at n = 25 adds a quadratic boundary. The live campaign at the end."""
    from abduce.controller.rehearse.rehearsal import Rehearsal

    r = Rehearsal(
        "simulated:phase-2d",
        ("second-order boundary", "first-order boundary", "sigmoid boundary"),
        {"tc2": 300.0, "grid": 21},
        policy="discriminate",
        budget=26,
        seed=0,
        propose="add",
    )
    out = _scratch("abduce-proposals-2d-") / "run"
    campaign = r.run_into(out)
    return out, campaign


@pytest.mark.slow
def test_a_2d_campaigns_figure_maps_both_laws_and_their_residuals():
    out, campaign = proposing_2d()
    ins = inspect_run(out)
    assert ins.proposals and ins.proposals[0].parameters["tc0"].unit == "K"
    fig = proposals_figure(campaign, ins, ins.explained.label)
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(maps) == 4  # the two means, the two residual maps
    best = ins.proposals[0].name
    assert maps[0].get_title().startswith(f"{best} (proposed") and maps[2].get_xlabel() == "composition"
    assert maps[2].get_ylabel() == "temperature (K)"
    xs, ys = campaign.data
    dots = maps[2].collections[0]
    np.testing.assert_allclose(dots.get_offsets(), np.array(xs))
    assert np.isfinite(dots.get_array()).all() and len(dots.get_array()) == len(ys)


@pytest.mark.slow
def test_a_rebuilt_2d_campaign_draws_its_proposal():
    """A raised boundary of a declared boundary law is rebuilt under its recorded name (its tree's leaf is the
    declared law by name), so the snapshot restores its fit and the figure draws it."""
    out, _ = proposing_2d()
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        plots = build_plots(journal)
    assert "proposals" in plots.figures, plots.skipped.get("proposals")
