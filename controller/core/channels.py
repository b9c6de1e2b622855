"""Several channels with costs: where a campaign measures, what each reading costs, one scale for all.

An instrument may read several channels at a point at very different costs (a scalar image channel in
milliseconds, a full spectrum in seconds). A campaign that models more than one measures in the product of
its space and its channels: every point gets one more coordinate, the channel's index (0: the channel the
hypotheses explain; 1, 2, ...: cheaper channels linked to it, :mod:`abduce.hypotheses.channels`). So a
request, a measurement, the journal and a resume carry the channel as they carry any coordinate, and the
acquisition scores (point, channel) pairs: its expected information divided by the channel's cost, as
BoTorch's ``InverseCostWeightedUtility`` weighs a multi-fidelity acquisition.

Design. The initial design reads its ``n_init`` points on every cheaper channel first; then, from those
readings, the explained channel at ``design_explained`` of them: where the first cheaper channel read
lowest and highest (evenly ranked between, for more than two), the pairs with the most contrast.

Scale. A cheaper channel reads in its own units. Once the initial design is in, each cheaper channel's
readings are put on the explained channel's scale by the affine map that matches their means and standard
deviations over the pairs of each explained design reading and the cheap reading at its point (or nearest
it), with the sign of their correlation:

    y' = mu_0 + k_c (y - mu_c),   k_c = sign(r_0c) sd_0 / sd_c,   sd(y') = |k_c| sd(y)

(means, sds and correlation over those pairs).

The map is a function of the design's readings only, so a campaign rebuilt from its journal finds the same
one. It only sets the scale: the fitted ``gain_c`` and ``offset_c`` of every law absorb what it misses.

Noise. A reading's own standard deviation (``Measurement.y_sd``) enters the fits as known noise; where a
channel's readings come without one, its declared ``noise`` (that channel's units) is used; where neither,
the channel's noise is the fitted one (shared with the explained channel's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core.space import DTYPE, Space
from abduce.controller.errors import ConfigError

CHANNEL_AXIS = "channel"
CHANNEL_DISTANCE = 100.0
"""How far apart two channels' indices are in the residual GP's input, in units of the space (whose axes span 1):
at least 10 of the kernel's longest lengthscale (10, in every built-in's priors), so the residuals of two
channels are independent (a Matern-3/2 or 5/2 correlation below 1e-6; a user's Matern-1/2 law, below 5e-5)
and a cheap channel's distortion never moves the explained channel's band (README,
"Two channels: a cheap one beside the costly one": with the residuals shared, the true law's band covered the
truth at 62% of the points)."""


@dataclass(frozen=True)
class Channels:
    """The channels a campaign models, the explained one first.

    Attributes:
        names: ``C >= 2`` channel names as the instrument declares them; ``names[0]`` is the one the
            hypotheses explain.
        costs: ``C`` positive costs of one reading (seconds, or a dose: ``unit``).
        noise: ``C`` declared standard deviations of a reading (each channel's units), or None where the
            readings carry their own or the fitted noise should serve; left out: none declared.
        unit: what the costs are counted in (``"s"``, ``"e/A^2"``); ``""`` when not said.
        design_explained: how many of the initial design's points are read on the explained channel too
            (at least 2, for its scale; chosen by :meth:`explained_design`); None: every one. The cheaper
            channels read them all, first.

    Example:
        >>> ch = Channels(("loop", "image"), (2.0, 0.01), unit="s")
        >>> ch.augment(Space.finite([[0.0], [0.5], [1.0]])).candidates.shape
        torch.Size([6, 2])
    """

    names: tuple[str, ...]
    costs: tuple[float, ...]
    noise: tuple[float | None, ...] = ()
    unit: str = ""
    design_explained: int | None = None

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ConfigError(f"a campaign over several channels needs at least 2, got {list(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"channel names must be unique, got {list(self.names)}")
        if len(self.costs) != len(self.names):
            raise ConfigError(f"one cost per channel: {len(self.names)} channels, {len(self.costs)} costs")
        bad = [f"{n}={c}" for n, c in zip(self.names, self.costs) if not (math.isfinite(c) and c > 0)]
        if bad:
            raise ConfigError(f"a channel's cost must be a finite number > 0: {', '.join(bad)}")
        if self.design_explained is not None and self.design_explained < 2:
            raise ConfigError(
                f"design_explained must be >= 2 (the scale needs two readings), got {self.design_explained}"
            )
        if self.noise and len(self.noise) != len(self.names):
            raise ConfigError(f"one noise per channel (or none): {len(self.names)} channels, {len(self.noise)}")
        bad = [f"{n}={s}" for n, s in zip(self.names, self.noise) if s is not None and not (math.isfinite(s) and s > 0)]
        if bad:
            raise ConfigError(f"a channel's noise must be a finite sd > 0: {', '.join(bad)}")

    @property
    def count(self) -> int:
        return len(self.names)

    def augment(self, space: Space) -> Space:
        """The product of a finite ``space`` and the channels: ``N C x (d + 1)`` candidates, row ``i C + c``
        the candidate ``i`` on channel ``c``; the last axis is :data:`CHANNEL_AXIS`.

        Raises:
            ConfigError: ``space`` is a continuous box (channels need a candidate set, e.g. ``grid > 0``).
        """
        if space.candidates is None:
            raise ConfigError(
                "a campaign over several channels needs a finite candidate set (a grid), not a continuous box"
            )
        if CHANNEL_AXIS in space.names:
            raise ConfigError(f"the space already has an axis named {CHANNEL_AXIS!r}")
        n = len(space.candidates)
        index = torch.arange(self.count, dtype=DTYPE).repeat(n).unsqueeze(-1)
        points = torch.cat([space.candidates.repeat_interleave(self.count, 0), index], -1)
        units = (space.units or ("",) * space.d) + ("1",)
        return Space.finite(points, names=space.names + (CHANNEL_AXIS,), units=units, explained=space.explained)

    def expand(self, design: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
        """The initial design's first part: every point on every cheaper channel, each point's in order."""
        return [tuple(x) + (float(c),) for x in design for c in range(1, self.count)]

    def explained_count(self, n_init: int) -> int:
        """How many design points are read on the explained channel too: ``design_explained``, at most
        ``n_init`` (all ``n_init`` where it is None)."""
        return n_init if self.design_explained is None else min(self.design_explained, n_init)

    def explained_design(
        self, xs: Sequence[Sequence[float]], ys: Sequence[float], n_init: int
    ) -> list[tuple[float, ...]]:
        """The initial design's second part, chosen from the first's readings (``xs`` augmented, ``ys`` raw):
        the explained channel at ``design_explained`` (default ``n_init``) of the design's points, those
        whose readings on the first cheaper channel rank evenly from lowest to highest (for two: its lowest
        and its highest), so that the pairs the scale is taken from span the most contrast the cheap channel
        saw (:class:`Scaling`)."""
        seen = [(float(y), tuple(x[:-1])) for x, y in zip(xs, ys) if self.channel(x) == 1]
        seen.sort(key=lambda t: t[0])
        k = min(self.explained_count(n_init), len(seen))
        ranks = sorted({int(round(r)) for r in np.linspace(0, len(seen) - 1, k)}) if k else []
        return [seen[r][1] + (0.0,) for r in ranks]

    @staticmethod
    def channel(x: Sequence[float]) -> int:
        """The channel index of a point of the augmented space (its last coordinate)."""
        return int(round(float(x[-1])))

    def name(self, x: Sequence[float]) -> str:
        """The name of the channel a point of the augmented space reads."""
        return self.names[self.channel(x)]

    def cost(self, x: Sequence[float]) -> float:
        """What reading the point ``x`` (augmented) costs."""
        return self.costs[self.channel(x)]

    def row_costs(self, points: Tensor) -> Tensor:
        """``N`` costs of the rows of ``points`` (``N x (d + 1)``, physical: the channel's index last)."""
        index = points[..., -1].round().long()
        return torch.tensor(self.costs, dtype=points.dtype, device=points.device)[index]

    def declared_noise(self, c: int) -> float:
        """The declared sd of channel ``c`` (NaN where none was declared)."""
        value = self.noise[c] if self.noise else None
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Scaling:
    """The affine map of each channel's readings onto the explained channel's scale, ``y' = shift_c + k_c y``
    (channel 0: the identity).

    Attributes:
        shift: ``C`` shifts (``mu_0 - k_c mu_c``; 0 for channel 0).
        factor: ``C`` factors ``k_c`` (1 for channel 0).
    """

    shift: tuple[float, ...]
    factor: tuple[float, ...]

    @classmethod
    def of_design(cls, xs: Sequence[Sequence[float]], ys: Sequence[float], channels: Channels) -> Scaling:
        """From the design's readings (augmented points ``xs``, raw values ``ys``): for each cheaper channel, the
        means, sds and correlation sign over the pairs of an explained reading and that channel's reading at the
        same point (or, for an explained reading moved off its design point by a failed reading, at the
        nearest point that channel read; distances in units of the design's spread on each axis). With fewer
        than two pairs: no shift and ``k = 1``; with no spread on either side, ``k`` is the sign alone."""
        points = np.array([list(x[:-1]) for x in xs], dtype=float).reshape(len(xs), -1)
        scale = np.ptp(points, axis=0) if len(points) else np.ones(0)
        scale = np.where(scale > 0, scale, 1.0)
        c_of = np.array([Channels.channel(x) for x in xs], dtype=int)
        y = np.asarray(ys, dtype=float)
        shift, factor = [0.0], [1.0]
        for c in range(1, channels.count):
            own = np.flatnonzero(c_of == c)
            pairs = []
            for i in np.flatnonzero(c_of == 0):
                if len(own):
                    j = own[int(np.argmin((((points[own] - points[i]) / scale) ** 2).sum(-1)))]
                    pairs.append((y[i], y[j]))
            if len(pairs) < 2:
                shift.append(0.0)
                factor.append(1.0)
                continue
            a, b = np.array(pairs).T
            sign = -1.0 if float(((a - a.mean()) * (b - b.mean())).sum()) < 0 else 1.0
            k = sign * float(a.std()) / float(b.std()) if a.std() > 0 and b.std() > 0 else sign
            shift.append(float(a.mean()) - k * float(b.mean()))
            factor.append(k)
        return cls(tuple(shift), tuple(factor))

    def value(self, y: float, c: int) -> float:
        """A reading of channel ``c`` on the explained channel's scale."""
        return self.shift[c] + self.factor[c] * y

    def sd(self, sd: float, c: int) -> float:
        """A standard deviation of channel ``c`` on the explained channel's scale."""
        return abs(self.factor[c]) * sd

    def to_json(self) -> dict:
        return {"shift": list(self.shift), "factor": list(self.factor)}
