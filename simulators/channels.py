"""One sample read on two channels: a costly precise one that follows the law, a cheap noisy distortion of it.

A :class:`~abduce.simulators.transition1d.Transition1D` (its law, parameters, grid and noise describe the
costly channel, ``channel``) with a second channel ``cheap`` that an instrument reads at the same point for
a fraction of the cost (a scalar image channel beside a full spectrum). With ``t(x)`` the law's noise-free
value and ``S`` its range over the space::

    cheap(x) = offset + gain (S tanh(saturation t(x) / S) / saturation + background S sin(pi u / 2))
             + gain cheap_noise eps',          u = (x - lo) / (hi - lo)

a smooth, monotone-in-``t`` distortion of the law (a detector saturating, on a curved rising background) in
other units, with
noise ``cheap_noise`` (in the costly channel's units before the gain; by default ``cheap_ratio`` times the
costly channel's). Its noise has its own seeded stream (or frozen realisation), apart from the costly
channel's, so adding the cheap channel changes no costly reading. The cheap channel reports its own
standard deviation (:meth:`reading_sd`), as a detector that knows its noise does.

Example:
    >>> sim = TwoChannel(law="second-order", x_c=0.5, grid=11)
    >>> sim.channels, sim.costs
    (('y', 'image'), (1.0, 0.05))
    >>> sim.measure_channel(sim.candidates()[:2], "image").shape
    (2,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.base import Noise, as_points
from abduce.simulators.transition1d import Transition1D

_CHEAP_STREAM = 0xC4EA9  # mixed into the seed of the cheap channel's noise


@dataclass(init=False)
class TwoChannel(Transition1D):
    """A transition read on a costly channel (Transition1D's) and a cheap one (see the module docstring).

    Attributes (besides :class:`Transition1D`'s):
        cheap: the cheap channel's name.
        cost, cheap_cost: what one reading of each costs (``cost_unit``).
        gain, offset, saturation, background: the cheap channel's distortion.
        cheap_noise: the cheap channel's noise sd before the gain (the costly channel's units).
    """

    cheap: str
    cost: float
    cheap_cost: float
    cost_unit: str
    gain: float
    offset: float
    saturation: float
    background: float
    cheap_noise: float

    def __init__(
        self,
        cheap: str = "image",
        cost: float = 1.0,
        cheap_cost: float = 0.05,
        cost_unit: str = "s",
        gain: float = 40.0,
        offset: float = 100.0,
        saturation: float = 0.8,
        background: float = 0.3,
        cheap_noise: float | None = None,
        cheap_ratio: float = 2.0,
        **options,
    ) -> None:
        if "truth" in options:  # Transition1D's other name for the law; served, never run in process (one channel)
            raise TypeError("TwoChannel got an unexpected keyword argument 'truth' (give law=)")
        super().__init__(**options)
        if cheap == self.channel:
            raise ConfigError(f"the cheap channel needs a name of its own, not {cheap!r}")
        for name, value in (("cost", cost), ("cheap_cost", cheap_cost)):
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        for name, value in (("gain", gain), ("offset", offset), ("background", background)):
            if not np.isfinite(value):
                raise ConfigError(f"{name} must be finite, got {value}")
        if gain == 0:
            raise ConfigError("gain must not be 0 (the cheap channel would not see the sample)")
        if not (np.isfinite(saturation) and saturation > 0):
            raise ConfigError(f"saturation must be > 0, got {saturation}")
        if cheap_noise is None:
            if not (np.isfinite(cheap_ratio) and cheap_ratio > 0):
                raise ConfigError(f"cheap_ratio must be > 0, got {cheap_ratio}")
            cheap_noise = cheap_ratio * self.noise
        if not (np.isfinite(cheap_noise) and cheap_noise > 0):
            raise ConfigError(f"cheap_noise must be > 0, got {cheap_noise}")
        self.cheap, self.cost, self.cheap_cost, self.cost_unit = cheap, float(cost), float(cheap_cost), cost_unit
        self.gain, self.offset, self.saturation = float(gain), float(offset), float(saturation)
        self.background, self.cheap_noise = float(background), float(cheap_noise)
        self._range = max(self.span(), 1e-12)
        seed = int(np.random.default_rng([self.seed, _CHEAP_STREAM]).integers(2**63))
        self._cheap_stream = Noise(seed, self.candidates(), self.cheap_noise, self.dwell_s, self.noise_per_point)

    @property
    def channels(self) -> tuple[str, str]:
        """The channels, the costly (explained) one first."""
        return (self.channel, self.cheap)

    @property
    def costs(self) -> tuple[float, float]:
        return (self.cost, self.cheap_cost)

    def cheap_truth(self, x: np.ndarray) -> np.ndarray:
        """The cheap channel's noise-free value at ``x`` (``n x 1`` or ``n``) -> ``n``."""
        pts = as_points(x, 1)
        t, s = self.truth(pts), self._range
        u = (pts[:, 0] - self.lo) / (self.hi - self.lo)
        image = s * np.tanh(self.saturation * t / s) / self.saturation + self.background * s * np.sin(np.pi * u / 2)
        return self.offset + self.gain * image

    def measure_channel(self, x: np.ndarray, channel: str) -> np.ndarray:
        """One reading of ``channel`` at each point of ``x`` -> ``n``.

        Raises:
            ConfigError: an unknown channel (naming the two).
        """
        if channel == self.channel:
            return self.measure(x)
        if channel != self.cheap:
            raise ConfigError(f"no channel {channel!r}; this simulator reads {list(self.channels)}")
        pts = as_points(x, 1)
        return self.cheap_truth(pts) + self.gain * self.cheap_noise * self._cheap_stream.standard(pts)

    def reading_sd(self, channel: str) -> float | None:
        """The standard deviation a reading of ``channel`` reports (the cheap one's; None for the costly one)."""
        if channel not in self.channels:
            raise ConfigError(f"no channel {channel!r}; this simulator reads {list(self.channels)}")
        return abs(self.gain) * self.cheap_noise if channel == self.cheap else None
