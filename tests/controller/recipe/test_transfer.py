"""Transfer between campaigns at the edges: `abduce run --prior-from`, the daemon's `prior_from`, the journal
holding what was transferred, composed laws carried over, and the refusals (hypotheses/transfer.py has the
maths and its own tests)."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abduce.controller.cli import app
from abduce.controller.core.space import Space
from abduce.controller.errors import ConfigError
from abduce.controller.journal.rebuild import rebuild, transfer_from_run, with_transfer
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.settings import load_settings
from abduce.controller.recipe.spec import spec_of
from abduce.controller.recipe.transfer import PastLaw, Transfer, pooled
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.transfer import Transferred

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
LAWS = "second-order,first-order,sigmoid,linear"
SAMPLE = ["--grid", "101", "--quiet", "--hypotheses", LAWS, "--policy", "discriminate", "--beta", "0.3"]


@pytest.fixture(scope="module")
def past(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("series") / "sample-1"
    result = runner.invoke(app, ["run", "--out", str(out), "--budget", "14", "--seed", "1", "--x-c", "0.6", *SAMPLE])
    assert result.exit_code == 0, result.output
    return out


def test_a_run_from_a_past_one_journals_what_it_took_and_resumes_to_the_same_answer(past, tmp_path):
    out = tmp_path / "sample-2"
    args = ["run", "--out", str(out), "--budget", "8", "--seed", "2", "--x-c", "0.62", *SAMPLE]
    result = runner.invoke(app, [*args, "--prior-from", str(past), "--temper", "0.8"])
    assert result.exit_code == 0, result.output
    with Journal.open(out / "journal.sqlite", readonly=True) as journal:
        spec = spec_of(journal.config())
        _, rebuilt = rebuild(journal)
    t = spec.transfer
    assert t is not None and t.source == str(past) and t.measurements == 14
    assert (t.temper, t.share) == (0.8, 0.5)
    assert {law.name for law in t.laws} == set(LAWS.split(","))
    ended = json.loads((past / "summary.json").read_text())
    second = next(law for law in t.laws if law.name == "second-order")
    past_x_c = next(h for h in ended["hypotheses"] if h["name"] == "second-order")["parameters"]["x_c"]
    assert second.parameters["x_c"] == pytest.approx((past_x_c["mean"], past_x_c["sd"]))
    # the priors: the past leader weighs most, every parameter of every law is transferred
    weights = dict(zip(rebuilt.belief.names, rebuilt.belief.weights))
    assert sum(weights.values()) == pytest.approx(4.0)
    leader = ended["leader"]
    assert weights[leader] == max(weights.values()) and weights[leader] > 1.0
    x_c = next(p for p in rebuilt.belief.slot("second-order").hypothesis.parameters if p.name == "x_c")
    assert isinstance(x_c.prior, Transferred) and x_c.prior.sd == pytest.approx(past_x_c["sd"] / math.sqrt(0.8))
    # the journal alone rebuilds the campaign that ran: the same probabilities at its last step
    last = json.loads((out / "decisions.jsonl").read_text().splitlines()[-1])
    assert rebuilt.probabilities() == pytest.approx(last["probabilities"], abs=1e-9)


def test_a_chain_of_samples_each_from_the_last(past, tmp_path):
    second, third = tmp_path / "sample-2", tmp_path / "sample-3"
    for out, source, seed in ((second, past, "2"), (third, second, "3")):
        args = ["run", "--out", str(out), "--budget", "6", "--seed", seed, "--x-c", "0.6", *SAMPLE]
        result = runner.invoke(app, [*args, "--prior-from", str(source)])
        assert result.exit_code == 0, result.output
    t = transfer_from_run(third)
    assert t.source == str(third) and t.measurements == 6
    with Journal.open(third / "journal.sqlite", readonly=True) as journal:
        assert spec_of(journal.config()).transfer.source == str(second)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--temper", "0"], "temper must be in (0, 1]"),
        (["--transfer-share", "0"], "share must be in (0, 1]"),
        (["--transfer-carry", "1"], "carry must be in [0, 1)"),
        (["--prior-from", "nowhere"], "nowhere does not exist"),
    ],
)
def test_a_bad_transfer_is_refused_before_the_run_directory_exists(past, tmp_path, extra, message):
    out = tmp_path / "refused"
    given = extra if "--prior-from" in extra else ["--prior-from", str(past), *extra]
    result = runner.invoke(app, ["run", "--out", str(out), "--budget", "3", *SAMPLE, *given])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()
    result = runner.invoke(app, ["run", "--out", str(out), "--budget", "3", *SAMPLE, "--temper", "0.5"])
    assert result.exit_code == 2 and "go with --prior-from" in result.output, result.output


def _transfer(*laws: PastLaw, axes=("",)) -> Transfer:
    return Transfer(source="past", axes=axes, laws=laws)


SUM = {"sum": [{"law": "second-order"}, {"law": "second-order"}]}


def test_a_composed_law_the_past_campaign_added_joins_with_its_priors_and_weight():
    declared = [BUILTIN[n] for n in LAWS.split(",")]
    two = PastLaw(
        name="second-order + second-order",
        tree=SUM,
        probability=0.9,
        parameters={"x_c_1": (0.3, 0.01), "x_c_2": (0.75, 0.01)},
        units={"x_c_1": ("x", 0), "x_c_2": ("x", 0)},
    )
    one = PastLaw(name="second-order", probability=0.1, parameters={"x_c": (0.7, 0.02)}, units={"x_c": ("x", 0)})
    laws, weights = _transfer(two, one).apply(declared, Space.box([(0.0, 1.0)]), cost=1.0)
    assert [h.name for h in laws] == [*LAWS.split(","), "second-order + second-order"]
    composed = laws[-1]
    priors = {p.name: p.prior for p in composed.parameters}
    # its interchangeable parts keep their declared priors (hypotheses.transfer.transferred); the law its weight
    assert not isinstance(priors["x_c_1"], Transferred) and priors["x_c_1"] == priors["x_c_2"]
    assert isinstance(next(p.prior for p in laws[0].parameters if p.name == "x_c"), Transferred)
    # declared prior: 1 each and the complexity prior's 1/15 for the sum; past: 0.9 and 0.1, tempered by 0.5
    base = [1.0, 1.0, 1.0, 1.0, 1.0 / 15]
    q = [math.sqrt(0.1), 0, 0, 0, math.sqrt(0.9)]
    expect = [sum(base) * (0.5 * b / sum(base) + 0.5 * qh / sum(q)) for b, qh in zip(base, q)]  # lambda 0.5
    assert weights == pytest.approx(expect)
    # given its law, the sample is new with probability lambda beta_h / pi_h: the share of its parameters'
    # joint prior that is the declared one (1 where the past campaign did not weigh the law)
    share = next(p.prior.share for p in laws[0].parameters if p.name == "x_c")
    assert share == pytest.approx(0.5 * base[0] / expect[0])


def test_what_the_past_laws_together_say_of_a_quantity_is_their_mixture_by_tempered_probability():
    laws = [
        (0.81, {"x_c": (0.4, 0.01), "A": (2.0, 0.1)}, {"x_c": ("x", 0), "A": ("y", 0)}),
        (0.01, {"x_c": (0.5, 0.02), "width": (0.1, 0.01)}, {"x_c": ("x", 0), "width": ("dx", 0)}),
        (0.0, {"slope": (1.0, 0.1)}, {"slope": ("y/x", 0)}),  # probability 0: says nothing
        (None, {"x_c": (0.9, 0.1)}, {"x_c": ("x", 0)}),  # not weighed
    ]
    out = pooled(laws, temper=0.5)
    assert set(out) == {("x_c", "x", 0), ("A", "y", 0), ("width", "dx", 0)}
    w = (0.9 / 1.0, 0.1 / 1.0)  # sqrt(0.81), sqrt(0.01), renormalised
    mean = w[0] * 0.4 + w[1] * 0.5
    var = w[0] * (0.01**2 + (0.4 - mean) ** 2) + w[1] * (0.02**2 + (0.5 - mean) ** 2)
    assert out[("x_c", "x", 0)] == pytest.approx((mean, math.sqrt(var)))
    assert out[("A", "y", 0)] == pytest.approx((2.0, 0.1))  # one law has it: its own


def test_with_a_carry_every_law_takes_the_samples_quantities_in_its_changed_part():
    """After a power law (p 1), the jump the past campaign did not fit takes x_c from the power law's posterior
    in the carried part of its prior: its new-sample branch (share 1 of its prior, lambda of the laws')
    split by the carry; without a carry (a run journalled before it) it keeps its declared priors."""
    declared = [BUILTIN[n] for n in LAWS.split(",")]
    power = PastLaw(
        name="second-order", probability=1.0, parameters={"x_c": (0.6, 0.01), "beta": (0.3, 0.05)}, units={}
    )
    power = power.model_copy(update={"units": {"x_c": ("x", 0), "beta": ("1", 0)}})
    carrying = Transfer(source="past", axes=("",), laws=(power,), carry=0.5)
    laws, _ = carrying.apply(declared, Space.box([(0.0, 1.0)]), cost=1.0)
    jump = {p.name: p.prior for p in laws[1].parameters}
    assert isinstance(jump["x_c"], Transferred) and jump["x_c"].mean is None  # no past posterior of its own
    x_c = jump["x_c"]
    assert (x_c.share, x_c.carry, *x_c.carried) == pytest.approx((0.5, 0.5, 0.6, 0.01 / math.sqrt(0.5)))
    power_x_c = next(p.prior for p in laws[0].parameters if p.name == "x_c")
    assert power_x_c.share + power_x_c.carry == pytest.approx(0.5 * 0.25 / (0.5 * 0.25 + 0.5))  # w_h, split
    assert laws[3] is declared[3]  # linear: no parameter of that name, unit and axis
    laws, _ = _transfer(power).apply(declared, Space.box([(0.0, 1.0)]), cost=1.0)
    assert laws[1] is declared[1]
    # a composed law's renamed parts carry nothing, and its x_c_1 is no quantity of the sample's
    mixed = {"sum": [{"law": "first-order"}, {"law": "second-order"}]}
    two = PastLaw(name="first-order + second-order", tree=mixed, probability=0.5,
                  parameters={"x_c_1": (0.3, 0.01)}, units={"x_c_1": ("x", 0)})  # fmt: skip
    both = Transfer(source="past", axes=("",), laws=(power, two), carry=0.5)
    assert set(both.quantities()) == {("x_c", "x", 0), ("beta", "1", 0)}
    assert both.quantities()[("x_c", "x", 0)] == pytest.approx((0.6, 0.01))  # the declared law's alone
    laws, _ = both.apply(declared, Space.box([(0.0, 1.0)]), cost=1.0)
    composed = {p.name: p.prior for p in laws[-1].parameters}
    assert isinstance(composed["x_c_1"], Transferred) and composed["x_c_1"].carried is None  # its own past only
    assert not isinstance(composed["x_c_2"], Transferred)  # nothing of its own, nothing carried


@pytest.mark.parametrize(
    "transfer, space, message",
    [
        (
            _transfer(
                PastLaw(
                    name="sigmoid + sigmoid",
                    tree={"sum": [{"law": "sigmoid"}] * 2},
                    probability=1.0,
                    parameters={},
                    units={},
                )
            ),  # fmt: skip
            Space.box([(0.0, 1.0)]),
            "built from 'sigmoid', which this campaign does not declare",
        ),
        (_transfer(axes=("K",)), Space.box([(0.0, 1.0)], units=["mK"]), "was in 'K', is in 'mK'"),
        (_transfer(axes=("", "")), Space.box([(0.0, 1.0)]), "has 2 axes, this campaign's 1"),
    ],
)
def test_a_transfer_that_does_not_fit_the_campaign_is_refused_naming_what(transfer, space, message):
    with pytest.raises(ConfigError, match=message):
        transfer.apply([BUILTIN["second-order"], BUILTIN["linear"]], space, cost=1.0)


def test_the_daemon_reads_prior_from_when_it_starts_and_its_journal_when_it_resumes(past, tmp_path):
    text = (ROOT / "deploy" / "config" / "simulated.toml").read_text()
    text = text.replace("budget = 40", f'budget = 40\nprior_from = "{past}"\ntemper = 0.7')
    text = text.replace('run_dir = "../../runs/simulated"', f'run_dir = "{tmp_path / "run"}"')
    path = tmp_path / "daemon.toml"
    path.write_text(text)
    settings = load_settings(path)
    assert settings.campaign.prior_from == past and settings.campaign.transfer is None
    started = with_transfer(settings, resuming=False)
    assert started.campaign.transfer.source == str(past) and started.campaign.transfer.temper == 0.7
    (tmp_path / "run").mkdir()
    with Journal.create(tmp_path / "run" / "journal.sqlite", {"mode": "daemon", **started.model_dump(mode="json")}):
        pass
    resumed = with_transfer(settings, resuming=True)
    assert resumed.campaign.transfer == started.campaign.transfer
    # prior_from taken out of the config since: the resume still uses what the journal says was transferred
    path.write_text(text.replace(f'prior_from = "{past}"\ntemper = 0.7', ""))
    assert with_transfer(load_settings(path), resuming=True).campaign.transfer == started.campaign.transfer
    path.write_text(text.replace(f'prior_from = "{past}"\n', ""))
    with pytest.raises(
        ConfigError, match="temper, transfer_share, transfer_drift and transfer_carry go with prior_from"
    ):
        load_settings(path)


def test_inspect_the_report_the_web_page_and_the_export_show_what_was_transferred(past, tmp_path):
    import xarray as xr
    from starlette.testclient import TestClient

    from abduce.controller.views import web
    from abduce.controller.views.export import export_run
    from abduce.controller.views.inspection import inspect_run
    from abduce.controller.views.report import write_report

    out = tmp_path / "sample-2"
    args = [
        "run",
        "--out",
        str(out),
        "--budget",
        "6",
        "--seed",
        "2",
        "--x-c",
        "0.6",
        *SAMPLE,
        "--prior-from",
        str(past),
        "--transfer-carry",
        "0.25",
    ]
    assert runner.invoke(app, args).exit_code == 0
    ins = inspect_run(out)
    assert ins.transfer is not None and ins.transfer.carry == 0.25
    # the quantities carried over: what the past laws together said of each (their mixture by p^tau)
    ended = {h["name"]: h for h in json.loads((past / "summary.json").read_text())["hypotheses"]}
    assert {"x_c", "A", "beta"} <= set(ins.transfer.carried)
    lead = max(ended.values(), key=lambda h: h["probability"])
    assert lead["name"] == "second-order" and lead["probability"] > 0.9  # beta: second-order's alone
    assert ins.transfer.carried["beta"].mean == pytest.approx(lead["parameters"]["beta"]["mean"], rel=1e-6)
    t = ins.transfer
    assert t is not None and t.source == str(past) and (t.temper, t.share) == (0.5, 0.5) and t.measurements == 14
    second = next(law for law in t.laws if law.name == "second-order")
    assert second.parameters["x_c"].prior_sd == pytest.approx(second.parameters["x_c"].sd / math.sqrt(0.5))
    assert inspect_run(past).transfer is None
    shown = runner.invoke(app, ["inspect", str(out)], env={"COLUMNS": "200"})
    said = " ".join(shown.output.split())  # the title wraps where the path is long
    assert (
        "transferred from" in said
        and "temper 0.5, declared share 0.5, drift 0.1, carry 0.25" in said
        and "x_c = " in said
        and "carried over (carry 0.25)" in said
    )
    page = write_report(out, tmp_path / "report.html").read_text()
    assert '<section id="transfer">' in page and "Transferred priors" in page and "x_c = " in page
    assert "in 0.25 of that case the sample's quantities carry" in " ".join(page.split())
    assert '<tr class="carried">' in page and "carried over (carry 0.25)" in page
    assert '<section id="transfer">' not in write_report(past, tmp_path / "past.html").read_text()
    client = TestClient(web.create_app(web.Campaigns([out])), base_url="http://127.0.0.1")
    status = client.get(f"/api/runs/{out.name}").json()
    assert status["transfer"] == json.loads(ins.model_dump_json())["transfer"]
    card = client.get(f"/runs/{out.name}/card").text
    assert f"priors transferred from {past}" in card and "carried over (carry 0.25)" in card
    export_run(out, tmp_path / "run.nc")
    with xr.open_dataset(tmp_path / "run.nc", engine="h5netcdf") as ds:
        assert json.loads(ds.attrs["transfer"])["source"] == str(past)


def test_listening_without_a_key_is_refused_before_the_past_run_is_read(tmp_path):
    """A past run that cannot be read would fail later, and slower: the missing key is named first."""
    past = tmp_path / "past"
    past.mkdir()
    (past / "journal.sqlite").write_bytes(b"not a journal")
    out = tmp_path / "run"
    args = ["run", "--out", str(out), "--budget", "3", "--listen", "tcp://127.0.0.1:5599", "--prior-from", str(past)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--listen needs --key" in " ".join(result.output.split()), result.output
    assert not out.exists()
