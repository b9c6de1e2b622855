"""The leaf's registries and the one dotted-path import that hypotheses, reductions and drivers share."""

import pytest

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.registry import Registry, import_dotted
from abduce.instruments.drivers.sources import build_driver


def test_a_registry_names_what_it_holds_when_a_name_is_misspelt():
    things = Registry("widget")
    things.register("round")(object)
    with pytest.raises(UnknownNameError, match="roudn"):
        things["roudn"]
    with pytest.raises(ValueError, match="registered twice"):
        things.register("round")(object)


def test_a_dotted_path_by_colon_or_by_dot():
    import math

    assert import_dotted("thing", "math:sqrt") is math.sqrt
    assert import_dotted("thing", "math.sqrt") is math.sqrt


@pytest.mark.parametrize("path", ["no_such_pkg.mod:f", "math:no_such_function", ":f", "math."])
def test_a_dotted_path_that_does_not_import_names_its_kind_and_path(path):
    with pytest.raises(ConfigError, match=rf"^reduction '{path}' does not import: "):
        import_dotted("reduction", path)


def test_a_driver_path_goes_through_the_same_import():
    with pytest.raises(ConfigError, match=r"^driver 'no_such_pkg.mod:Driver' does not import: "):
        build_driver("no_such_pkg.mod:Driver")
    with pytest.raises(ConfigError, match="not an abduce Driver"):
        build_driver("json.decoder:JSONDecoder")
    with pytest.raises(ConfigError, match=r"^driver 'json.decoder:JSONDecoder': .*unexpected keyword argument 'gain'"):
        build_driver("json.decoder:JSONDecoder", {"gain": 2})  # options it does not take
