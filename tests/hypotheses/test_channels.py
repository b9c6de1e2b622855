"""A law across channels: the law itself on channel 0, the link's image of it on the others."""

import pytest
import torch

from abduce.hypotheses.channels import across_channels, link_parameters
from abduce.hypotheses.declaration import Frame
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.model import physical_parameters

DT = torch.float64


def test_the_mean_is_the_law_on_channel_0_and_its_image_elsewhere():
    law = BUILTIN["linear"]
    h = across_channels(law, 3, 1)
    frame = Frame(lo=(2.0, 0.0), span=(4.0, 2.0), s=10.0)  # x in [2, 6]; the channel axis 0..2
    rel = {p.name: v for p, v in zip(h.free, torch.linspace(0.1, 0.9, len(h.free), dtype=DT))}
    p = physical_parameters(h, frame, rel)
    x = torch.tensor([[3.0, 0.0], [3.0, 1.0], [5.0, 2.0]], dtype=DT)
    got = h.mean(x, p)
    m = law.mean(x[:, :1], p)  # the law alone, in physical units
    assert got[0] == m[0]
    for row, c in ((1, 1), (2, 2)):
        image = p[f"offset_{c}"] + p[f"gain_{c}"] * m[row] + p[f"bend_{c}"] * m[row] ** 2
        image = image + p[f"tilt_{c}_0"] * (x[row, 0] - 2.0)  # the tilt is 0 at the axis's lower bound
        image = image + p[f"curve_{c}_0"] * ((x[row, 0] - 2.0) / 4.0) ** 2  # the curve, its full value at the upper
        assert got[row] == pytest.approx(float(image), rel=1e-12)
    # physical units: an offset in the data's units, a bend in their inverse, a tilt per unit of x
    assert float(p["offset_1"]) == pytest.approx(float(rel["offset_1"]) * 10.0)
    assert float(p["bend_1"]) == pytest.approx(float(rel["bend_1"]) / 10.0)
    assert float(p["tilt_1_0"]) == pytest.approx(float(rel["tilt_1_0"]) * 10.0 / 4.0)
    assert float(p["curve_1_0"]) == pytest.approx(float(rel["curve_1_0"]) * 10.0)  # a rise over the span, in y


def test_draws_broadcast_and_names_are_kept():
    h = across_channels(BUILTIN["second-order"], 2, 1)
    assert h.name == "second-order" and "channel 1" in h.formula
    assert [q.name for q in h.free][-5:] == ["gain_1", "offset_1", "bend_1", "tilt_1_0", "curve_1_0"]
    frame = Frame(lo=(0.0, 0.0), span=(1.0, 1.0), s=1.0)
    rel = {q.name: torch.full((5, 1), 0.4, dtype=DT) for q in h.free}  # S = 5 draws
    x = torch.tensor([[0.2, 0.0], [0.2, 1.0], [0.9, 1.0]], dtype=DT)
    assert h.mean(x, physical_parameters(h, frame, rel)).shape == (5, 3)


def test_refusals():
    with pytest.raises(ValueError, match="at least 2 channels"):
        across_channels(BUILTIN["linear"], 1, 1)
    twice = across_channels(BUILTIN["linear"], 2, 1)
    with pytest.raises(ValueError, match="already has parameters"):
        across_channels(twice, 2, 1)
    assert {q.name for q in link_parameters(3, 2)} >= {"gain_2", "tilt_2_1", "curve_2_1", "origin_1", "end_1"}
