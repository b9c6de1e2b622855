"""The grammar of hypotheses (hypotheses/grammar.py): every operation's mean against its parts' means, the
derived parameters, the canonical forms, the enumeration and its complexity prior, the 2-D phase-boundary
laws against the phase-2d simulator's own physics, and the ordered interchangeable parts of a sum.

Oracles: a composed mean is compared with its parts' means evaluated on their own (the sum of them, the
child at the transformed coordinate), the boundary laws with ``simulators/phase2d.py`` (numpy, written
apart from the hypotheses), the counts with combinatorics worked out by hand below.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from math import comb

import numpy as np
import pytest
import torch

from abduce.controller.errors import ConfigError
from abduce.hypotheses.check import check
from abduce.hypotheses.declaration import Frame, Hypothesis, LogNormal, Uniform
from abduce.hypotheses.fitting import canonical, log_prior, prior_draws
from abduce.hypotheses.grammar import (
    along,
    boundary,
    build,
    depth_counts,
    direction,
    enumerate_compositions,
    key,
    prior_weight,
    raise_degree,
    structure,
    sum_of,
    with_background,
)
from abduce.hypotheses.library import BUILTIN, PHASE_BOUNDARIES, resolve_hypothesis
from abduce.hypotheses.model import DTYPE, physical_parameters, relative_mean
from abduce.simulators.phase2d import Phase2D

SIX = [BUILTIN[n] for n in ("second-order", "first-order", "sigmoid", "linear", "constant", "curie-weiss")]
LOCATED_1D = ("second-order", "first-order", "sigmoid", "curie-weiss")  # a free parameter of unit "x"
TRANSITIONS = [BUILTIN[n] for n in ("second-order", "first-order", "sigmoid")]
BOUNDARIES = list(PHASE_BOUNDARIES.values())
FRAME_1D = Frame(lo=(2.0,), span=(3.0,), s=1.7)  # a non-unit frame, so unit conversions matter
FRAME_2D = Frame(lo=(0.2, 100.0), span=(0.6, 600.0), s=0.8)
PHASE_BOX = ((0.0, 100.0), (1.0, 700.0))  # Phase2D's default composition x temperature box


def draws(h: Hypothesis, count: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """``count`` relative parameter draws from ``h``'s priors, each ``count x 1``."""
    return prior_draws(h, count, seed)


