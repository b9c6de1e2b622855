"""Where a campaign's randomness and its fixed points come from: seeded draws, the points the
posteriors are kept at, and the initial space-filling design.

Every random draw is seeded from ``(seed, step, purpose, index)``, so the same seed and the same
measurements give the same requests, live or replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core.space import DTYPE, Space

_PURPOSES = {
    "design": 1,
    "policy": 2,
    "fit": 3,
    "evidence": 4,
    "optimize": 5,
    "reference": 6,
    "propose": 7,  # abduction: the screen's draws, then the fits and evidence of the screened laws
    "propose-fit": 8,
    "propose-evidence": 9,
}


def rng(seed: int, purpose: str, step: int, index: int = 0, point: int = 0) -> np.random.Generator:
    """The generator for one ``purpose`` (design, policy, fit, evidence, optimize, reference) at ``step``;
    ``point``: the point of a batch (``Campaign.ask(q=...)``) after the first, which keeps the first's draws."""
    return np.random.default_rng([seed, step, _PURPOSES[purpose], index] + ([point] if point else []))


def int_seed(seed: int, purpose: str, step: int, index: int = 0, point: int = 0) -> int:
    """An integer seed drawn from :func:`rng` (for torch and the fits)."""
    return int(rng(seed, purpose, step, index, point).integers(2**31 - 1))


def posterior_points(space: Space, seed: int, reference_size: int, device: torch.device) -> Tensor:
    """``N x d`` unit coordinates the posteriors are kept at: the candidates of a finite space,
    ``reference_size`` scrambled-Sobol points of a box."""
    if space.is_finite:
        return space.to_unit(space.candidates.to(device))  # type: ignore[union-attr]
    sobol = torch.quasirandom.SobolEngine(space.d, scramble=True, seed=int_seed(seed, "reference", 0))
    return sobol.draw(reference_size, dtype=DTYPE).to(device)


def reference_indices(points: Tensor, seed: int, reference_size: int) -> Tensor:
    """Indices of the (at most ``reference_size``) points an integrated variance averages over."""
    n = len(points)
    if n <= reference_size:
        return torch.arange(n, device=points.device)
    gen = torch.Generator().manual_seed(int_seed(seed, "reference", 1))
    return torch.randperm(n, generator=gen)[:reference_size].sort().values.to(points.device)


def initial_design(space: Space, points: Tensor, seed: int, n_init: int) -> list[tuple[float, ...]]:
    """``n_init`` space-filling points: scrambled Sobol, snapped to distinct candidates on a finite set
    (``points``: the candidates' unit coordinates)."""
    sobol = torch.quasirandom.SobolEngine(space.d, scramble=True, seed=int_seed(seed, "design", 0))
    u = sobol.draw(n_init, dtype=DTYPE)
    if not space.is_finite:
        return [tuple(space.from_unit(row).tolist()) for row in u]
    points = points.cpu()
    chosen: list[int] = []
    for row in u:
        dist = ((points - row) ** 2).sum(-1)
        if chosen:
            dist[chosen] = math.inf
        chosen.append(int(torch.argmin(dist)))
    return [tuple(space.candidates[i].tolist()) for i in chosen]  # type: ignore[index]


def nearest_free(
    space: Space, points: Tensor, x: tuple[float, ...], taken: list[int], unit: Callable[[Tensor], Tensor] | None = None
) -> tuple[float, ...]:
    """The candidate nearest ``x`` whose index is not in ``taken`` (measured, failed, or already in the batch);
    ``unit``: physical -> the coordinates ``points`` are in (default ``space.to_unit``; a campaign over several
    channels stretches the channel's, so a point is retried on its own channel)."""
    target = (unit or space.to_unit)(torch.as_tensor([x], dtype=DTYPE, device=points.device))[0]
    dist = ((points - target) ** 2).sum(-1)
    if taken:
        dist[taken] = math.inf
    return tuple(space.candidates[int(torch.argmin(dist))].tolist())  # type: ignore[index]


def next_points(
    space: Space,
    points: Tensor,
    design: list[tuple[float, ...]],
    chosen: list[int],
    failed: set[int],
    taken: list[int],
    unit: Callable[[Tensor], Tensor] | None = None,
) -> tuple[list[tuple[float, ...]], bool]:
    """The design points ``chosen`` (indices into ``design``) for one request, and whether any was moved:
    on a finite space one whose reading failed before (in ``failed``), or whose candidate is ``taken``
    (measured, failed, or earlier in the request), is replaced by its nearest free candidate (``unit``: as
    for :func:`nearest_free`)."""
    xs, retry = [], False
    for j in chosen:
        x = design[j]
        if space.is_finite and (j in failed or space.index_of(x) in taken):
            x, retry = nearest_free(space, points, x, taken, unit), True
        if space.is_finite:
            taken = taken + [space.index_of(x)]
        xs.append(x)
    return xs, retry
