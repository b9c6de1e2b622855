"""The space a campaign measures in: a continuous box, or a finite candidate set, with its axes' names and
units and the name and unit of the value the hypotheses explain (for plots, tables and files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core.quantity import Quantity
from abduce.controller.errors import ConfigError

DTYPE = torch.float64


@dataclass(frozen=True)
class Space:
    """Where measurements can be made.

    Attributes:
        lo, hi: ``d`` lower and upper bounds (for a candidate set, its bounding box).
        candidates: ``N x d`` allowed points, or None for the continuous box.
        names: the ``d`` axis names, for people and files (``x0, x1, ...`` unless given).
        units: the ``d`` axis units (``""``: none declared; ``"1"``: dimensionless).
        explained: the name and unit of the value the hypotheses explain (a channel, or a
            reduction of one); ``y`` with no unit unless given.

    Use :meth:`box` or :meth:`finite` to build one.

    Example:
        >>> s = Space.box([(0.0, 1.0), (100.0, 700.0)], names=["composition", "temperature"], units=["1", "K"])
        >>> [a.label() for a in s.axes]
        ['composition', 'temperature (K)']
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    candidates: Tensor | None = field(default=None, compare=False)
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    explained: Quantity = Quantity("y")

    @classmethod
    def box(
        cls,
        bounds: Sequence[tuple[float, float]],
        names: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        explained: Quantity | None = None,
    ) -> Space:
        """A continuous box, ``bounds = [(lo, hi), ...]`` one pair per axis.

        Raises:
            ConfigError: no axis, empty or infinite bounds, or names/units not one per axis.
        """
        if not bounds:
            raise ConfigError("a space needs at least one axis")
        for i, (lo, hi) in enumerate(bounds):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"axis {i}: bounds ({lo}, {hi}) must be finite with lo < hi")
        return cls(
            lo=tuple(float(b[0]) for b in bounds),
            hi=tuple(float(b[1]) for b in bounds),
            **_labels(len(bounds), names, units, explained),
        )

    @classmethod
    def finite(
        cls,
        points,
        names: Sequence[str] | None = None,
        units: Sequence[str] | None = None,
        explained: Quantity | None = None,
    ) -> Space:
        """A finite candidate set (``N x d`` array-like; e.g. a composition grid or pixel grid).

        Raises:
            ConfigError: fewer than two points, NaN/inf, an axis with one value, or names/units not one per axis.
        """
        pts = torch.as_tensor(points, dtype=DTYPE)
        if pts.ndim == 1:
            pts = pts.unsqueeze(-1)
        if pts.ndim != 2 or len(pts) < 2:
            raise ConfigError(f"candidates must be an N x d array with N >= 2, got shape {tuple(pts.shape)}")
        if not torch.isfinite(pts).all():
            raise ConfigError("candidates contain NaN or inf")
        lo, hi = pts.min(0).values, pts.max(0).values
        if (hi <= lo).any():
            raise ConfigError("every axis of the candidate set must take at least two values")
        return cls(
            lo=tuple(lo.tolist()),
            hi=tuple(hi.tolist()),
            candidates=pts,
            **_labels(pts.shape[1], names, units, explained),
        )

    @property
    def d(self) -> int:
        return len(self.lo)

    @property
    def axes(self) -> tuple[Quantity, ...]:
        """The ``d`` axes as quantities (name and unit), in the order points list their coordinates."""
        units = self.units or ("",) * self.d
        return tuple(Quantity(n, u) for n, u in zip(self.names, units))

    @property
    def span(self) -> tuple[float, ...]:
        return tuple(h - l for l, h in zip(self.lo, self.hi))

    @property
    def is_finite(self) -> bool:
        return self.candidates is not None

    def to_unit(self, x: Tensor) -> Tensor:
        """Physical ``... x d`` -> the unit cube."""
        lo = torch.tensor(self.lo, dtype=x.dtype, device=x.device)
        return (x - lo) / torch.tensor(self.span, dtype=x.dtype, device=x.device)

    def from_unit(self, u: Tensor) -> Tensor:
        lo = torch.tensor(self.lo, dtype=u.dtype, device=u.device)
        return lo + u * torch.tensor(self.span, dtype=u.dtype, device=u.device)

    def contains(self, x: Sequence[float], rtol: float = 1e-9) -> bool:
        """Whether a point lies in the box (with a relative tolerance of the span)."""
        return all(l - rtol * s <= v <= h + rtol * s for v, l, h, s in zip(x, self.lo, self.hi, self.span))

    def indices_of(self, xs: Sequence[Sequence[float]], rtol: float = 1e-6) -> list[int | None]:
        """:meth:`index_of` for many points at once (one k-d tree, ``O((N + len(xs)) log N)``)."""
        assert self.candidates is not None
        if not len(xs):
            return []
        from scipy.spatial import cKDTree

        scale = np.asarray(self.span, dtype=float)
        tree = cKDTree(self.candidates.cpu().numpy() / scale)
        dist, idx = tree.query(np.asarray(xs, dtype=float).reshape(len(xs), -1) / scale, p=np.inf)
        return [int(i) if d <= rtol else None for d, i in zip(dist, idx)]

    def index_of(self, x: Sequence[float], rtol: float = 1e-6) -> int | None:
        """For a candidate set: the index of the candidate at ``x`` (within ``rtol`` of the span), else None."""
        assert self.candidates is not None
        q = torch.tensor([list(x)], dtype=DTYPE)
        scale = torch.tensor(self.span, dtype=DTYPE)
        dist = ((self.candidates - q).abs() / scale).max(-1).values
        i = int(torch.argmin(dist))
        return i if float(dist[i]) <= rtol else None


def _labels(
    d: int, names: Sequence[str] | None, units: Sequence[str] | None, explained: Quantity | None
) -> dict[str, object]:
    """The naming fields of a ``d``-axis space, checked: one name and one unit per axis."""
    names = tuple(names) if names else tuple(f"x{i}" for i in range(d))
    units = tuple(units) if units else ("",) * d
    if len(names) != d or len(units) != d:
        raise ConfigError(f"a space of {d} axes needs {d} names and {d} units, got {list(names)} and {list(units)}")
    return {"names": names, "units": units, "explained": explained or Quantity("y")}
