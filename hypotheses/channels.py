"""One hypothesis over several channels: the law on the channel it explains, an affine image of it on cheaper ones.

A campaign that models ``C`` channels measures in the product of its space and the channels: each point
carries the channel's index ``c`` as one more input column (last), the way BoTorch's multi-fidelity models
carry the fidelity as a column of ``X`` (``SingleTaskMultiFidelityGP(data_fidelities=...)``). Channel 0 is
the one the hypotheses explain (the costly, precise one); channel ``c >= 1`` is linked to it in the
Kennedy-O'Hagan form, written the way round that keeps the law on the explained channel::

    f_0(x) = m(x; theta) + g(x)
    f_c(x) = offset_c + gain_c m + bend_c m^2 + tilt_c . (x - lo) + curve_c . ((x - lo) / span)^2 + g_c(x)
                                                                  (c >= 1; m = m(x; theta), squares per axis)

The mean of every channel is the law (:func:`across_channels` adds the link's parameters to the law's, so
they are fitted, importance-sampled and weighed in the evidence with the law's own): the classic constant
``rho`` of Kennedy and O'Hagan is ``gain_c``; ``bend_c``, ``tilt_c`` and ``curve_c`` let the cheap channel be a
curved image of the law on a sloping, curved background (a detector's non-linearity; a drifting baseline, a
quadratic along each axis that is 0 at its lower bound, ``curve_c`` its quadratic part's rise over the whole
span). The residuals
``g, g_c`` are one Matern GP over ``(x, c)`` whose inputs put the channels far apart
(:data:`abduce.controller.core.channels.CHANNEL_DISTANCE`): independent residuals with shared
hyperparameters. So a cheap channel informs the law through its mean only, and what the link misses stays
in that channel's own residual; Kennedy and O'Hagan's shared residual (``g`` in both) was tried first and
dropped, because a cheap channel's distortion then moved the explained channel's band off the truth.

The cheaper channels' readings arrive in their own units; the campaign puts them on the explained
channel's scale before any fit (:class:`abduce.controller.core.channels.Channels`), so ``gain_c`` is near
1 and ``offset_c`` near 0 in every frame and their bounds below hold on any instrument.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from abduce.hypotheses.declaration import Hypothesis, Normal, Parameter

GAIN_BOUNDS = (-5.0, 5.0)  # after the campaign's scaling a cheaper channel's gain is near +1; a sign error is in range
GAIN_PRIOR = Normal(mean=1.0, sd=1.5)
# offset (in units of s), bend (1/s), tilt (s per span) and curve (s over the span): small, relative to the law
TERM_BOUNDS = (-2.0, 2.0)
TERM_PRIOR = Normal(mean=0.0, sd=0.5)


def link_parameters(channels: int, d: int) -> tuple[Parameter, ...]:
    """Every cheaper channel's ``gain_c, offset_c, bend_c``, ``tilt_c_i`` and ``curve_c_i`` (one each per axis
    ``i`` of ``d``), and the constants ``origin_i`` and ``end_i`` (each axis's lower and upper bound: the tilts
    and curves are 0 at the first, a curve is its full value at the second)."""
    out: list[Parameter] = [Parameter(f"origin_{i}", unit="x", axis=i, fixed=0.0) for i in range(d)]
    out += [Parameter(f"end_{i}", unit="x", axis=i, fixed=1.0) for i in range(d)]
    for c in range(1, channels):
        out.append(Parameter(f"gain_{c}", GAIN_BOUNDS, GAIN_PRIOR, unit="1"))
        out.append(Parameter(f"offset_{c}", TERM_BOUNDS, TERM_PRIOR, unit="y"))
        out.append(Parameter(f"bend_{c}", TERM_BOUNDS, TERM_PRIOR, unit="1/y"))
        out += [Parameter(f"tilt_{c}_{i}", TERM_BOUNDS, TERM_PRIOR, unit="y/dx", axis=i) for i in range(d)]
        out += [Parameter(f"curve_{c}_{i}", TERM_BOUNDS, TERM_PRIOR, unit="y", axis=i) for i in range(d)]
    return tuple(out)


def across_channels(hypothesis: Hypothesis, channels: int, d: int) -> Hypothesis:
    """``hypothesis`` over ``channels`` channels: its inputs gain a last column, the channel index.

    Args:
        hypothesis: a law over ``d`` axes (any of its parameters may refer to them by ``axis``).
        channels: ``C >= 2``; channel 0 is the one the law explains.
        d: the space's axes (without the channel's).

    Returns:
        The same name and parameters plus :func:`link_parameters`; its mean takes ``... x (d+1)`` points
        ``(x, c)`` and is ``m(x)`` where ``c = 0`` and, where ``c`` is another channel (rounded to an index),

            offset_c + gain_c m(x) + bend_c m(x)^2 + sum_i [tilt_c_i (x_i - lo_i) + curve_c_i ((x_i - lo_i) / span_i)^2]

    Example:
        >>> h = across_channels(BUILTIN["linear"], 2, 1)
        >>> [p.name for p in h.parameters if p.fixed is None][-4:]
        ['offset_1', 'bend_1', 'tilt_1_0', 'curve_1_0']
    """
    if channels < 2:
        raise ValueError(f"a law across channels needs at least 2 channels, got {channels}")
    links = link_parameters(channels, d)
    clash = {p.name for p in hypothesis.parameters} & {p.name for p in links}
    if clash:
        raise ValueError(f"hypothesis {hypothesis.name!r} already has parameters {sorted(clash)}")
    law = hypothesis.mean

    def mean(x: Tensor, p: dict[str, Tensor]) -> Tensor:
        base = law(x[..., :-1], p)
        c = torch.round(x[..., -1])
        out = base
        for k in range(1, channels):
            image = p[f"offset_{k}"] + p[f"gain_{k}"] * base + p[f"bend_{k}"] * base**2
            for i in range(d):
                image = image + p[f"tilt_{k}_{i}"] * (x[..., i] - p[f"origin_{i}"])
                along = (x[..., i] - p[f"origin_{i}"]) / (p[f"end_{i}"] - p[f"origin_{i}"])
                image = image + p[f"curve_{k}_{i}"] * along**2
            out = torch.where(c == k, image, out)
        return out

    said = " ".join(
        f"channel {k}: offset_{k} + gain_{k} m + bend_{k} m^2 + tilt_{k} . (x - lo) + curve_{k} . ((x - lo) / span)^2."
        for k in range(1, channels)
    )
    return replace(
        hypothesis,
        mean=mean,
        parameters=hypothesis.parameters + links,
        formula=f"{hypothesis.formula} {said}".strip(),
    )
