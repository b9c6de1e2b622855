from pathlib import Path

import pytest

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "deploy" / "config").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_loads(path):
    settings = load_settings(path)
    assert settings.campaign.budget >= 1
    assert settings.instrument.key.is_absolute() and settings.daemon.run_dir.is_absolute()


def test_at_least_the_simulated_and_a_microscope_example_exist():
    assert {"simulated.toml", "microscope.toml"} <= {p.name for p in EXAMPLES}


def test_a_typo_names_the_key_the_file_and_the_line(tmp_path):
    text = (ROOT / "deploy" / "config" / "simulated.toml").read_text().replace("budget = 40", "budgte = 40")
    path = tmp_path / "typo.toml"
    path.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith("budgte"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert f"{path}:{line}: campaign.budgte: Extra inputs are not permitted" in message
    assert "campaign.budget: Field required" in message


@pytest.mark.parametrize(
    "replace,expect",
    [
        (('policy = "discriminate"', 'policy = "greedy"'), "campaign.policy"),
        (('"sigmoid"]', '"sigmiod"]'), "unknown hypothesis 'sigmiod'"),
        (("budget = 40", "budget = 0"), "campaign.budget"),
        (('listen = "tcp://127.0.0.1:5555"', 'listen = "127.0.0.1:5555"'), "instrument.listen"),
        (("[daemon]", "[deamon]"), "deamon"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path, replace, expect):
    text = (ROOT / "deploy" / "config" / "simulated.toml").read_text().replace(*replace)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(")):
        load_settings(path)


def test_not_toml_and_missing_files(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[campaign\nbudget = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
