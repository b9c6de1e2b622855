"""The space carries its axes' names and units and the explained value's name and unit, from what the instrument
declared (``space_of``)."""

from __future__ import annotations

import pytest

from abduce.controller.core.quantity import Quantity
from abduce.controller.core.space import Space
from abduce.controller.errors import ConfigError
from abduce.controller.intake.capabilities import explained_of, quantities_of, space_of
from abduce.instruments.protocol.models import Capabilities


def caps(**extra) -> Capabilities:
    return Capabilities.model_validate(
        {
            "axes": [
                {"name": "composition", "unit": "1", "min": 0.0, "max": 1.0},
                {"name": "temperature", "unit": "K", "min": 100.0, "max": 700.0},
            ],
            "channels": [
                {"name": "loop", "unit": "pm", "shape": [2, 16]},
                {"name": "M", "unit": "emu"},
            ],
            **extra,
        }
    )


def test_a_label_is_name_and_unit_or_the_name_alone_when_dimensionless():
    assert Quantity("temperature", "K").label() == "temperature (K)"
    assert Quantity("composition", "1").label() == Quantity("composition").label() == "composition"


def test_a_box_and_a_candidate_set_carry_names_units_and_the_explained_value():
    box = Space.box([(0, 1), (100, 700)], names=["c", "T"], units=["1", "K"], explained=Quantity("M", "emu"))
    assert box.axes == (Quantity("c", "1"), Quantity("T", "K")) and box.explained == Quantity("M", "emu")
    grid = Space.finite([[0.0, 1.0], [1.0, 2.0]], units=["nm", "nm"])
    assert grid.names == ("x0", "x1") and [a.label() for a in grid.axes] == ["x0 (nm)", "x1 (nm)"]
    assert grid.explained == Quantity("y")  # nothing said: y, no unit
    assert Space.box([(0, 1)]).units == ("",)


def test_names_and_units_must_be_one_per_axis():
    with pytest.raises(ConfigError, match="2 names and 2 units"):
        Space.box([(0, 1), (0, 1)], units=["K"])
    with pytest.raises(ConfigError, match="1 names and 1 units"):
        Space.finite([[0.0], [1.0]], names=["a", "b"])


def test_space_of_keeps_what_the_instrument_declared():
    space = space_of(caps())
    assert space.names == ("composition", "temperature") and space.units == ("1", "K")
    assert space.explained == Quantity("M", "emu")  # the first scalar channel, as a campaign picks it
    assert (space.lo, space.hi) == ((0.0, 100.0), (1.0, 700.0))
    finite = space_of(caps(candidates=[[0.0, 100.0], [1.0, 700.0], [0.5, 400.0]]))
    assert finite.is_finite and finite.axes == space.axes


def test_the_explained_value_of_a_reduction_and_of_a_named_channel():
    assert explained_of(caps(), reduction="max") == Quantity("max", "pm")  # keeps the spectrum's unit
    assert explained_of(caps(), reduction="loop-area") == Quantity("loop-area", "")  # bias x response: unknown
    assert space_of(caps(), "loop", "mean").explained == Quantity("mean", "pm")
    with pytest.raises(ConfigError, match="no channel 'R'"):
        explained_of(caps(), channel="R")
    spectral_only = Capabilities.model_validate(
        {"axes": [{"name": "x", "min": 0, "max": 1}], "channels": [{"name": "loop", "shape": [2, 8]}]}
    )
    assert quantities_of(spectral_only) == ((Quantity("x"),), Quantity("y"))  # its reduction is not said yet
    with pytest.raises(ConfigError, match="declare a reduction"):
        explained_of(spectral_only, channel="loop")
