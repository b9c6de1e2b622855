"""ONE recipe: every way of starting a campaign extends it, its defaults live in one place, its names are
the registries', and a journal's config of any mode reads back into the recipe that built it."""

import subprocess
import sys

import pytest

from abduce.controller.decide.policies import POLICIES
from abduce.controller.drive.remote import ListenRun
from abduce.controller.errors import ConfigError
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.recipe.settings import CampaignSection
from abduce.controller.recipe.spec import RunSpec, spec_of
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.controller.rehearse.simulated import SimulatedRun

# the documented exceptions: a daemon states its budget; a simulated run weighs its simulator's family
OVERRIDES = {(CampaignSection, "budget"), (SimulatedRun, "hypotheses")}


@pytest.mark.parametrize("kind", [CampaignSection, SimulatedRun, ListenRun, Rehearsal, RunSpec])
def test_every_way_of_starting_a_campaign_is_a_recipe_with_its_defaults(kind):
    assert issubclass(kind, Recipe)
    for name, field in Recipe.model_fields.items():
        if (kind, name) not in OVERRIDES:
            assert repr(kind.model_fields[name]) == repr(field), (
                f"{kind.__name__}.{name} differs from the recipe's field"
            )


def test_the_default_policy_is_the_same_everywhere():
    runs = [
        SimulatedRun(),
        ListenRun(listen="tcp://127.0.0.1:0", hypotheses=("linear",)),
        Rehearsal("simulated:transition-1d", ("linear",)),
        CampaignSection(hypotheses=("linear",), budget=3),
    ]
    assert {r.policy for r in runs} == {Recipe.model_fields["policy"].default} == {"discriminate"}


def test_names_are_checked_against_the_registries_not_a_list(monkeypatch):
    with pytest.raises(ConfigError, match="unknown policy 'greedy'; known: .*discriminate"):
        Recipe.of(hypotheses=("linear",), policy="greedy")
    monkeypatch.setitem(POLICIES._items, "my-random", POLICIES["random"])  # a policy registered by a plug-in
    assert Recipe.of(hypotheses=("linear",), policy="my-random").policy == "my-random"
    with pytest.raises(ConfigError, match="acquisition: .*unknown acquisition 'varience'"):
        Recipe.of(hypotheses=("linear",), acquisition="varience")
    with pytest.raises(ConfigError, match="unknown hypothesis 'sigmiod'"):
        Recipe.of(hypotheses=("sigmiod",))
    with pytest.raises(ConfigError, match="unique"):
        Recipe.of(hypotheses=("linear", "linear"))
    assert Recipe.of(hypotheses=("mypkg.laws:POWER",)).hypotheses == ("mypkg.laws:POWER",)  # resolved when built


def test_the_recipe_builds_the_campaign_it_describes():
    from abduce.controller.core.space import Space

    recipe = Recipe(hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=7, n_init=3, epsilon=0.3)
    c = recipe.build_campaign(Space.box([(0.0, 1.0)]), device="cpu")
    assert c.hypothesis_names == ("second-order", "linear") and c.policy.epsilon == 0.3
    assert c.stopping.n == 7 and c.settings.n_init == 3 and c.device.type == "cpu"


CONFIGS = {
    "in-process": {"mode": "in-process", **SimulatedRun(budget=9, seed=3).model_dump(mode="json")},
    "listen": {
        "mode": "listen",
        **ListenRun(listen="tcp://127.0.0.1:0", hypotheses=("linear", "sigmoid"), budget=9).model_dump(mode="json"),
        "instrument": "sim",
        "capabilities": {"x": 1},
    },
    "daemon": {
        "mode": "daemon",
        "campaign": CampaignSection(hypotheses=("linear",), budget=9, inducing=64).model_dump(mode="json"),
        "capabilities": {"x": 1},
    },
    "rehearsal": {
        "mode": "rehearsal",
        **Rehearsal("simulated:loops", ("linear",), {"n": 3}, reduction="loop-area").model_dump(mode="json"),
        "truth": "linear",
    },
}


@pytest.mark.parametrize("mode", CONFIGS)
def test_a_journal_config_of_every_mode_reads_back_into_the_recipe_that_wrote_it(mode):
    config = CONFIGS[mode]
    written = config["campaign"] if mode == "daemon" else config
    spec = spec_of(config)
    assert spec.mode == mode
    assert spec.recipe() == Recipe.model_validate({k: written[k] for k in Recipe.model_fields})


def test_a_journal_from_before_the_abduction_keys_resumes_with_the_values_it_ran_with():
    """composition_cost (0.1 then) and propose_admit (admitted once leading: 1.0) were added to the recipe after
    journals with proposals were written; such a journal is read with what it ran with, a newer one as written."""
    old = {"mode": "listen", "hypotheses": ["linear"], "policy": "discriminate", "budget": 3, "propose": "add"}
    spec = spec_of(old)
    assert (spec.composition_cost, spec.propose_admit) == (0.1, 1.0)
    spec = spec_of({**old, "composition_cost": 1.0, "propose_admit": 0.05})
    assert (spec.composition_cost, spec.propose_admit) == (1.0, 0.05)
    off = spec_of({**old, "propose": "off"})  # never proposed: the defaults, which nothing reads
    assert (off.composition_cost, off.propose_admit) == (
        Recipe.model_fields["composition_cost"].default,
        Recipe.model_fields["propose_admit"].default,
    )


def test_reading_a_journal_config_needs_no_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from abduce.controller.recipe.spec import spec_of\n"
        "spec = spec_of({'mode': 'listen', 'hypotheses': ['linear'], 'policy': 'discriminate', 'budget': 3})\n"
        "assert spec.hypotheses == ('linear',) and 'torch' not in [m for m in sys.modules if sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_config_that_describes_no_campaign_is_a_clear_error():
    with pytest.raises(ConfigError, match="mode 'later'"):
        spec_of({"mode": "later"})
    with pytest.raises(ConfigError, match="(?s)listen config does not describe a campaign.*hypotheses"):
        spec_of({"mode": "listen", "budget": 3})
