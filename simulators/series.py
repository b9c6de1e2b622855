"""A series of samples, each much like the last: a doping or thickness series for transfer between campaigns.

Sample ``k`` (0, 1, 2, ...) of a series is a :class:`~abduce.simulators.transition1d.Transition1D` whose
parameters drift from sample to sample, with a little scatter of their own::

    x_c(k)       = x_c + k drift + jitter e_k          (e_k ~ N(0, 1), the series' own, per sample)
    beta(k)      = beta + k beta_drift
    amplitude(k) = amplitude (1 + k amplitude_drift)

and whose law is ``law``, except on the samples listed in ``changes``, whose law is ``changed_law`` (a sample
that is not like the last). The scatter ``e_k`` is drawn from ``series_seed`` alone, so every sample of one
series agrees on it whatever seeds the measurement noise (``seed``, a campaign's). Everything else
(noise, grid, space, units) is Transition1D's.

Example:
    >>> [round(SampleSeries(sample=k, x_c=0.5, drift=0.02, jitter=0.0).x_c, 2) for k in range(3)]
    [0.5, 0.52, 0.54]
    >>> SampleSeries(sample=2, changes=(2,), changed_law="sigmoid").law
    'sigmoid'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.simulators.transition1d import LAWS, Transition1D


@dataclass(init=False)
class SampleSeries(Transition1D):
    """Sample ``sample`` of a drifting series (see the module docstring).

    Attributes (besides :class:`Transition1D`'s, which describe this sample):
        sample: the sample's index in the series, >= 0.
        series_seed: seeds the per-sample scatter (shared by all the samples of a series).
        drift, beta_drift, amplitude_drift: the change per sample of ``x_c``, ``beta`` and (relative) ``A``.
        jitter: the sd of the per-sample scatter of ``x_c``.
        changes: the samples whose law is ``changed_law`` instead of ``law``.
        changed_law: one of Transition1D's laws.
    """

    sample: int
    series_seed: int
    drift: float
    beta_drift: float
    amplitude_drift: float
    jitter: float
    changes: tuple[int, ...]
    changed_law: str

    def __init__(
        self,
        sample: int = 0,
        series_seed: int = 0,
        law: str = "second-order",
        x_c: float = 0.5,
        beta: float = 0.3,
        amplitude: float = 1.0,
        drift: float = 0.02,
        beta_drift: float = 0.0,
        amplitude_drift: float = 0.0,
        jitter: float = 0.01,
        changes: tuple[int, ...] | list[int] = (),
        changed_law: str = "first-order",
        **options,
    ) -> None:
        if "truth" in options:  # Transition1D's other name for the law: a series has two laws, named apart
            raise TypeError("SampleSeries got an unexpected keyword argument 'truth' (give law= and changed_law=)")
        if isinstance(sample, bool) or int(sample) != sample or sample < 0:
            raise ConfigError(f"sample must be an integer >= 0, got {sample!r}")
        for name, value in (("drift", drift), ("beta_drift", beta_drift), ("amplitude_drift", amplitude_drift)):
            if not np.isfinite(value):
                raise ConfigError(f"{name} must be finite, got {value}")
        if not (np.isfinite(jitter) and jitter >= 0):
            raise ConfigError(f"jitter must be >= 0, got {jitter}")
        if changed_law not in LAWS:
            raise ConfigError(f"unknown changed_law {changed_law!r}; known: {', '.join(LAWS)}")
        changes = tuple(int(k) for k in changes)
        self.sample, self.series_seed = int(sample), int(series_seed)
        self.drift, self.beta_drift, self.amplitude_drift, self.jitter = drift, beta_drift, amplitude_drift, jitter
        self.changes, self.changed_law = changes, changed_law
        k = self.sample
        if not amplitude * (1.0 + k * amplitude_drift) > 0:
            raise ConfigError(
                f"sample {k}: the amplitude drifted to {amplitude * (1.0 + k * amplitude_drift)} (needs > 0)"
            )
        scatter = float(np.random.default_rng([self.series_seed, 0x5E1E5]).standard_normal(k + 1)[k])
        super().__init__(
            law=changed_law if k in changes else law,
            x_c=float(x_c + k * drift + jitter * scatter),
            beta=float(beta + k * beta_drift),
            amplitude=float(amplitude * (1.0 + k * amplitude_drift)),
            **options,
        )
