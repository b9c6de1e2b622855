"""``abduce plot``: every figure shows what the journal and the rebuilt campaign hold."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.controller.views.figures import (
    NO_DRIVER,
    NothingToPlot,
    acquisition_figure,
    acquisition_scores,
    choices_figure,
    posteriors_figure,
    probabilities_figure,
)
from abduce.controller.views.inspection import inspect_journal
from abduce.controller.views.plots import build_plots, write_plots
from abduce.controller.views.spectra import spectra_figure, spectra_of
from tests.controller.views.test_inspect import RUN, recorded, recorded_loops, synthetic_journal

runner = CliRunner()


def _journal():
    out, _ = recorded()
    return Journal.open(out / "journal.sqlite", readonly=True)


def _scatters(ax) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_1d_posteriors_one_panel_per_hypothesis_titled_with_its_probability():
    with _journal() as journal:
        _, campaign = rebuild(journal, upto=8)
    fig = posteriors_figure(campaign)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    probs = campaign.probabilities()
    xs, ys = campaign.data
    assert len(axes) == len(RUN["hypotheses"])
    for ax, name in zip(axes, campaign.hypothesis_names):
        assert ax.get_title().startswith(f"{name}: p = {probs[name]:.3f}")
        # the transition-1d simulator's axis and order parameter are dimensionless: the names alone
        assert campaign.space.units == ("",) and campaign.space.explained.unit == ""
        assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
        (points,) = _scatters(ax)  # the measurements, on top of the posterior
        np.testing.assert_array_equal(points.get_offsets(), np.c_[[x[0] for x in xs], ys])
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]  # mean +- 2 sd
        (mean,) = ax.lines
        order = np.argsort(campaign.points()[:, 0])
        np.testing.assert_allclose(mean.get_ydata(), campaign.posterior_mean(name)[order])
        assert any(name in text for text in _legend(ax))
    leader = campaign.leader()
    assert sum("(leader)" in ax.get_title() for ax in axes) == 1
    assert "(leader)" in axes[campaign.hypothesis_names.index(leader)].get_title()


def test_before_the_first_fit_the_panels_say_so():
    with _journal() as journal:
        _, campaign = rebuild(journal, upto=2)
    fig = posteriors_figure(campaign)
    for ax in fig.axes:
        assert ax.get_title().endswith("not fitted") and not ax.lines
        assert len(_scatters(ax)[0].get_offsets()) == 2
    with pytest.raises(NothingToPlot, match="initial design"):
        acquisition_figure(campaign)


def test_probabilities_and_choices_come_from_the_journal():
    with _journal() as journal:
        ins = inspect_journal(journal)
    fig = probabilities_figure(ins)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == [*ins.hypotheses, "none of these"]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "posterior probability"
    none = ax.lines[-1]
    np.testing.assert_array_equal(none.get_ydata(), [np.nan if m.none is None else m.none for m in ins.measurements])
    total = np.nansum([[*m.probabilities.values(), m.none or 0.0] for m in ins.measurements if m.probabilities], axis=1)
    np.testing.assert_allclose(total, 1.0)  # the laws and "none of these" share all the probability
    second = ax.lines[0]
    np.testing.assert_array_equal(second.get_xdata(), np.arange(0, 10))  # steps count from 0, as in the journal
    expected = [m.probabilities.get("second-order", np.nan) for m in ins.measurements]
    np.testing.assert_array_equal(second.get_ydata(), expected)
    assert _legend(ax) == [*ins.hypotheses, "none of these"]

    fig = choices_figure(ins)
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_yticklabels()] == [*ins.hypotheses, NO_DRIVER]
    assert sum(len(c.get_offsets()) for c in _scatters(top)) == len(ins.measurements)
    rewarded = {m.hypothesis for m in ins.measurements if m.reward is not None}
    assert sorted(line.get_label() for line in bottom.lines) == sorted(rewarded)
    for line in bottom.lines:  # the last point of each running mean is the summary's mean reward
        h = next(h for h in ins.summary.hypotheses if h.name == line.get_label())
        assert line.get_ydata()[-1] == pytest.approx(h.mean_reward)


def test_the_acquisition_peaks_where_the_campaign_asked_next():
    with _journal() as journal:
        requests = {e.body["step"]: e.body for e in journal.events("request")}
        for n in (5, 7):
            _, campaign = rebuild(journal, upto=n)
            points, scores, driver = acquisition_scores(campaign)
            assert driver == requests[n]["hypothesis"]
            assert points[int(np.nanargmax(scores))].tolist() == requests[n]["x"]
            measured = [campaign.space.index_of(x) for x in campaign.data[0]]
            assert np.isnan(scores[measured]).all()
    fig = acquisition_figure(campaign)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "variance score" and f"for step {n} " in ax.get_title()  # request n's step
    assert any(f"x = {requests[n]['x'][0]:.4g}" in t for t in _legend(ax))


def test_on_a_box_the_acquisition_is_scored_at_the_reference_points():
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.rehearse.simulated import SimulatedRun

    campaign, sim = SimulatedRun(
        hypotheses=("first-order", "linear"), policy="discriminate", budget=6, grid=0, n_init=4, seed=0
    ).build()
    for _ in range(5):
        r = campaign.ask()
        campaign.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    points, scores, driver = acquisition_scores(campaign)
    assert driver is None and points.shape == (campaign.settings.reference_size, 1) and np.isfinite(scores).all()
    (ax,) = acquisition_figure(campaign).axes
    assert np.all(np.diff(ax.lines[0].get_xdata()) >= 0)  # drawn in order along the axis
    assert any(t.startswith("best reference point: x = ") for t in _legend(ax))
    (panel, _) = posteriors_figure(campaign).axes
    assert len(_scatters(panel)[0].get_offsets()) == 5


def test_2d_posteriors_are_maps_of_mean_and_sd_with_the_measured_points():
    from abduce.controller.rehearse.rehearsal import Rehearsal

    campaign = Rehearsal(
        "simulated:phase-2d",
        ("first-order", "constant"),
        {"grid": 7},
        policy="discriminate",
        budget=5,
        n_init=4,
        seed=0,
    ).run()
    fig = posteriors_figure(campaign, ylabel="m")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 4  # mean and sd for each hypothesis
    for ax in axes:
        assert any(isinstance(c, QuadMesh) for c in ax.collections)
        (points,) = _scatters(ax)
        assert len(points.get_offsets()) == campaign.n
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("composition", "temperature (K)")  # the simulator's units
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("first-order: p = ") and titles[0].endswith("posterior mean")
    assert titles[3].startswith("constant: p = ") and titles[3].endswith("posterior sd")
    fig = acquisition_figure(campaign)
    assert any(isinstance(c, QuadMesh) for c in fig.axes[0].collections)


def test_spectra_are_drawn_next_to_their_reduced_values():
    with Journal.open(recorded_loops() / "journal.sqlite", readonly=True) as journal:
        ins = inspect_journal(journal)
        spectra = spectra_of(journal, ins)
        plots = build_plots(journal)
    assert len(spectra) == len(ins.measurements) == 6
    assert all(m.arrays == ["loop"] for m in ins.measurements)
    assert spectra[0].arrays["loop"].shape == (2, 32)
    assert set(plots.figures) == {"probabilities", "choices", "posteriors", "acquisition", "spectra"}
    fig = spectra_figure(spectra, shown=3, xlabel="composition", ylabel="loop-area")
    *loops, values = fig.axes
    assert len(loops) == 3
    for ax, s in zip(loops, (spectra[0], spectra[2], spectra[5])):
        (line,) = ax.lines
        np.testing.assert_array_equal(line.get_xdata(), s.arrays["loop"][0])  # response against bias
        assert f"loop-area = {s.y:.4g}" in ax.get_title()
    everything, shown = _scatters(values)
    assert len(everything.get_offsets()) == 6 and len(shown.get_offsets()) == 3
    assert values.get_xlabel() == "composition" and values.get_ylabel() == "loop-area"
    with pytest.raises(NothingToPlot):
        spectra_figure([])


def test_plot_command_writes_png_and_svg(tmp_path):
    out, _ = recorded()
    result = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "png"), "--step", "6"])
    assert result.exit_code == 0, result.output
    names = {"posteriors", "probabilities", "choices", "acquisition"}
    assert {p.stem for p in (tmp_path / "png").iterdir()} == names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in (tmp_path / "png").iterdir())
    plots = write_plots(out, tmp_path / "svg", fmt="svg")
    assert set(plots.figures) == names and not plots.skipped
    assert all(b"<svg" in p.read_bytes()[:1000] for p in (tmp_path / "svg").iterdir())
    result = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "x"), "--format", "gif"])
    assert result.exit_code == 2 and "gif" in result.output


def test_a_journal_that_cannot_be_rebuilt_still_gets_its_journal_plots(tmp_path):
    path = synthetic_journal(tmp_path / "journal.sqlite", 12)
    plots = write_plots(path, tmp_path / "plots")
    assert set(plots.figures) == {"probabilities", "choices"}
    assert set(plots.skipped) == {"posteriors", "acquisition"}
    assert "could not be rebuilt" in plots.skipped["posteriors"]
