"""A campaign's readings as they were told and as its fits see them.

:class:`FitReadings` is the part of :class:`~abduce.controller.core.state.CampaignState` that turns what the
instrument reported (points, values, known sds, each on its channel) into what the structured GPs are fitted
with: unit coordinates with the channel's column stretched apart, values and sds of a cheaper channel on the
explained channel's scale (:class:`~abduce.controller.core.channels.Scaling`), each candidate's known noise,
and the cost spent. The state holds the lists; this part only caches the design's scale (``_scaling_cache``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core.channels import CHANNEL_DISTANCE, Channels, Scaling
from abduce.controller.core.space import DTYPE, Space


class FitReadings:
    """The readings' views (mixed into :class:`~abduce.controller.core.state.CampaignState`, which sets these)."""

    _x: list[tuple[float, ...]]  # every reading's point (over channels: the channel's index last)
    _y: list[float]  # its value, in its channel's own units
    _y_sd: list[float]  # its known sd, NaN where none was told
    _fit_from: int  # readings before the first fit (the design)
    _scaling_cache: Scaling | None
    channels: Channels | None
    space: Space
    device: torch.device

    @property
    def n(self) -> int:
        """Measurements told so far."""
        return len(self._y)

    def _tensor(self, values) -> Tensor:
        return torch.as_tensor(values, dtype=DTYPE, device=self.device)

    @property
    def data(self) -> tuple[list[tuple[float, ...]], list[float]]:
        """Copies of the measured points and values, in order: over several channels, the explained channel's
        readings only, at their points in the space (every reading: :meth:`readings`)."""
        if self.channels is None:
            return list(self._x), list(self._y)
        own = [(x[:-1], y) for x, y in zip(self._x, self._y) if Channels.channel(x) == 0]
        return [x for x, _ in own], [y for _, y in own]

    def readings(self) -> list[tuple[tuple[float, ...], str | None, float]]:
        """Every reading in order: its point in the space, its channel (None without channels) and its value
        (in the channel's own units)."""
        if self.channels is None:
            return [(x, None, y) for x, y in zip(self._x, self._y)]
        return [(x[:-1], self.channels.name(x), y) for x, y in zip(self._x, self._y)]

    def _data_tensors(self) -> tuple[Tensor, Tensor]:
        """``n x d`` unit coordinates and ``n`` values of the readings (a cheaper channel's on the explained
        channel's scale, :class:`~abduce.controller.core.channels.Scaling`, once the design is in)."""
        x = self._tensor(self._x)
        return self._unit(self.space.to_unit(x)), self._tensor(self._values())

    def _unit(self, u: Tensor) -> Tensor:
        """Unit coordinates as the fits see them: over several channels, the channel's column is its index times
        :data:`~abduce.controller.core.channels.CHANNEL_DISTANCE`, so that the residual GP's correlation between
        channels is nil and a channel is linked to the law through its mean only (the frames' span of that
        column is ``1 / CHANNEL_DISTANCE``, so the law reads the index)."""
        if self.channels is None:
            return u
        return torch.cat([u[..., :-1], u[..., -1:] * (self.channels.count - 1) * CHANNEL_DISTANCE], -1)

    def _values(self) -> list[float]:
        scaling = self._scaling()
        if scaling is None:
            return list(self._y)
        return [scaling.value(y, Channels.channel(x)) for x, y in zip(self._x, self._y)]

    def _sds(self) -> list[float]:
        """Each reading's known sd (NaN where none): its own, else its channel's declared one; scaled."""
        if self.channels is None:
            return list(self._y_sd)
        scaling, out = self._scaling(), []
        for x, sd in zip(self._x, self._y_sd):
            c = Channels.channel(x)
            sd = self.channels.declared_noise(c) if math.isnan(sd) else sd
            out.append(sd if scaling is None else scaling.sd(sd, c))
        return out

    def _scaling(self) -> Scaling | None:
        """The cheaper channels' map onto the explained channel's scale: from the design's readings once
        they are all in (None before, and without channels)."""
        if self.channels is None or self.n < self._fit_from:
            return None
        if self._scaling_cache is None:
            k = self._fit_from
            self._scaling_cache = Scaling.of_design(self._x[:k], self._y[:k], self.channels)
        return self._scaling_cache

    def _sd_tensor(self) -> Tensor | None:
        """``n`` known standard deviations of the readings (NaN where none was told), or None when no
        reading came with one: then every fit is the homoscedastic one, bit for bit."""
        sds = self._sds()
        if all(math.isnan(v) for v in sds):
            return None
        return self._tensor(sds)

    def _row_noise(self) -> Tensor | None:
        """``N`` known noise variances of a reading at each candidate (the explained channel's scale): a
        cheaper channel's declared sd, else the median of the sds its readings came with; None without
        channels (the fitted noise alone)."""
        if self.channels is None:
            return None
        sds = self._sds()
        per = []
        for c in range(self.channels.count):
            told = [v for x, v in zip(self._x, sds) if Channels.channel(x) == c and not math.isnan(v)]
            per.append(float(np.median(told)) ** 2 if told else 0.0)
        index = self.space.candidates[:, -1].round().long()  # type: ignore[index]
        return self._tensor(per)[index.to(self.device)]

    @property
    def cost(self) -> float:
        """What the readings so far cost (``channels.unit``); without channels, one per reading."""
        if self.channels is None:
            return float(self.n)
        return sum(self.channels.cost(x) for x in self._x)
