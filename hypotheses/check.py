"""Is a hypothesis numerically sound over its whole declared range?

A fit explores every parameter value inside the bounds and meets every point
of the space; a mean that is NaN or infinite there, or whose gradient is,
breaks the fit (and, silently, every later one) the first time it gets there.
:func:`check` evaluates the mean and its gradient with respect to each free
parameter, in the relative frame the fits use, at

* every corner of the parameter box (each free parameter at a bound), and
  each parameter at each bound with the others at Sobol draws;
* Sobol draws over the box;

each at a grid of points of the space that includes its edges (every axis at
0, 1 and between; the candidate points themselves for a finite set), and
raises :class:`~abduce.hypotheses.errors.HypothesisError` naming the first
parameter values and point where something is not finite. A campaign runs it
on each of its hypotheses before it measures anything.

Example:
    >>> from abduce.hypotheses import check
    >>> from abduce.hypotheses.library import BUILTIN
    >>> check(BUILTIN["second-order"], lo=(0.0,), hi=(1.0,))
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from abduce.hypotheses.declaration import Frame, Hypothesis
from abduce.hypotheses.errors import HypothesisError
from abduce.hypotheses.model import DTYPE, relative_mean

_CORNER_LIMIT = 10  # free parameters up to which every corner of the box is visited (2^10 corners)


def parameter_draws(hypothesis: Hypothesis, draws: int = 256, seed: int = 0) -> Tensor:
    """``S x k`` relative values of the ``k`` free parameters: corners, edges and Sobol draws of the box."""
    free = hypothesis.free
    k = len(free)
    if k == 0:
        return torch.zeros(1, 0, dtype=DTYPE)
    lo = torch.tensor([p.bounds[0] for p in free], dtype=DTYPE)
    hi = torch.tensor([p.bounds[1] for p in free], dtype=DTYPE)
    sobol = torch.quasirandom.SobolEngine(k, scramble=True, seed=seed).draw(draws, dtype=DTYPE)
    inner = lo + sobol * (hi - lo)
    rows = [inner]
    if k <= _CORNER_LIMIT:
        rows.append(torch.tensor(list(itertools.product(*[(p.bounds[0], p.bounds[1]) for p in free])), dtype=DTYPE))
    for j in range(k):  # each parameter at each bound, the others inside
        for bound in (lo[j], hi[j]):
            edge = inner[: max(8, draws // 16)].clone()
            edge[:, j] = bound
            rows.append(edge)
    return torch.cat(rows)


def space_points(
    lo: Sequence[float], hi: Sequence[float], candidates: Tensor | None = None, per_axis: int = 65
) -> Tensor:
    """``n x d`` relative points: a grid with the edges (at most ~4,000 points), plus the candidates if any."""
    d = len(lo)
    per = max(3, min(per_axis, int(round(4096 ** (1 / d)))))
    axes = [torch.linspace(0.0, 1.0, per, dtype=DTYPE)] * d
    grid = torch.cartesian_prod(*axes).reshape(-1, d)
    if candidates is None:
        return grid
    lo_t, hi_t = torch.tensor(lo, dtype=DTYPE), torch.tensor(hi, dtype=DTYPE)
    u = (torch.as_tensor(candidates, dtype=DTYPE) - lo_t) / (hi_t - lo_t)
    return torch.cat([grid, u])


def check(
    hypothesis: Hypothesis,
    space=None,
    *,
    lo: Sequence[float] | None = None,
    hi: Sequence[float] | None = None,
    candidates: Tensor | None = None,
    draws: int = 256,
    seed: int = 0,
) -> None:
    """Raise unless the mean and its gradients are finite over the parameter box and the space.

    Args:
        hypothesis: the declaration to check.
        space: an :class:`abduce.controller.core.space.Space` (its ``lo``, ``hi`` and candidates), or
            give ``lo`` and ``hi`` (``d`` bounds each, physical units) and optionally ``candidates``
            (``N x d``) instead.
        draws: Sobol draws of the parameter box (corners and edges come on top).
        seed: the Sobol scrambling seed.

    Raises:
        HypothesisError: the first parameter values and point where the value, or the gradient with
            respect to a named free parameter, is NaN or infinite.
    """
    if space is not None:
        lo, hi, candidates = space.lo, space.hi, getattr(space, "candidates", None)
    if lo is None or hi is None:
        raise TypeError("check() needs a space or both lo and hi")
    frame = Frame(lo=tuple(float(v) for v in lo), span=tuple(float(b - a) for a, b in zip(lo, hi)), s=1.0)
    u = space_points(lo, hi, candidates)
    free = hypothesis.free
    phi = parameter_draws(hypothesis, draws, seed)
    for chunk in torch.split(phi, 64):
        columns = [chunk[:, j : j + 1].clone().requires_grad_(True) for j in range(len(free))]
        rel = {p.name: c for p, c in zip(free, columns)}
        m = relative_mean(hypothesis, frame, u, rel).expand(len(chunk), len(u))  # S x n
        bad = ~torch.isfinite(m)
        if bad.any():
            _fail(hypothesis, chunk, u, bad, "value")
        if not columns:
            continue
        # Row s of m depends on draw s only, so one backward pass of the sum gives, per draw, the sum over
        # the points of its gradient: NaN (or inf) there iff some point's gradient is. (A NaN at one point
        # also poisons the others' through the shared parameter: 0 * inf in a backward pass.) Only then is
        # the point found, each point of that draw on its own.
        grads = torch.autograd.grad(m.sum(), columns, retain_graph=True)
        for j, p in enumerate(free):
            rows = (~torch.isfinite(grads[j][:, 0])).nonzero()
            if len(rows):
                s = int(rows[0])
                draw = {q.name: c[s : s + 1].detach() for q, c in zip(free, columns)}
                bad = torch.zeros_like(m, dtype=torch.bool)
                bad[s, _first_bad_point(hypothesis, frame, u, draw, p.name)] = True
                _fail(hypothesis, chunk, u, bad, f"gradient of {p.name}")


def _first_bad_point(hypothesis: Hypothesis, frame: Frame, u: Tensor, draw: dict[str, Tensor], name: str) -> int:
    """The first point whose own gradient in ``name`` is not finite (the largest, if only their sum is not)."""
    largest, where = -1.0, 0
    for i in range(len(u)):
        rel = {k: v.clone().requires_grad_(k == name) for k, v in draw.items()}
        (g,) = torch.autograd.grad(relative_mean(hypothesis, frame, u[i : i + 1], rel).sum(), rel[name])
        if not torch.isfinite(g).all():
            return i
        if float(g.abs().max()) > largest:
            largest, where = float(g.abs().max()), i
    return where


def _fail(hypothesis: Hypothesis, phi: Tensor, u: Tensor, bad: Tensor, what: str) -> None:
    s, i = (int(v) for v in bad.nonzero()[0])
    values = {p.name: float(phi[s, j]) for j, p in enumerate(hypothesis.free)}
    raise HypothesisError(hypothesis.name, values, tuple(float(v) for v in u[i]), what)


_CHECKED: set = set()


def check_once(hypothesis: Hypothesis, lo: Sequence[float], hi: Sequence[float], candidates: Tensor | None) -> None:
    """:func:`check` of ``hypothesis`` on a space (its box and, for a finite set, its ``N x d``
    candidates), once per process for each pair; past 4096 candidates on an even subset of them
    (the grid covers the box between).

    Raises:
        HypothesisError: the law or a gradient is not finite somewhere in its range (names where).
    """
    if candidates is not None and len(candidates) > 4096:
        candidates = candidates[torch.linspace(0, len(candidates) - 1, 4096).long()]
    digest = None if candidates is None else hashlib.sha256(candidates.cpu().numpy().tobytes()).hexdigest()
    key = (hypothesis, tuple(lo), tuple(hi), digest)
    if key in _CHECKED:
        return
    check(hypothesis, lo=lo, hi=hi, candidates=candidates)
    _CHECKED.add(key)