def points(d: int, n: int = 50, seed: int = 1) -> torch.Tensor:
    """``n x d`` relative points in the unit cube (edges included)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, d, generator=g, dtype=DTYPE)
    u[0], u[1] = 0.0, 1.0
    return u


def part_draws(composed: dict[str, torch.Tensor], i: int, part: Hypothesis) -> dict[str, torch.Tensor]:
    """Part ``i``'s (1-based) free parameters, read from the sum's suffixed ones."""
    return {p.name: composed[f"{p.name}_{i}"] for p in part.free}


# ------------------------------------------------------------------------------------------ operations


@pytest.mark.parametrize("names", [("second-order", "sigmoid"), ("first-order", "curie-weiss"), ("sigmoid",) * 2])
def test_a_sum_is_the_sum_of_its_parts_in_physical_units(names):
    parts = [BUILTIN[n] for n in names]
    h = sum_of(parts)
    theta = draws(h)
    u = points(1)
    ordered = sorted(parts, key=lambda p: p.name)  # parts are sorted by name: part i is the i-th of these
    expected = sum(relative_mean(p, FRAME_1D, u, part_draws(theta, i, p)) for i, p in enumerate(ordered, start=1))
    assert torch.allclose(relative_mean(h, FRAME_1D, u, theta), expected, rtol=1e-12, atol=1e-12)
    # and in physical units, straight through the mean functions
    x = FRAME_1D.lo[0] + u * FRAME_1D.span[0]
    phys = physical_parameters(h, FRAME_1D, theta)
    direct = sum(
        p.mean(x, {q.name: phys[f"{q.name}_{i}"] for q in p.parameters}) for i, p in enumerate(ordered, start=1)
    )
    assert torch.allclose(h.mean(x, phys), direct, rtol=1e-12, atol=1e-12)


def test_a_sum_derives_suffixed_parameters_with_their_parts_units_bounds_and_priors():
    a, b = BUILTIN["sigmoid"], BUILTIN["second-order"]
    h = sum_of([a, b])
    assert h.name == "second-order + sigmoid" and h.depth == 1
    expected = [dataclasses.replace(p, name=f"{p.name}_1") for p in b.parameters]
    expected += [dataclasses.replace(p, name=f"{p.name}_2") for p in a.parameters]
    assert list(h.parameters) == expected
    beta = next(p for p in h.parameters if p.name == "beta_1")
    assert beta.prior == LogNormal(median=0.3, sigma=0.4) and beta.bounds == (0.05, 2.0) and beta.unit == "1"
    assert next(p for p in h.parameters if p.name == "x_c_2").unit == "x"
    assert "x_c_1" in h.formula and "w_2" in h.formula and h.symmetries == ()


@pytest.mark.parametrize("degree", [0, 1, 2])
@pytest.mark.parametrize("axes", [1, 2])
def test_a_background_adds_a_polynomial_in_the_unit_coordinates(degree, axes):
    child = BUILTIN["second-order"] if axes == 1 else BOUNDARIES[0]
    frame = FRAME_1D if axes == 1 else FRAME_2D
    h = with_background(child, degree, axes)
    theta = draws(h)
    u = points(axes)
    expected = relative_mean(child, frame, u, {p.name: theta[p.name] for p in child.free})
    # b_k in units of the data scale, t the unit coordinate of axis 0 (and s of axis 1): relative b_k t^k
    expected = expected + theta["b0"] + sum(theta[f"b{k}"] * u[:, 0] ** k for k in range(1, degree + 1))
    if axes == 2:
        expected = expected + sum(theta[f"g{k}"] * u[:, 1] ** k for k in range(1, degree + 1))
    assert torch.allclose(relative_mean(h, frame, u, theta), expected, rtol=1e-12, atol=1e-12)
    added = [p for p in h.free if p.name not in {q.name for q in child.free}]
    names = ["b0"] + [f"b{k}" for k in range(1, degree + 1)] + ([f"g{k}" for k in range(1, degree + 1)] * (axes == 2))
    assert [p.name for p in added] == names
    assert all(p.unit == "y" and p.bounds == (-1.5, 1.5) and p.prior == Uniform() for p in added)
    assert h.name == f"{child.name} + {['constant', 'linear', 'quadratic'][degree]} background"
    # a declared law (a built-in boundary law too) is a leaf of the tree, by name
    assert h.depth == 1 and h.tree == {"background": {"law": child.name}, "degree": degree, "axes": axes}


@pytest.mark.parametrize("name", ["second-order", "sigmoid", "curie-weiss", "linear"])
def test_along_an_axis_is_the_1d_law_of_that_axis(name):
    child = BUILTIN[name]
    h = along(child, 1)
    theta = draws(h)
    u = points(2)
    frame_axis1 = Frame(lo=FRAME_2D.lo[1:], span=FRAME_2D.span[1:], s=FRAME_2D.s)
    expected = relative_mean(child, frame_axis1, u[:, 1:2], theta)
    assert torch.allclose(relative_mean(h, FRAME_2D, u, theta), expected, rtol=1e-12, atol=1e-12)
    for p, q in zip(h.parameters, child.parameters):  # locations, widths, slopes refer to axis 1 now
        assert (p.name, p.bounds, p.prior, p.unit, p.fixed) == (q.name, q.bounds, q.prior, q.unit, q.fixed)
        assert p.axis == (1 if p.unit not in ("1", "y") else 0)
    assert h.depth == 1 and h.tree == {"along": {"law": name}, "axis": 1}


@pytest.mark.parametrize("name", ["second-order", "first-order"])
def test_a_direction_is_the_1d_law_along_the_projected_coordinate(name):
    child = BUILTIN[name]
    h = direction(child)
    theta = draws(h)
    u = points(2)
    t = theta["theta"]
    projected = (u[:, 0] * torch.cos(t) + u[:, 1] * torch.sin(t)).unsqueeze(-1)  # S x n x 1, unit of axis 0
    frame_axis0 = Frame(lo=FRAME_2D.lo[:1], span=FRAME_2D.span[:1], s=FRAME_2D.s)
    expected = relative_mean(child, frame_axis0, projected, {p.name: theta[p.name] for p in child.free})
    assert torch.allclose(relative_mean(h, FRAME_2D, u, theta), expected, rtol=1e-12, atol=1e-12)
    extra = next(p for p in h.free if p.name == "theta")
    assert extra.bounds == (-math.pi / 2, math.pi / 2) and extra.unit == "1"
    assert h.depth == 1 and h.tree == {"direction": {"law": name}}


def test_a_boundary_law_is_its_child_in_the_reduced_variable_with_a_polynomial_critical_line():
    child = BUILTIN["second-order"]
    for degree in (1, 2):
        h = boundary(child, axis=1, of=0, degree=degree)
        theta = draws(h)
        u = points(2, n=200)
        x = torch.tensor(FRAME_2D.lo, dtype=DTYPE) + u * torch.tensor(FRAME_2D.span, dtype=DTYPE)
        phys = physical_parameters(h, FRAME_2D, theta)
        s = u[:, 0]  # tc_lo, tc_span: the composition axis's lower edge and span
        tc = phys["tc0"] + sum(phys[f"tc{k}"] * s**k for k in range(1, degree + 1))
        tau = x[:, 1] / tc
        # the child at tau with x_c = 1, its other parameters as fitted (span fixed 1 in tau units)
        params = {p.name: phys[p.name] for p in h.parameters if p.name in {q.name for q in child.parameters}}
        expected = child.mean(tau.unsqueeze(-1), {**params, "x_c": torch.ones_like(tau)})
        got = h.mean(x, phys)
        ok = tc > 1e-3 * FRAME_2D.span[1]  # below that T_c is clamped (documented)
        assert ok.float().mean() > 0.5
        assert torch.allclose(got[ok], expected[ok], rtol=1e-10, atol=1e-12)
        # and the closed form A (1 - tau)^beta below the line, 0 well above it
        below = ok & (tau < 0.99)
        closed = phys["A"] * (1 - tau).clamp_min(0) ** phys["beta"]
        assert torch.allclose(got[below], closed[below], rtol=1e-8)
        assert got[ok & (tau > 1.05)].abs().max() < 1e-8
    assert [p.name for p in h.free] == ["A", "beta", "tc0", "tc1", "tc2"]
    tc0, tc1 = (next(p for p in h.parameters if p.name == n) for n in ("tc0", "tc1"))
    assert (tc0.unit, tc0.axis, tc0.bounds) == ("x", 1, (0.0, 1.5))
    assert (tc1.unit, tc1.axis, tc1.bounds) == ("dx", 1, (-1.5, 1.5))
    span = next(p for p in h.parameters if p.name == "span")
    assert (span.unit, span.fixed) == ("1", 1.0)  # a width of the space becomes a width in tau
    assert next(p for p in h.parameters if p.name == "beta").prior == LogNormal(median=0.3, sigma=0.4)


def test_raising_a_boundary_is_one_step_to_a_quadratic_critical_line():
    base = PHASE_BOUNDARIES["sigmoid boundary"]
    raised = raise_degree(base)
    assert raised.depth == 1 and raised.tree == {"raise": {"law": "sigmoid boundary"}}
    assert raised.name == "sigmoid boundary, x_c quadratic in axis 0"
    quadratic = boundary(BUILTIN["sigmoid"], axis=1, of=0, degree=2)
    assert [p.name for p in raised.parameters] == [p.name for p in quadratic.parameters]
    theta = draws(raised)
    u = points(2)
    assert torch.equal(relative_mean(raised, FRAME_2D, u, theta), relative_mean(quadratic, FRAME_2D, u, theta))
    with pytest.raises(ConfigError):
        raise_degree(raised)
    with pytest.raises(ConfigError):
        raise_degree(BUILTIN["sigmoid"])


# ------------------------------------------------------------------------------------------ canonical forms


def test_a_sum_is_one_law_whatever_the_order_of_its_parts():
    a, b, c = BUILTIN["sigmoid"], BUILTIN["second-order"], BUILTIN["first-order"]
    ab, ba = sum_of([a, b]), sum_of([b, a])
    assert (ab.name, key(ab.tree), ab.parameters) == (ba.name, key(ba.tree), ba.parameters)
    nested = [sum_of([sum_of([a, b]), c]), sum_of([a, sum_of([c, b])]), sum_of([c, b, a])]
    assert len({(h.name, key(h.tree)) for h in nested}) == 1
    flat = nested[0]
    assert flat.tree == {"sum": [{"law": "first-order"}, {"law": "second-order"}, {"law": "sigmoid"}]}
    assert flat.depth == 2  # a three-part sum: two composition steps
    assert with_background(flat, 1).depth == 3


def test_sums_and_backgrounds_refuse_what_is_a_background_already():
    so = BUILTIN["second-order"]
    for background_law in ("linear", "constant"):
        with pytest.raises(ConfigError, match="background"):
            sum_of([so, BUILTIN[background_law]])
        with pytest.raises(ConfigError, match="background"):
            with_background(BUILTIN[background_law], 1)
    with pytest.raises(ConfigError, match="background goes on the whole sum"):
        sum_of([with_background(so, 1), BUILTIN["sigmoid"]])
    with pytest.raises(ConfigError, match="already has a background"):
        with_background(with_background(so, 0), 1)
    with pytest.raises(ConfigError):
        sum_of([so])
    with pytest.raises(ConfigError):
        with_background(so, 3)
    with pytest.raises(ConfigError):
        boundary(BUILTIN["linear"])
    with pytest.raises(ConfigError):
        along(sum_of([so, so]), 1)


def _walk(tree: dict, depth: int = 0):
    """Every (operation, depth below the root) in a tree."""
    op = next(k for k in tree if k in ("law", "sum", "background", "along", "direction", "boundary", "raise"))
    yield op, depth
    if op == "sum":
        for t in tree["sum"]:
            yield from _walk(t, depth + 1)
    elif op != "law":
        yield from _walk(tree[op], depth + 1)


@pytest.mark.parametrize(
    "bases,dims", [(SIX, 1), (BOUNDARIES, 2), (TRANSITIONS, 2)], ids=["six-1d", "boundaries-2d", "laws-2d"]
)
def test_the_enumeration_is_canonical_deduplicated_and_deterministic(bases, dims):
    found = enumerate_compositions(bases, dims, 2)
    keys = [key(h.tree) for h in found]
    assert len(set(keys)) == len(keys) and len({h.name for h in found}) == len(found)
    assert not {key({"law": b.name}) for b in bases} & set(keys)  # the bases themselves are not proposed
    again = enumerate_compositions(list(reversed(bases)), dims, 2)
    assert [h.name for h in again] == [h.name for h in found] and [key(h.tree) for h in again] == keys
    assert [(h.depth, key(h.tree)) for h in found] == sorted((h.depth, key(h.tree)) for h in found)
    for h in found:
        ops = list(_walk(h.tree))
        assert all(depth == 0 for op, depth in ops if op == "background"), h.name  # a background only on top
        assert all(op != "sum" or depth == 0 or ops[0][0] == "background" for op, depth in ops), h.name
        for op, depth in ops:
            if op == "sum":  # flattened: no sum directly inside a sum; no linear/constant in a sum
                sub = h.tree["sum"] if depth == 0 else h.tree["background"]["sum"]
                assert all("sum" not in t for t in sub) and all(t.get("law") not in ("linear", "constant") for t in sub)
                assert [key(t) for t in sub] == sorted(key(t) for t in sub)
        assert 1 <= h.depth <= 2


def test_the_counts_at_depth_one_and_two_are_what_the_grammar_allows():
    # 1-D, six laws, four with a critical point (curie-weiss's theta is located too).
    # depth 1: a background of degree 0-2 on each located law (4 x 3), a sum of two (4 multichoose 2 = 10)
    # depth 2: a background on each two-part sum (10 x 3), a sum of three (4 multichoose 3 = 20)
    located = len(LOCATED_1D)
    pairs, triples = comb(located + 1, 2), comb(located + 2, 3)
    assert depth_counts(enumerate_compositions(SIX, 1, 1)) == {1: located * 3 + pairs}
    assert depth_counts(enumerate_compositions(SIX, 1, 2)) == {1: located * 3 + pairs, 2: pairs * 3 + triples}
    assert (located * 3 + pairs, pairs * 3 + triples) == (22, 50)
    # 2-D, the three boundary laws: depth 1 adds to the backgrounds and sums the raise of T_c (3);
    # depth 2: backgrounds on the 6 sums and the 3 raised laws, sums of three, a law + a raised law (3 x 3)
    m = len(BOUNDARIES)
    pairs, triples = comb(m + 1, 2), comb(m + 2, 3)
    depth1 = m * 3 + m + pairs
    depth2 = pairs * 3 + m * 3 + triples + m * m
    assert depth_counts(enumerate_compositions(BOUNDARIES, 2, 1)) == {1: depth1}
    assert depth_counts(enumerate_compositions(BOUNDARIES, 2, 2)) == {1: depth1, 2: depth2}
    assert (depth1, depth2) == (18, 46)
    assert enumerate_compositions(SIX, 1, 0) == []


def test_the_complexity_prior_shares_cost_to_the_depth_among_the_laws_of_that_depth():
    found = enumerate_compositions(SIX, 1, 2)
    counts = depth_counts(found)
    for cost in (0.1, 0.5):
        for depth in (1, 2):
            total = sum(prior_weight(h, counts, cost) for h in found if h.depth == depth)
            assert total == pytest.approx(cost**depth, rel=1e-12)
        assert prior_weight(BUILTIN["second-order"], counts, cost) == 1.0
        assert prior_weight(PHASE_BOUNDARIES["sigmoid boundary"], counts, cost) == 1.0  # a declared 2-D law
    h = found[0]
    assert prior_weight(h, counts, 0.1) == pytest.approx(0.1 / 22)
    # log(M / cost): the evidence a depth-1 law must gain over a declared one, ~5.4 nats for 22 of them
    assert -math.log(prior_weight(h, counts, 0.1)) == pytest.approx(math.log(220))


# ------------------------------------------------------------------------------------------ build


@pytest.mark.parametrize(
    "bases,dims",
    [(SIX, 1), (BOUNDARIES, 2), (TRANSITIONS, 2)],
    ids=["six-1d", "boundaries-2d", "laws-2d"],
)
def test_build_round_trips_every_enumerated_composition(bases, dims):
    frame = FRAME_1D if dims == 1 else FRAME_2D
    u = points(dims, n=20)
    for h in enumerate_compositions(bases, dims, 2):
        rebuilt = build(h.tree, resolve_hypothesis)
        assert (rebuilt.name, rebuilt.depth, key(rebuilt.tree)) == (h.name, h.depth, key(h.tree))
        assert rebuilt.parameters == h.parameters and rebuilt.symmetries == h.symmetries
        assert rebuilt.formula == h.formula
        theta = draws(h, 16)
        assert torch.equal(relative_mean(rebuilt, frame, u, theta), relative_mean(h, frame, u, theta)), h.name


def test_build_refuses_an_unknown_tree():
    with pytest.raises(ConfigError, match="unknown composition"):
        build({"product": []}, resolve_hypothesis)
    with pytest.raises(ConfigError):
        build({}, resolve_hypothesis)


# ------------------------------------------------------------------------------------------ phase-2d


def _law_parameters(sim: Phase2D, degree: int) -> dict[str, torch.Tensor]:
    """The simulator's parameters as the boundary law's relative ones: ``T_c(x) = tc0 + tc1 x + tc2 x^2``
    in the law's unit coordinate ``s = (x - x_lo) / w`` (``w = x_hi - x_lo``) is
    ``(tc0 + tc1 x_lo + tc2 x_lo^2) + (tc1 + 2 tc2 x_lo) w s + tc2 w^2 s^2``, each coefficient relative to
    the temperature axis (``tc0`` a location: ``(. - t_lo) / (t_hi - t_lo)``; the others widths:
    ``/ (t_hi - t_lo)``); the amplitude relative to the data scale (1 here)."""
    w, t_span = sim.x_hi - sim.x_lo, sim.t_hi - sim.t_lo
    phys = [
        sim.tc0 + sim.tc1 * sim.x_lo + sim.tc2 * sim.x_lo**2,
        (sim.tc1 + 2 * sim.tc2 * sim.x_lo) * w,
        sim.tc2 * w**2,
    ]
    rel = {"tc0": (phys[0] - sim.t_lo) / t_span, "tc1": phys[1] / t_span}
    if degree == 2:
        rel["tc2"] = phys[2] / t_span
    rel["A"] = sim.amplitude
    if sim.law == "second-order":
        rel["beta"] = sim.beta
    if sim.law == "sigmoid":
        rel["w"] = sim.width
    return {k: torch.tensor(v, dtype=DTYPE) for k, v in rel.items()}


@pytest.mark.parametrize("law", ["second-order", "first-order", "sigmoid"])
@pytest.mark.parametrize("tc2", [0.0, 150.0])
def test_the_boundary_laws_reproduce_the_phase2d_simulators_truth(law, tc2):
    sim = Phase2D(law=law, tc0=600.0, tc1=-400.0, tc2=tc2, beta=0.35, amplitude=1.0, width=0.03,
                  x_lo=0.1, x_hi=0.9, t_lo=100.0, t_hi=700.0, grid=41)  # fmt: skip
    declared = PHASE_BOUNDARIES[f"{law} boundary"]
    h = raise_degree(declared) if tc2 else declared
    x = sim.candidates()
    # the laws' kinks are rounded (first-order's jump over 2e-5 of T / T_c, second-order's over beta * 1e-3;
    # hypotheses/library.py): compare where the rounding is below 1e-12 of A (0.03 = 85 widths at beta 0.35)
    tau = x[:, 1] / sim.critical_temperature(x[:, 0])
    x = x[np.abs(tau - 1) > {"first-order": 1e-3, "second-order": 0.03, "sigmoid": 0.0}[law]]
    assert len(x) > 1500
    frame = Frame(lo=(sim.x_lo, sim.t_lo), span=(sim.x_hi - sim.x_lo, sim.t_hi - sim.t_lo), s=1.0)
    u = (torch.tensor(x, dtype=DTYPE) - torch.tensor(frame.lo, dtype=DTYPE)) / torch.tensor(frame.span, dtype=DTYPE)
    got = relative_mean(h, frame, u, _law_parameters(sim, 2 if tc2 else 1)).numpy()
    np.testing.assert_allclose(got, sim.truth(x), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------ range checks


@pytest.mark.parametrize("h", enumerate_compositions(SIX, 1, 1), ids=lambda h: h.name)
def test_every_depth_one_composition_is_finite_over_its_range_on_the_unit_interval(h):
    check(h, lo=(0.0,), hi=(1.0,))


_BOUNDARY_DEPTH_ONE = enumerate_compositions(BOUNDARIES, 2, 1)
_QUICK = {h.name for h in _BOUNDARY_DEPTH_ONE if len(h.free) <= 6}


@pytest.mark.parametrize(
    "h",
    [h if h.name in _QUICK else pytest.param(h, marks=pytest.mark.slow) for h in _BOUNDARY_DEPTH_ONE],
    ids=lambda h: h.name,
)
def test_every_depth_one_boundary_composition_is_finite_over_its_range_on_the_phase2d_box(h):
    check(h, lo=PHASE_BOX[0], hi=PHASE_BOX[1], candidates=torch.tensor(Phase2D().candidates()))


# ------------------------------------------------------------------------------------------ symmetry

TWO = sum_of([BUILTIN["second-order"], BUILTIN["second-order"]])


def test_two_copies_of_a_law_are_ordered_by_their_critical_points():
    (sym,) = TWO.symmetries
    assert sym.keys == ("x_c_1", "x_c_2")
    assert sym.groups == (
        ("A_1", "x_c_1", "beta_1", "delta_1", "span_1"),
        ("A_2", "x_c_2", "beta_2", "delta_2", "span_2"),
    )
    theta = draws(TWO, 512, seed=3)
    ordered, unordered = log_prior(TWO, theta), log_prior(TWO, theta, ordered=False)
    inside = (theta["x_c_1"] <= theta["x_c_2"]).squeeze(-1)
    assert 100 < int(inside.sum()) < 412  # both halves visited
    assert torch.isneginf(ordered.squeeze(-1)[~inside]).all()
    assert torch.allclose(ordered.squeeze(-1)[inside], unordered.squeeze(-1)[inside] + math.log(2), rtol=0, atol=1e-12)
    assert torch.isfinite(unordered).all()
    three = sum_of([BUILTIN["sigmoid"]] * 3)
    assert three.symmetries[0].log_volume() == pytest.approx(math.log(6))


def test_canonical_swaps_whole_parts_into_the_ordered_region_and_keeps_the_mean():
    rng = random.Random(0)
    u = points(1)
    for _ in range(20):
        values = {p.name: torch.tensor(rng.uniform(*p.bounds), dtype=DTYPE) for p in TWO.free}
        out = canonical(TWO, values)
        assert float(out["x_c_1"]) <= float(out["x_c_2"])
        swapped = float(values["x_c_1"]) > float(values["x_c_2"])
        for name in ("A", "x_c", "beta"):
            first, second = (
                (values[f"{name}_2"], values[f"{name}_1"]) if swapped else (values[f"{name}_1"], values[f"{name}_2"])
            )
            assert torch.equal(out[f"{name}_1"], first) and torch.equal(out[f"{name}_2"], second)
        assert torch.allclose(relative_mean(TWO, FRAME_1D, u, out), relative_mean(TWO, FRAME_1D, u, values), rtol=1e-13)
    mixed = sum_of([BUILTIN["second-order"], BUILTIN["sigmoid"]])  # different laws: nothing to order
    values = {p.name: torch.tensor(sum(p.bounds) / 2, dtype=DTYPE) for p in mixed.free}
    values["x_c_1"] = torch.tensor(0.9, dtype=DTYPE)
    assert canonical(mixed, values) == values


def test_canonical_orders_a_three_part_sum():
    three = sum_of([BUILTIN["first-order"]] * 3)
    for perm in itertools.permutations([0.2, 0.5, 0.8]):
        values = {}
        for i, xc in enumerate(perm, start=1):
            values[f"x_c_{i}"] = torch.tensor(xc, dtype=DTYPE)
            values[f"A_{i}"] = torch.tensor(xc + 0.1, dtype=DTYPE)  # tags the part
        out = canonical(three, values)
        assert [float(out[f"x_c_{i}"]) for i in (1, 2, 3)] == [0.2, 0.5, 0.8]
        assert [float(out[f"A_{i}"]) for i in (1, 2, 3)] == pytest.approx([0.3, 0.6, 0.9])


def test_a_2d_space_composes_every_1d_law_even_one_with_a_parameter_named_like_an_operations():
    """curie-weiss has a ``theta``, as the direction operation does: that one composition is left out, the
    rest are made (a campaign over a 2-D space that declared curie-weiss crashed on its first round)."""
    laws = [BUILTIN[n] for n in ("second-order", "curie-weiss")]
    names = {h.name for h in enumerate_compositions(laws, 2, 1)}
    assert "curie-weiss along a direction" not in names
    assert {"curie-weiss along axis 1", "second-order along a direction"} <= names


def test_a_composition_that_computes_a_declared_law_or_another_composition_is_made_once():
    """With both second-order and its built-in boundary declared, the boundary built from second-order is the
    declared law again, and its quadratic raise and the declared one's raise are one law: each structure is
    proposed once (two copies would split one probability between them)."""
    laws = [BUILTIN["second-order"], BUILTIN["second-order boundary"]]
    found = enumerate_compositions(laws, 2, 2)
    leaves = {b.name: b.tree for b in laws if b.tree is not None}
    keys = [structure(h.tree, leaves) for h in found]
    assert len({str(sorted(k.items())) for k in keys}) == len(keys)
    names = {h.name for h in found}
    assert "second-order in axis 1, x_c linear in axis 0" not in names  # the declared boundary law
    quadratic = [h.name for h in found if "quadratic in axis 0" in h.name and "+" not in h.name]
    assert len(quadratic) == 1
