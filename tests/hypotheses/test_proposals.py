"""The screen of composed hypotheses (hypotheses/proposals.py) and the evidence of a law with interchangeable
parts: its mirror modes counted once, not zero times or twice.

Oracles: the simulator's noise-free two-transition truth (which composition made it is known), a 2-D
quadrature of the evidence over the unordered prior, and the same law with its symmetry removed (whose
sampler, centred on one of two far-apart mirror modes, finds half the evidence).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from abduce.hypotheses.declaration import Hypothesis, KernelPriors, Parameter
from abduce.hypotheses.evidence import log_evidence
from abduce.hypotheses.fitting import FitProblem, FitSettings, fit_hypothesis
from abduce.hypotheses.grammar import enumerate_compositions, sum_of
from abduce.hypotheses.library import BUILTIN
from abduce.hypotheses.model import DTYPE, relative_mean
from abduce.hypotheses.proposals import screen
from abduce.simulators.transition1d import Transition1D

LAWS = [BUILTIN[n] for n in ("second-order", "first-order", "sigmoid", "linear")]
CANDIDATES = LAWS + enumerate_compositions(LAWS, 1, 1)
NAMES = [h.name for h in CANDIDATES]
TRUE = "second-order + second-order"
# one transition cannot make two kinks: the declared laws, one law on a constant, two jumps for two power laws
WRONG = ("second-order", "first-order", "sigmoid", "linear", "second-order + constant background",
         "first-order + constant background", "sigmoid + constant background", "first-order + first-order")  # fmt: skip


def two_transitions(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` equally spaced noise-free points of two second-order transitions (x_c 0.75 and 0.3, beta 0.3)."""
    sim = Transition1D(law="two-transitions", x_c=0.75, x_c2=0.3, beta=0.3, grid=0, seed=0)
    x = np.linspace(0.0, 1.0, n)[:, None]
    return torch.tensor(x, dtype=DTYPE), torch.tensor(sim.truth(x), dtype=DTYPE)


@pytest.mark.parametrize("seed", range(5))
def test_the_screen_ranks_the_true_composition_above_clearly_wrong_ones(seed):
    u, y = two_transitions()
    scores = dict(zip(NAMES, screen(CANDIDATES, u, y, (0.0,), (1.0,), KernelPriors(), draws=4096, seed=seed)))
    assert all(math.isfinite(v) or v == -math.inf for v in scores.values())
    assert scores[TRUE] > max(scores[w] for w in WRONG) + 2.0
    composed = sorted(NAMES[len(LAWS) :], key=lambda name: -scores[name])
    assert composed.index(TRUE) < 6  # among the propose_fits (6) a round fits in full


def test_the_screen_is_deterministic_for_a_seed():
    u, y = two_transitions(20)
    first = screen(CANDIDATES, u, y, (0.0,), (1.0,), KernelPriors(), draws=256, seed=7)
    assert first == screen(CANDIDATES, u, y, (0.0,), (1.0,), KernelPriors(), draws=256, seed=7)
    assert first != screen(CANDIDATES, u, y, (0.0,), (1.0,), KernelPriors(), draws=256, seed=8)
    assert screen([], u, y, (0.0,), (1.0,), KernelPriors()) == []


# ------------------------------------------------------------------------------------------ mirror modes

# A step of fixed height and width, one free parameter: two of them are a law with two free parameters,
# x_c_1 <= x_c_2, whose evidence a 2-D quadrature gives exactly.
STEP = Hypothesis(
    name="step",
    mean=lambda x, p: p["A"] * torch.sigmoid((p["x_c"] - x[..., 0]) / p["w"]),
    parameters=(
        Parameter("A", unit="1", fixed=0.45),
        Parameter("x_c", bounds=(0.0, 1.0), unit="x"),
        Parameter("w", bounds=(1e-3, 0.25), unit="dx", fixed=0.04),
    ),
)


def _quadrature_log_z(model, u: torch.Tensor, y: torch.Tensor, points: int = 801) -> float:
    """log of the integral of the likelihood (kernel at the fit) over the unordered prior, uniform on the
    unit square of (x_c_1, x_c_2): a trapezoid rule, in physical units (``- n log s``)."""
    frame = model.frame
    v = y / frame.s
    with torch.no_grad():
        k = model.covar_module(u).to_dense() + model.likelihood.noise * torch.eye(len(u), dtype=DTYPE)
        chol = torch.linalg.cholesky(k)
        grid = torch.linspace(0.0, 1.0, points, dtype=DTYPE)
        a, b = torch.cartesian_prod(grid, grid).unbind(-1)
        log_l = []
        for a_part, b_part in zip(a.split(100_000), b.split(100_000)):
            means = relative_mean(
                model.hypothesis, frame, u, {"x_c_1": a_part.unsqueeze(-1), "x_c_2": b_part.unsqueeze(-1)}
            )
            w = torch.linalg.solve_triangular(chol, (v - means).T, upper=False)
            log_l.append(-0.5 * (w**2).sum(0) - chol.diagonal().log().sum() - 0.5 * len(u) * math.log(2 * math.pi))
        log_l = torch.cat(log_l).reshape(points, points)
        h = 1.0 / (points - 1)
        weights = torch.ones(points, dtype=DTYPE)
        weights[0] = weights[-1] = 0.5
        log_cell = torch.log(weights).unsqueeze(0) + torch.log(weights).unsqueeze(1) + 2 * math.log(h)
        return float(torch.logsumexp((log_l + log_cell).reshape(-1), 0)) - len(u) * math.log(frame.s)


def test_the_evidence_of_two_interchangeable_parts_counts_the_mirror_mode_once():
    """Z under the ordered prior (2 on x_c_1 <= x_c_2) equals Z under the unordered one (the likelihood is
    symmetric): the quadrature's. Counting the mirror mode zero times or twice is log 2 = 0.69 off."""
    h = sum_of([STEP, STEP])
    assert [p.name for p in h.free] == ["x_c_1", "x_c_2"] and h.symmetries
    x = torch.linspace(0.0, 1.0, 14, dtype=DTYPE).unsqueeze(-1)
    g = torch.Generator().manual_seed(0)
    truth = 0.45 * torch.sigmoid((0.3 - x[:, 0]) / 0.04) + 0.45 * torch.sigmoid((0.7 - x[:, 0]) / 0.04)
    y = truth + 0.05 * torch.randn(len(x), generator=g, dtype=DTYPE)
    model = fit_hypothesis(FitProblem(h, x, y, (0.0,), (1.0,), seed=0), FitSettings()).model(x, y)
    estimate = log_evidence(model, x, y, samples=1024, seed=0).evidence()
    exact = _quadrature_log_z(model, x, y)
    assert estimate.ess > 100
    assert abs(estimate.log_z - exact) < max(3 * estimate.log_z_se, 0.1), (estimate.log_z, exact, estimate.log_z_se)
    assert estimate.mean["x_c_1"] < estimate.mean["x_c_2"]  # the posterior lives in the ordered region


def test_an_unordered_twin_finds_half_the_evidence_of_well_separated_mirror_modes():
    """The built-in "second-order + second-order" on two far-apart transitions: its evidence is the
    unordered twin's (the same law, symmetry removed, sampled about one of its two modes) + log 2."""
    ordered = sum_of([BUILTIN["second-order"], BUILTIN["second-order"]])
    unordered = dataclasses.replace(ordered, symmetries=())
    sim = Transition1D(law="two-transitions", x_c=0.75, x_c2=0.3, beta=0.3, noise=0.02, grid=0, seed=2)
    x = torch.linspace(0.0, 1.0, 24, dtype=DTYPE).unsqueeze(-1)
    y = torch.tensor(sim.measure(x.numpy()), dtype=DTYPE)
    fit = fit_hypothesis(FitProblem(ordered, x, y, (0.0,), (1.0,), seed=0), FitSettings())
    a = log_evidence(fit.model(x, y), x, y, samples=1024, seed=0).evidence()
    twin = dataclasses.replace(fit, hypothesis=unordered, _model=None)
    b = log_evidence(twin.model(x, y), x, y, samples=1024, seed=0).evidence()
    assert a.mean["x_c_1"] == pytest.approx(0.3, abs=0.05) and a.mean["x_c_2"] == pytest.approx(0.75, abs=0.05)
    se = math.hypot(a.log_z_se, b.log_z_se)
    assert abs(a.log_z - (b.log_z + math.log(2))) < max(3 * se, 0.15), (a.log_z, b.log_z, se)
